//! Backups of many states: the snapshot layout ([`snapshot`]), taking a
//! snapshot ([`copy`]), checking one ([`verify`]), keeping the newest N
//! ([`retention`]) and putting states back ([`restore`]). Engines over
//! opened stores: nothing here opens a store, parses arguments or prints
//! (progress goes through [`Progress`]).

pub mod copy;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod verify;

use serde::Serialize;

/// How an engine reports progress over many states (a progress bar on a
/// terminal, nothing elsewhere).
pub trait Progress: Sync {
    /// The number of states (or objects) the run will go through.
    fn start(&self, _total: u64) {}
    /// One more done, whatever its outcome.
    fn advance(&self) {}
    /// The run is over.
    fn finish(&self) {}
}

/// No progress to show.
pub struct Silent;

impl Progress for Silent {}

/// One key that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub key: String,
    pub error: String,
}

/// One indented `key: error` line per failure.
pub fn failure_lines(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("  {}: {}", f.key, f.error))
        .collect::<Vec<_>>()
        .join("\n")
}
