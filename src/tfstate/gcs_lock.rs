//! The lock of a state of Terraform's gcs backend, as
//! `internal/backend/remote-state/gcs/client.go` takes it: the object
//! `<prefix>/<W>.tflock` beside the state `<prefix>/<W>.tfstate`, written
//! only if no object has that name (`ifGenerationMatch=0`,
//! `storage.Conditions{DoesNotExist: true}`), holding the LockInfo JSON with
//! `Path` = `gs://<bucket>/<lock object>`.
//!
//! **The lock's ID is the lock object's generation**, as in Terraform
//! (`Lock` returns `w.Attrs().Generation`; `lockInfo` overwrites the JSON's
//! ID with it; `Unlock` parses the ID as a generation and deletes with
//! `GenerationMatch`). So `tfsync status` shows the number Terraform shows,
//! and `terraform force-unlock` takes the ID `tfsync lock` printed. The
//! JSON's own `ID` (tfsync's UUID, or Terraform's) is what recognises our
//! lock when the response to our create was lost; `unlock` accepts either.
//! Every delete is conditional on the generation read just before.

use super::guard::LockStore;
use super::keys::{LOCK_SUFFIX, STATE_SUFFIX};
use super::lock::{Attempt, Current, Holder, LockError, LockInfo, acquire_with};
use crate::store::gcs::GcsStore;
use crate::store::{ObjectStore, PutMode, StoreError};
use async_trait::async_trait;
use std::time::Duration;

/// The lock object of the state `state_key` (`<prefix>/<W>.tfstate` ->
/// `<prefix>/<W>.tflock`).
pub fn lock_key(state_key: &str) -> String {
    let stem = state_key.strip_suffix(STATE_SUFFIX).unwrap_or(state_key);
    format!("{stem}{LOCK_SUFFIX}")
}

/// The state a lock object guards (`None`: not a `.tflock`).
pub fn state_key_of_lock(lock_key: &str) -> Option<String> {
    let stem = lock_key.strip_suffix(LOCK_SUFFIX)?;
    let base = stem.rsplit('/').next().unwrap_or(stem);
    (!base.is_empty()).then(|| format!("{stem}{STATE_SUFFIX}"))
}

pub struct GcsLock<'a> {
    store: &'a GcsStore,
    lock_key: String,
}

/// The lock object as read: what it says (ID = generation), the JSON's own
/// ID, the generation.
struct Seen {
    current: Current,
    json_id: Option<String>,
    generation: String,
}

impl<'a> GcsLock<'a> {
    pub fn new(store: &'a GcsStore, state_key: &str) -> Self {
        GcsLock {
            store,
            lock_key: lock_key(state_key),
        }
    }

    async fn seen(&self) -> Result<Option<Seen>, LockError> {
        let got = match self.store.get(&self.lock_key).await {
            Ok(g) => g,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let generation = got.meta.etag.clone().unwrap_or_default();
        Ok(Some(match LockInfo::from_json(&got.bytes) {
            Ok(mut info) => {
                let json_id = Some(std::mem::replace(&mut info.id, generation.clone()));
                Seen {
                    current: Current::Locked {
                        info,
                        etag: Some(generation.clone()),
                    },
                    json_id,
                    generation,
                }
            }
            Err(reason) => Seen {
                current: Current::Unreadable {
                    reason,
                    etag: Some(generation.clone()),
                },
                json_id: None,
                generation,
            },
        }))
    }

    /// Delete the lock object only while it is `generation`.
    async fn delete(&self, generation: &str) -> Result<(), LockError> {
        match self.store.delete_if(&self.lock_key, generation).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(LockError::NotLocked {
                lock: self.location(),
            }),
            Err(StoreError::Precondition { .. }) => Err(LockError::Changed {
                lock: self.location(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Release the lock if `matches` says it is the one (ID = generation or
    /// the JSON's ID), at least `min_age` old.
    async fn release_if(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        let lock = self.location();
        let Some(seen) = self.seen().await? else {
            return Err(LockError::NotLocked { lock });
        };
        let info = match seen.current {
            Current::Locked { info, .. } => info,
            Current::Unreadable { reason, .. } => {
                return Err(LockError::Unreadable { lock, reason });
            }
            Current::Unlocked => return Err(LockError::NotLocked { lock }),
        };
        if id != seen.generation && seen.json_id.as_deref() != Some(id) {
            return Err(LockError::IdMismatch {
                lock,
                given: id.to_string(),
                held: info.id,
            });
        }
        if let Some(m) = min_age
            && info.age() < m
        {
            return Err(LockError::TooYoung {
                lock,
                id: info.id.clone(),
                age: info.age(),
                bound: m,
            });
        }
        self.delete(&seen.generation).await?;
        Ok(info)
    }

    /// What a lock object already there means for us.
    fn refused(ours: &LockInfo, seen: Seen) -> Attempt {
        // Our own JSON: the response to our create was lost and the retry
        // ran into our lock. It is ours.
        if seen.json_id.as_deref() == Some(ours.id.as_str()) {
            return Attempt::Taken(Some(seen.generation));
        }
        match seen.current {
            Current::Locked { info, .. } => Attempt::Held(Holder::Lock(Box::new(info))),
            Current::Unreadable { reason, .. } => Attempt::Held(Holder::Unreadable(reason)),
            Current::Unlocked => Attempt::Vanished,
        }
    }

    /// One read, then the create with `ifGenerationMatch=0`. The read costs
    /// a request Terraform does not make; it keeps a server that ignores the
    /// precondition (gcp-storage-emulator) from replacing a held lock when
    /// no one races us. The create alone is what excludes a racing writer.
    async fn try_once(&self, ours: &LockInfo) -> Result<Attempt, LockError> {
        if let Some(seen) = self.seen().await? {
            return Ok(Self::refused(ours, seen));
        }
        let mut written = ours.clone();
        // Terraform's `info.Path = c.lockFileURL()`.
        written.path = self.store.gs(&self.lock_key);
        match self
            .store
            .put(&self.lock_key, written.to_json(), PutMode::Create)
            .await
        {
            Ok(generation) => Ok(Attempt::Taken(generation)),
            Err(StoreError::AlreadyExists { .. }) => Ok(match self.seen().await? {
                None => Attempt::Vanished,
                Some(s) => Self::refused(ours, s),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl LockStore for GcsLock<'_> {
    fn location(&self) -> String {
        self.store.gs(&self.lock_key)
    }

    async fn acquire(&self, info: &LockInfo, wait: Duration) -> Result<Option<String>, LockError> {
        let lock = self.location();
        acquire_with(&lock, wait, || self.try_once(info)).await
    }

    /// Our lock: the JSON must still carry our ID (and, with a tag, the
    /// generation we wrote), then a delete conditional on that generation.
    async fn release_own(&self, info: &LockInfo, tag: Option<&str>) -> Result<(), LockError> {
        let lock = self.location();
        let Some(seen) = self.seen().await? else {
            return Err(LockError::NotLocked { lock });
        };
        if seen.json_id.as_deref() != Some(info.id.as_str())
            || tag.is_some_and(|t| t != seen.generation)
        {
            return Err(LockError::Changed { lock });
        }
        self.delete(&seen.generation).await
    }

    async fn release(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        self.release_if(id, min_age).await
    }

    async fn read(&self) -> Result<Current, LockError> {
        Ok(self.seen().await?.map_or(Current::Unlocked, |s| s.current))
    }

    /// The lock's ID is the generation the create returned; its `Path` the
    /// lock object's URL.
    fn acquired(&self, info: &mut LockInfo, tag: Option<&str>) {
        if let Some(generation) = tag {
            info.id = generation.to_string();
        }
        info.path = self.location();
    }

    async fn safety_warning(&self) -> Option<String> {
        self.store.lock_safety_warning().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_beside_the_state() {
        assert_eq!(lock_key("p/default.tfstate"), "p/default.tflock");
        assert_eq!(lock_key("default.tfstate"), "default.tflock");
        assert_eq!(
            state_key_of_lock("a/b/dev.tflock").as_deref(),
            Some("a/b/dev.tfstate")
        );
        assert_eq!(state_key_of_lock("a/.tflock"), None);
        assert_eq!(state_key_of_lock("a/dev.tfstate"), None);
    }
}
