//! THE guarded state write, used by `push`, `restore`, `restore
//! --version-id` and `migrate`. The caller holds the state's lock
//! ([`guard`](super::guard)).
//!
//! 1. Read the current state (and its ETag).
//! 2. Apply the [`Rules`]: `terraform state push`'s (lineage, serial), none
//!    (`--force`), or those of a past version of the same state (same
//!    lineage, the serial set above the current one).
//! 3. Write compare-and-swap: `If-Match: <etag>` over the current state,
//!    create-only (`If-None-Match: *`) when there was none, unconditional
//!    only on a store that reports no ETags.
//! 4. When that write is refused (precondition failed / already exists),
//!    read the object back: if it has the MD5 of the bytes sent, the refusal
//!    was the SDK's retry of our own write whose response was lost, and the
//!    write succeeded. Otherwise someone wrote the state without the lock.
//! 5. Then, still under the lock, the digest item when the store has a
//!    DynamoDB lock table (`LockID = "<bucket>/<key>-md5"`, `Digest = <hex
//!    MD5 of the bytes written>`, as Terraform stores it after every write:
//!    no write can leave a digest that Terraform's next read refuses), and
//!    the caller's [`AfterWrite`] hook.

use super::current::Current;
use super::state::{self, PushRefusal, StateBody, StateInfo};
use crate::error::Error;
use crate::store::{ObjectStore, Payload, PutMode, StoreError};
use async_trait::async_trait;
use bytes::Bytes;

/// Which new bytes may replace the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rules {
    /// `terraform state push`'s rules ([`state::check_push`]).
    Push,
    /// No check (`--force`).
    Force,
    /// The bytes are version `id` of this state: the serial becomes one
    /// above both the current state's and the version's own; the lineage
    /// must be the current state's unless `force`.
    Version { id: String, force: bool },
}

impl Rules {
    /// [`Rules::Force`] when `force`, else [`Rules::Push`].
    pub fn push(force: bool) -> Self {
        if force { Rules::Force } else { Rules::Push }
    }
}

/// What the write is for: the words of its messages (the rules are the
/// same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `push`, and `restore` from a snapshot (which says what push says).
    Push,
    /// `restore --version-id`.
    RestoreVersion,
    /// The destination of `migrate`.
    Migration,
}

impl Purpose {
    /// The reason given when the rules refuse the write.
    pub fn refusal(self, r: &Refusal) -> String {
        match self {
            Purpose::Push => format!("{r}. Use --force to push anyway"),
            Purpose::RestoreVersion => format!("{r}. Use --force to restore it anyway"),
            Purpose::Migration => format!("{r}; use --force to overwrite"),
        }
    }

    /// The reason given when the state changed under the write.
    fn changed(self, previous_etag: Option<&str>) -> String {
        match self {
            Purpose::Push => format!(
                "the state changed while it was being pushed (ETag was {}); nothing was written. Pull it again and retry",
                previous_etag.unwrap_or("none: the state did not exist")
            ),
            Purpose::RestoreVersion => "the state changed while it was being restored (written without the lock); nothing was written. Retry".into(),
            Purpose::Migration => "the destination state changed while it was being written (someone wrote it without the lock); nothing was overwritten".into(),
        }
    }
}

/// Why the rules refuse a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Push(#[from] PushRefusal),
    #[error(
        "version {version_id} has lineage {version:?}, the current state {current:?}: it belongs to another state"
    )]
    OtherLineage {
        version_id: String,
        version: String,
        current: String,
    },
}

/// What the rules make of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    Refused(Refusal),
    /// The new bytes cannot be written under these rules (e.g. a version
    /// whose serial cannot be set).
    Invalid(String),
}

/// What a write does to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// There is no state yet.
    Create,
    /// It replaces the current state.
    Overwrite,
    /// The current state already has these bytes: nothing to write.
    Unchanged,
}

/// A write the rules allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    /// The bytes to write (the new bytes, or with [`Rules::Version`] the
    /// version with its new serial), with their MD5: shared, never copied.
    pub bytes: Payload,
    /// The serial written, when the rules set it.
    pub serial: Option<u64>,
}

/// Apply `rules` to `new` over `current` (the current state's bytes, if
/// any, wherever they are). Pure: reads and writes nothing but what
/// `current` reads of its own bytes.
pub fn plan(
    rules: &Rules,
    new: &Payload,
    current: Option<&dyn StateBody>,
) -> Result<Plan, PlanError> {
    let (bytes, serial) = match rules {
        Rules::Force => (new.clone(), None),
        Rules::Push => {
            // The same bytes replace nothing, so there is nothing to refuse.
            if !current.is_some_and(|c| c.same_payload(new)) {
                state::check_push_body(new, current)
                    .map_err(|r| PlanError::Refused(Refusal::Push(r)))?;
            }
            (new.clone(), None)
        }
        Rules::Version { id, force } => {
            let old = match state::parse(new) {
                Ok(StateInfo::Plain(s)) => s,
                Ok(StateInfo::Encrypted { .. }) => {
                    return Err(PlanError::Invalid(
                        "it is encrypted (OpenTofu): its serial cannot be set".into(),
                    ));
                }
                Err(reason) => return Err(PlanError::Invalid(reason)),
            };
            match current {
                None => (new.clone(), Some(old.serial)),
                Some(cur) => {
                    let cur = match cur.info() {
                        Ok(StateInfo::Plain(s)) => Some(s),
                        _ => None,
                    };
                    if let Some(c) = &cur
                        && !c.lineage.is_empty()
                        && c.lineage != old.lineage
                        && !force
                    {
                        return Err(PlanError::Refused(Refusal::OtherLineage {
                            version_id: id.clone(),
                            version: old.lineage,
                            current: c.lineage.clone(),
                        }));
                    }
                    let serial = cur.map_or(old.serial, |c| c.serial.max(old.serial)) + 1;
                    let bytes = state::with_serial(new, serial).map_err(PlanError::Invalid)?;
                    (Payload::new(bytes), Some(serial))
                }
            }
        }
    };
    let action = match current {
        None => Action::Create,
        Some(c) if c.same_payload(&bytes) => Action::Unchanged,
        Some(_) => Action::Overwrite,
    };
    Ok(Plan {
        action,
        bytes,
        serial,
    })
}

/// Run after every state write (and every write recognised as ours after a
/// lost response), still under the lock; an error fails the write. Not run
/// when nothing was written ([`Action::Unchanged`]). The place for work that
/// must follow each write, such as the MD5 digest item a DynamoDB lock table
/// keeps beside the state.
#[async_trait]
pub trait AfterWrite: Send + Sync {
    async fn state_written(
        &self,
        store: &dyn ObjectStore,
        key: &str,
        body: &Payload,
        etag: Option<&str>,
    ) -> Result<(), Error>;
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub action: Action,
    /// The state's ETag now (when the store reports one).
    pub etag: Option<String>,
    /// The ETag of the state that was replaced.
    pub previous_etag: Option<String>,
    /// Size of the bytes the state now holds.
    pub size: usize,
    /// The serial written, when the rules set it.
    pub serial: Option<u64>,
    /// The write's response was lost; the state read back is ours.
    pub recovered: bool,
}

impl Written {
    pub fn unchanged(&self) -> bool {
        self.action == Action::Unchanged
    }
}

/// One guarded write of the state at `key`.
pub struct StateWrite<'a> {
    store: &'a dyn ObjectStore,
    key: &'a str,
    rules: Rules,
    purpose: Purpose,
    /// The store's lock table, which records the digest of every write.
    digest: Option<&'a dyn AfterWrite>,
    after: Option<&'a dyn AfterWrite>,
}

impl<'a> StateWrite<'a> {
    pub fn new(store: &'a dyn ObjectStore, key: &'a str, rules: Rules, purpose: Purpose) -> Self {
        StateWrite {
            store,
            key,
            rules,
            purpose,
            digest: store.lock_table().map(|t| t as &dyn AfterWrite),
            after: None,
        }
    }

    /// Run `hook` after the state was written.
    pub fn after_write(mut self, hook: &'a dyn AfterWrite) -> Self {
        self.after = Some(hook);
        self
    }

    fn location(&self) -> String {
        self.store.location(self.key)
    }

    /// Read, apply the rules, write, recover a lost response: the whole
    /// write, for a caller that holds the lock.
    pub async fn write(&self, new: &[u8]) -> Result<Written, Error> {
        self.write_bytes(Payload::new(Bytes::copy_from_slice(new)))
            .await
    }

    /// [`StateWrite::write`] of bytes the caller hands over (not copied:
    /// a large state is held once), hashed already.
    pub async fn write_bytes(&self, new: Payload) -> Result<Written, Error> {
        let current = self.read_current().await?;
        let plan = self.plan(&new, current.as_ref())?;
        drop(new);
        self.commit(plan, current.as_ref()).await
    }

    /// Step 1: the current state, if there is one: streamed (a large one
    /// to a temporary file, never whole in memory) and checked against its
    /// ETag.
    pub async fn read_current(&self) -> Result<Option<Current>, Error> {
        Ok(Current::read(self.store, self.key).await?)
    }

    /// Step 2: [`plan`], its refusals worded for this write's purpose.
    pub fn plan(&self, new: &Payload, current: Option<&Current>) -> Result<Plan, Error> {
        plan(&self.rules, new, current.map(|c| c as &dyn StateBody)).map_err(|e| self.plan_error(e))
    }

    /// A [`PlanError`] worded for this write's purpose and location.
    pub fn plan_error(&self, e: PlanError) -> Error {
        match e {
            PlanError::Refused(r) => Error::StateConflict {
                location: self.location(),
                reason: self.purpose.refusal(&r),
            },
            PlanError::Invalid(reason) => Error::InvalidState {
                what: match &self.rules {
                    Rules::Version { id, .. } => format!("{} version {id}", self.location()),
                    _ => self.location(),
                },
                reason,
            },
        }
    }

    /// Steps 3 to 5 for `plan`, made against `current` (what
    /// [`StateWrite::read_current`] returned).
    pub async fn commit(&self, plan: Plan, current: Option<&Current>) -> Result<Written, Error> {
        let previous_etag = current.and_then(|c| c.meta.etag.clone());
        let mut written = Written {
            action: plan.action,
            etag: previous_etag.clone(),
            previous_etag: previous_etag.clone(),
            size: plan.bytes.len(),
            serial: plan.serial,
            recovered: false,
        };
        if plan.action == Action::Unchanged {
            return Ok(written);
        }
        let mode = match (current, &previous_etag) {
            (None, _) => PutMode::Create,
            (Some(_), Some(e)) => PutMode::Update(e.clone()),
            (Some(_), None) => PutMode::Overwrite, // a store without ETags
        };
        match self
            .store
            .put_bytes(self.key, plan.bytes.clone(), mode)
            .await
        {
            Ok(etag) => written.etag = etag,
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                // Our own write may have landed and its response been lost
                // (the SDK's retry then fails its condition): compare (the
                // object streamed through an MD5, not held).
                let now = self
                    .store
                    .get_to(self.key, &mut tokio::io::sink())
                    .await
                    .ok();
                match now {
                    Some((meta, md5)) if md5 == plan.bytes.md5_hex() => {
                        written.etag = meta.etag;
                        written.recovered = true;
                    }
                    _ => {
                        return Err(Error::StateConflict {
                            location: self.location(),
                            reason: self.purpose.changed(previous_etag.as_deref()),
                        });
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
        for hook in self.digest.iter().chain(self.after.iter()) {
            hook.state_written(self.store, self.key, &plan.bytes, written.etag.as_deref())
                .await?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::FsStore;
    use crate::store::{GetResult, ObjectMeta, Result as StoreResult, md5_hex};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn st(lineage: &str, serial: u64, resources: usize) -> Vec<u8> {
        let res: Vec<String> = (0..resources)
            .map(|i| {
                format!(
                    r#"{{"mode":"managed","type":"null_resource","name":"r{i}","instances":[]}}"#
                )
            })
            .collect();
        format!(
            "{{\n  \"version\": 4,\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{}},\n  \"resources\": [{}]\n}}\n",
            res.join(",")
        )
        .into_bytes()
    }

    fn serial_of(bytes: &[u8]) -> (u64, String) {
        match state::parse(bytes) {
            Ok(StateInfo::Plain(s)) => (s.serial, s.lineage),
            other => panic!("{other:?}"),
        }
    }

    /// A directory store whose next `put` is applied and then answered as
    /// the SDK's retry would be answered (its response lost): a failed
    /// precondition. With `foreign`, someone else's bytes land instead.
    #[derive(Debug)]
    struct LostResponse {
        inner: FsStore,
        armed: AtomicBool,
        foreign: Option<Vec<u8>>,
    }

    #[async_trait]
    impl ObjectStore for LostResponse {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn bucket(&self) -> &str {
            self.inner.bucket()
        }
        async fn get(&self, key: &str) -> StoreResult<GetResult> {
            self.inner.get(key).await
        }
        async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: Vec<u8>,
            mode: PutMode,
        ) -> StoreResult<Option<String>> {
            if !self.armed.swap(false, Ordering::SeqCst) {
                return self.inner.put(key, body, mode).await;
            }
            let body = self.foreign.clone().unwrap_or(body);
            self.inner.put(key, body, mode).await?;
            Err(StoreError::Precondition {
                location: self.inner.location(key),
            })
        }
        async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
            self.inner.delete(key, if_match).await
        }
        async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
            self.inner.list(prefix).await
        }
    }

    fn dir_store() -> (tempfile::TempDir, FsStore) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = FsStore::new(dir.path()).expect("store");
        (dir, store)
    }

    async fn seed(store: &dyn ObjectStore, bytes: &[u8]) {
        store
            .put("k", bytes.to_vec(), PutMode::Create)
            .await
            .expect("seed");
    }

    async fn now(store: &dyn ObjectStore) -> Vec<u8> {
        store.get("k").await.expect("get").bytes
    }

    #[tokio::test]
    async fn push_rules_create_update_unchanged_refused() {
        let (_d, store) = dir_store();
        let w = StateWrite::new(&store, "k", Rules::Push, Purpose::Push);
        let out = w.write(&st("L", 1, 1)).await.expect("create");
        assert_eq!(out.action, Action::Create);
        assert_eq!(out.previous_etag, None);
        let first_etag = out.etag.clone();
        assert!(first_etag.is_some(), "the directory store reports ETags");

        let out = w.write(&st("L", 2, 1)).await.expect("update");
        assert_eq!(out.action, Action::Overwrite);
        assert_eq!(out.previous_etag, first_etag);
        assert_eq!(now(&store).await, st("L", 2, 1));

        let out = w.write(&st("L", 2, 1)).await.expect("same bytes");
        assert!(out.unchanged());

        for (bad, want) in [
            (st("L", 1, 1), "older serial"),
            (st("M", 3, 1), "lineage"),
            (st("L", 2, 5), "same serial"),
        ] {
            match w.write(&bad).await {
                Err(Error::StateConflict { location, reason }) => {
                    assert!(location.ends_with("/k"), "{location}");
                    assert!(
                        reason.ends_with("Use --force to push anyway"),
                        "{want}: {reason}"
                    );
                }
                other => panic!("{want}: {other:?}"),
            }
        }
        assert_eq!(now(&store).await, st("L", 2, 1), "refusals write nothing");

        let forced = StateWrite::new(&store, "k", Rules::Force, Purpose::Push);
        assert_eq!(
            forced.write(&st("M", 1, 1)).await.expect("force").action,
            Action::Overwrite
        );
        assert_eq!(now(&store).await, st("M", 1, 1));
    }

    #[tokio::test]
    async fn migration_refusals_are_worded_for_migration() {
        let (_d, store) = dir_store();
        seed(&store, &st("L", 5, 1)).await;
        let w = StateWrite::new(&store, "k", Rules::Push, Purpose::Migration);
        match w.write(&st("M", 6, 1)).await {
            Err(Error::StateConflict { reason, .. }) => {
                assert!(reason.ends_with("; use --force to overwrite"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn version_rules_bump_the_serial_and_check_the_lineage() {
        let (_d, store) = dir_store();
        let version = |force| Rules::Version {
            id: "v1".into(),
            force,
        };
        // No current state: the version as it was.
        let w = StateWrite::new(&store, "k", version(false), Purpose::RestoreVersion);
        let out = w.write(&st("L", 3, 1)).await.expect("create");
        assert_eq!((out.action, out.serial), (Action::Create, Some(3)));
        assert_eq!(now(&store).await, st("L", 3, 1));

        // Over serial 7: serial 8, everything else byte for byte.
        store
            .put("k", st("L", 7, 2), PutMode::Overwrite)
            .await
            .expect("put");
        let out = w.write(&st("L", 3, 1)).await.expect("restore");
        assert_eq!((out.action, out.serial), (Action::Overwrite, Some(8)));
        let expected = String::from_utf8(st("L", 3, 1))
            .expect("utf8")
            .replace("\"serial\": 3,", "\"serial\": 8,")
            .into_bytes();
        assert_eq!(now(&store).await, expected);
        assert_eq!(out.size, expected.len());

        // Another lineage: refused unless forced.
        match w.write(&st("M", 1, 1)).await {
            Err(Error::StateConflict { reason, .. }) => assert!(
                reason.contains("version v1 has lineage \"M\"")
                    && reason.ends_with("Use --force to restore it anyway"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        let forced = StateWrite::new(&store, "k", version(true), Purpose::RestoreVersion);
        assert_eq!(
            forced.write(&st("M", 1, 1)).await.expect("forced").serial,
            Some(9)
        );
        assert_eq!(serial_of(&now(&store).await), (9, "M".into()));

        // An encrypted version has no serial to set.
        match w
            .write(br#"{"meta":{},"encrypted_data":"x","encryption_version":"v0"}"#)
            .await
        {
            Err(Error::InvalidState { what, reason }) => {
                assert!(what.ends_with("/k version v1"), "{what}");
                assert!(reason.contains("encrypted"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_lost_response_is_recognised_as_our_own_write() {
        for (rules, purpose) in [
            (Rules::Push, Purpose::Push),
            (Rules::Force, Purpose::Migration),
            (
                Rules::Version {
                    id: "v".into(),
                    force: false,
                },
                Purpose::RestoreVersion,
            ),
        ] {
            // Both an If-Match update and a create-only write.
            for existing in [Some(st("L", 1, 1)), None] {
                let (_d, inner) = dir_store();
                if let Some(b) = &existing {
                    seed(&inner, b).await;
                }
                let store = LostResponse {
                    inner,
                    armed: AtomicBool::new(true),
                    foreign: None,
                };
                let w = StateWrite::new(&store, "k", rules.clone(), purpose);
                let out = w
                    .write(&st("L", 2, 3))
                    .await
                    .unwrap_or_else(|e| panic!("{purpose:?} over {existing:?}: {e}"));
                assert!(out.recovered, "{purpose:?}");
                assert_eq!(out.etag, store.head("k").await.expect("head").etag);
                assert_eq!(serial_of(&now(&store).await).1, "L");
            }
        }
    }

    #[tokio::test]
    async fn someone_elses_write_is_a_conflict() {
        for purpose in [Purpose::Push, Purpose::RestoreVersion, Purpose::Migration] {
            let (_d, inner) = dir_store();
            seed(&inner, &st("L", 1, 1)).await;
            let store = LostResponse {
                inner,
                armed: AtomicBool::new(true),
                foreign: Some(st("L", 9, 9)),
            };
            let rules = match purpose {
                Purpose::RestoreVersion => Rules::Version {
                    id: "v".into(),
                    force: false,
                },
                _ => Rules::Push,
            };
            let w = StateWrite::new(&store, "k", rules, purpose);
            match w.write(&st("L", 2, 1)).await {
                Err(Error::StateConflict { reason, .. }) => {
                    assert!(reason.contains("changed while it was being"), "{reason}")
                }
                other => panic!("{purpose:?}: {other:?}"),
            }
        }
    }

    #[derive(Default)]
    struct Record(Mutex<Vec<(String, String, Option<String>)>>);

    #[async_trait]
    impl AfterWrite for Record {
        async fn state_written(
            &self,
            _store: &dyn ObjectStore,
            key: &str,
            body: &Payload,
            etag: Option<&str>,
        ) -> Result<(), Error> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push((
                key.into(),
                md5_hex(body),
                etag.map(str::to_string),
            ));
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_hook_runs_after_each_write_only() {
        let (_d, store) = dir_store();
        let hook = Record::default();
        let w = StateWrite::new(&store, "k", Rules::Push, Purpose::Push).after_write(&hook);
        let out = w.write(&st("L", 1, 1)).await.expect("create");
        w.write(&st("L", 1, 1)).await.expect("unchanged");
        assert!(w.write(&st("L", 0, 1)).await.is_err(), "refused");
        let seen = hook.0.lock().expect("lock").clone();
        assert_eq!(seen, [("k".to_string(), md5_hex(&st("L", 1, 1)), out.etag)]);
    }
}
