//! The library's typed errors. Every message says what happened, to which
//! object, and what to do next. `exit.rs` maps each to an exit code.

use crate::store::StoreError;
use crate::tfstate::lock::LockError;
use std::path::PathBuf;

pub use crate::duration::short_duration;

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

    /// The lock's own errors (held, ID mismatch, not locked, ...).
    #[error(transparent)]
    Lock(LockError),

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

/// Store errors met while locking stay store errors (one exit code, one
/// form, wherever they happen).
impl From<LockError> for Error {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Store(s) => Error::Store(s),
            other => Error::Lock(other),
        }
    }
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
