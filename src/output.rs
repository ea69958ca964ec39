//! Rendering: text for people, JSON for scripts. Data goes to stdout,
//! messages to stderr; `--quiet` silences messages on success.

use crate::cli::OutputFormat;
use serde_json::Value;
use std::io::Write;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: OutputFormat,
    pub quiet: bool,
}

impl Printer {
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
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
        println!("{}", text.as_ref());
    }

    /// A JSON document on stdout, pretty-printed, one per command.
    pub fn emit_json(&self, v: &Value) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, v);
        let _ = writeln!(out);
    }
}
