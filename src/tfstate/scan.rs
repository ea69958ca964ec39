//! Finding locks across a bucket: every `*.tflock` object under a prefix,
//! read and parsed.

use super::keys::LOCK_SUFFIX;
use super::lock::{self, Current};
use crate::error::Error;
use crate::store::{ObjectMeta, ObjectStore};
use std::time::Duration;

/// One lock object found by [`locks`].
pub struct FoundLock {
    pub lock_key: String,
    /// The state key this lock guards (the lock key without `.tflock`).
    pub state_key: String,
    /// What the listing said about the lock object.
    pub meta: ObjectMeta,
    /// What the lock says (it may have gone since the listing).
    pub current: Current,
}

impl FoundLock {
    /// The lock's age from its `Created` field, or `None` when it is unreadable
    /// or gone.
    pub fn age(&self) -> Option<Duration> {
        match &self.current {
            Current::Locked { info, .. } => Some(info.age()),
            _ => None,
        }
    }
}

/// Every lock object under `prefix` (all pages), sorted by key, each read
/// once. Locks released between the listing and the read are dropped.
pub async fn locks(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<FoundLock>, Error> {
    let mut out = Vec::new();
    for meta in store.list(prefix).await? {
        let Some(state_key) = meta.key.strip_suffix(LOCK_SUFFIX) else {
            continue;
        };
        if state_key.is_empty() {
            continue;
        }
        let state_key = state_key.to_string();
        let current = lock::read(store, &state_key).await?;
        if matches!(current, Current::Unlocked) {
            continue;
        }
        out.push(FoundLock {
            lock_key: meta.key.clone(),
            state_key,
            meta,
            current,
        });
    }
    Ok(out)
}
