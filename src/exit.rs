//! Exit codes, in one place. Documented in `--help` and the README.

use crate::error::Error;
use crate::store::StoreError;
use crate::tfstate::lock::LockError;

pub const OK: i32 = 0;
/// Any other error: network, permissions, invalid input file, local I/O.
pub const ERROR: i32 = 1;
/// Usage or configuration error (also what clap uses for bad arguments).
pub const USAGE: i32 = 2;
/// The lock is held by someone else, or a lock ID does not match.
pub const LOCKED: i32 = 3;
/// State conflict: other lineage, older serial, or the state changed (ETag).
pub const CONFLICT: i32 = 4;
/// The state, the lock or the bucket does not exist.
pub const NOT_FOUND: i32 = 5;
/// `doctor`: the provider would let two writers take the same lock.
pub const UNSAFE: i32 = 6;
/// Interrupted by SIGINT or SIGTERM (the lock was released first).
pub const INTERRUPTED: i32 = 130;

/// The text shown under `--help`.
pub const HELP: &str = "\
Exit codes:
  0    success
  1    error (network, permissions, invalid input file, local I/O)
  2    usage or configuration error
  3    lock held by someone else, lock ID mismatch, or lock younger than --older-than
  4    state conflict (lineage, serial, or the state changed meanwhile)
  5    not found (state, lock, bucket or output)
  6    doctor: locking is unsafe on this bucket/provider
  130  interrupted (SIGINT/SIGTERM); any lock taken was released";

pub fn code(err: &Error) -> i32 {
    match err {
        Error::MissingSettings(_) | Error::Config(_) | Error::NotConfirmed(_) => USAGE,
        Error::Lock(LockError::NotLocked { .. }) => NOT_FOUND,
        Error::Lock(LockError::Store(e)) => store_code(e),
        Error::Lock(
            LockError::Held { .. }
            | LockError::OsLocked { .. }
            | LockError::IdMismatch { .. }
            | LockError::Changed { .. }
            | LockError::TooYoung { .. }
            | LockError::Unreadable { .. },
        ) => LOCKED,
        Error::StateConflict { .. } => CONFLICT,
        Error::StateNotFound { .. } | Error::OutputNotFound { .. } => NOT_FOUND,
        Error::Store(e) => store_code(e),
        Error::Interrupted { .. } => INTERRUPTED,
        Error::LockingUnsafe { .. } => UNSAFE,
        Error::InvalidState { .. } | Error::Io { .. } | Error::Output(_) | Error::Incomplete(_) => {
            ERROR
        }
    }
}

fn store_code(err: &StoreError) -> i32 {
    match err {
        StoreError::NotFound { .. } | StoreError::BucketNotFound { .. } => NOT_FOUND,
        StoreError::Precondition { .. } => CONFLICT,
        _ => ERROR,
    }
}
