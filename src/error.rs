//! The library's typed errors. Every message says what happened, to which
//! object, and what to do next. `exit.rs` maps each to an exit code.

use crate::output::escape_for_terminal as esc;
use crate::store::StoreError;
use crate::tfstate::lock::{LockInfo, go_rfc3339_nano};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Who holds a lock we could not take.
#[derive(Debug)]
pub enum Holder {
    Lock(Box<LockInfo>),
    /// The lock object exists but is not a lock we can read.
    Unreadable(String),
}

/// One setting that no source provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSetting {
    pub name: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    /// The `backend "s3"` attribute that also sets it, if any.
    pub backend: Option<&'static str>,
    /// The OpenMCF manifest label that also sets it, if any.
    pub label: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("missing configuration:\n{}\nSet each one with its flag, environment variable, backend block or manifest label (on a terminal tfsync asks for them).", list_missing(.0))]
    MissingSettings(Vec<MissingSetting>),

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("{}", lock_held(lock, holder, *waited))]
    LockHeld {
        lock: String,
        holder: Holder,
        waited: Duration,
    },

    #[error(
        "lock ID {given:?} does not match the existing lock ID {held:?} on {lock}.\nRun `tfsync status` to see who holds it; pass that ID if you mean to release it."
    )]
    LockIdMismatch {
        lock: String,
        given: String,
        held: String,
    },

    #[error("{lock} does not exist: the state is not locked, nothing to release")]
    NotLocked { lock: String },

    #[error(
        "{lock} exists but is not a readable lock ({reason}).\nInspect it with `tfsync status`; if it is debris, delete that object with your S3 tool."
    )]
    LockUnreadable { lock: String, reason: String },

    #[error(
        "{lock} changed while it was being released; it was left in place. Run `tfsync status` to see who holds it now"
    )]
    LockChanged { lock: String },

    #[error(
        "lock {id} on {lock} is only {} old, younger than --older-than {}: it was left in place",
        short_duration(*age),
        short_duration(*bound)
    )]
    LockTooYoung {
        lock: String,
        id: String,
        age: Duration,
        bound: Duration,
    },

    #[error(
        "no output {name:?} in {location}{}",
        if known.is_empty() { ": it has no outputs".to_string() } else { format!(". Outputs: {}", known.join(", ")) }
    )]
    OutputNotFound {
        name: String,
        location: String,
        known: Vec<String>,
    },

    #[error("{0}")]
    Output(String),

    #[error("locking is unsafe on {bucket}:\n{}", .reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    LockingUnsafe {
        bucket: String,
        reasons: Vec<String>,
    },

    #[error("{location}: {reason}")]
    StateConflict { location: String, reason: String },

    #[error("no state at {location}. Check --bucket, --key and --workspace")]
    StateNotFound { location: String },

    #[error("{what} is not a usable Terraform state: {reason}")]
    InvalidState { what: String, reason: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("interrupted by {signal}; {detail}")]
    Interrupted {
        signal: &'static str,
        detail: String,
    },

    #[error("{0}")]
    NotConfirmed(String),

    /// A backup, verify or migration that did not complete; the message names
    /// every key that failed.
    #[error("{0}")]
    Incomplete(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

fn list_missing(m: &[MissingSetting]) -> String {
    m.iter()
        .map(|s| {
            let mut also = Vec::new();
            if let Some(b) = s.backend {
                also.push(format!("`{b}` in a backend \"s3\" block"));
            }
            if let Some(l) = s.label {
                also.push(format!("the label {l} in a -f manifest"));
            }
            let also = if also.is_empty() {
                String::new()
            } else {
                format!(" (or {})", also.join(", or "))
            };
            format!("  - {}: --{} or {}{also}", s.name, s.flag, s.env)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Human form of a duration, to the second: `3m12s`.
pub fn short_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
        .to_string()
        .replace(' ', "")
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Lock(i) => write!(
                f,
                "  ID:        {}\n  Path:      {}\n  Operation: {}\n  Who:       {}\n  Version:   {}\n  Created:   {} ({} ago)\n  Info:      {}",
                esc(&i.id),
                esc(&i.path),
                esc(&i.operation),
                esc(&i.who),
                esc(&i.version),
                go_rfc3339_nano(&i.created),
                short_duration(i.age()),
                esc(&i.info)
            ),
            Holder::Unreadable(reason) => {
                write!(
                    f,
                    "  (the lock object cannot be read as a lock: {})",
                    esc(reason)
                )
            }
        }
    }
}

fn lock_held(lock: &str, holder: &Holder, waited: Duration) -> String {
    let waited = if waited.is_zero() {
        String::new()
    } else {
        format!(" (waited {})", short_duration(waited))
    };
    let next = match holder {
        Holder::Lock(i) => format!(
            "Wait for the holder to finish (or retry with --wait), or, if you are sure it is stale:\n  tfsync force-unlock {}",
            esc(&i.id)
        ),
        Holder::Unreadable(_) => "Inspect it with `tfsync status` before removing it.".into(),
    };
    format!(
        "the state is locked: {lock} is held by someone else{waited}.\nLock Info:\n{holder}\n{next}"
    )
}
