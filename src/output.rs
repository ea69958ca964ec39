//! Rendering: text for people, JSON for scripts. Data goes to stdout,
//! messages to stderr; `--quiet` silences messages on success.

use crate::cli::OutputFormat;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// A write to stdout failed (other than a reader that went away).
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Did a write to stdout fail (a full disk...)? `main` then exits 1.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::SeqCst)
}

/// Write to stdout. A reader that went away (`tfsync locks | head`) is not
/// an error: the command goes on (and releases what it holds) without
/// panicking. Another failure is reported once on stderr and makes the exit
/// code 1.
fn to_stdout(write: impl FnOnce(&mut std::io::StdoutLock<'_>) -> std::io::Result<()>) {
    let mut out = std::io::stdout().lock();
    let r = write(&mut out).and_then(|()| out.flush());
    if let Err(e) = r
        && e.kind() != std::io::ErrorKind::BrokenPipe
        && !STDOUT_FAILED.swap(true, Ordering::SeqCst)
    {
        eprintln!("error: cannot write to stdout: {e}");
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: OutputFormat,
    pub quiet: bool,
}

impl Printer {
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Prometheus text format (`locks`, `backup`).
    pub fn prometheus(&self) -> bool {
        self.format == OutputFormat::Prometheus
    }

    /// Text exactly as given on stdout (no newline added).
    pub fn raw(&self, text: &str) {
        to_stdout(|out| out.write_all(text.as_bytes()));
    }

    /// A progress or result message for people (stderr); not in JSON mode,
    /// not with `--quiet`.
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet && !self.json() {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// A warning: always shown, whatever the mode.
    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", msg.as_ref());
    }

    /// Requested data (stdout), shown even with `--quiet`.
    pub fn data(&self, text: impl AsRef<str>) {
        to_stdout(|out| writeln!(out, "{}", text.as_ref()));
    }

    /// A JSON document on stdout, pretty-printed, one per command.
    pub fn emit_json(&self, v: &Value) {
        to_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, v)?;
            writeln!(out)
        });
    }
}

/// `s` made safe to print on a terminal: every control character (C0, DEL,
/// C1) and every invisible character that reorders or breaks lines (bidi
/// overrides, isolates and marks, line and paragraph separators) is written
/// as an escape (`\x1b`, `\r`, `\u{202e}`), so that a field written by
/// someone else (a lock's `Who`, `Info`...) cannot move the cursor, erase a
/// line, fake a line or reverse the text after it. Everything else is kept.
/// For text output only: JSON is exact (serde escapes control characters).
pub fn escape_for_terminal(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A file name as bytes, for messages: valid UTF-8 escaped as in
/// [`escape_for_terminal`], every other byte as `\xNN`.
pub fn escape_bytes_for_terminal(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        out.push_str(&escape_for_terminal(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_can_drive_a_terminal() {
        assert_eq!(escape_for_terminal("alice@ci-7"), "alice@ci-7");
        assert!(matches!(
            escape_for_terminal("DOMAIN\\bob ünïcode"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_for_terminal("a\x1b[2Kb\rc\nd\te\x7f"),
            "a\\x1b[2Kb\\rc\\nd\\te\\x7f"
        );
        assert_eq!(escape_for_terminal("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(
            escape_for_terminal("evil\u{202e}txt.exe"),
            "evil\\u{202e}txt.exe"
        );
        assert_eq!(
            escape_for_terminal("\u{2066}a\u{2069}"),
            "\\u{2066}a\\u{2069}"
        );
        assert_eq!(
            escape_bytes_for_terminal(b"caf\xe9\x1b.tflock"),
            "caf\\xe9\\x1b.tflock"
        );
    }
}
