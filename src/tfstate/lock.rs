//! The state lock, exactly as Terraform >= 1.11 and OpenTofu >= 1.10 take it
//! with `use_lockfile = true`: a JSON object at `<state key>.tflock`, created
//! with a conditional `PUT If-None-Match: *`.
//!
//! This file is the only place where a `.tflock` is taken ([`acquire`]) or
//! released ([`release`]); [`TfLock`] is that lock as one
//! [`LockStore`](super::guard::LockStore) of the lock set that
//! [`guard`](super::guard) takes for a state. Its errors ([`LockError`])
//! and the holder display live here too. Nothing here prints.

use super::guard::LockStore;
use super::keys;
use crate::duration::short_duration;
use crate::output::escape_for_terminal as esc;
use crate::store::{ObjectStore, PutMode, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Why a lock could not be taken, checked or released. The crate's
/// [`Error`](crate::Error) wraps it (store errors are passed on as store
/// errors).
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("{}", lock_held(lock, holder, *waited))]
    Held {
        lock: String,
        holder: Holder,
        waited: Duration,
    },

    #[error(
        "lock ID {given:?} does not match the existing lock ID {held:?} on {lock}.\nRun `tfsync status` to see who holds it; pass that ID if you mean to release it."
    )]
    IdMismatch {
        lock: String,
        given: String,
        held: String,
    },

    #[error("{lock} does not exist: the state is not locked, nothing to release")]
    NotLocked { lock: String },

    #[error(
        "{lock} exists but is not a readable lock ({reason}).\nInspect it with `tfsync status`; if it is debris, delete it with your S3 tool (a DynamoDB lock item with your DynamoDB tool)."
    )]
    Unreadable { lock: String, reason: String },

    #[error(
        "{lock} changed while it was being released; it was left in place. Run `tfsync status` to see who holds it now"
    )]
    Changed { lock: String },

    #[error(
        "lock {id} on {lock} is only {} old, younger than --older-than {}: it was left in place",
        short_duration(*age),
        short_duration(*bound)
    )]
    TooYoung {
        lock: String,
        id: String,
        age: Duration,
        bound: Duration,
    },
}

/// Who holds a lock we could not take.
#[derive(Debug)]
pub enum Holder {
    Lock(Box<LockInfo>),
    /// The lock object exists but is not a lock we can read.
    Unreadable(String),
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

/// Go's `statemgr.LockInfo`, fields in Terraform's order. Unknown fields in
/// a lock written by another tool are ignored when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Operation", default)]
    pub operation: String,
    #[serde(rename = "Info", default)]
    pub info: String,
    #[serde(rename = "Who", default)]
    pub who: String,
    #[serde(rename = "Version", default)]
    pub version: String,
    #[serde(
        rename = "Created",
        serialize_with = "ser_created",
        deserialize_with = "de_created"
    )]
    pub created: DateTime<Utc>,
    #[serde(rename = "Path", default)]
    pub path: String,
}

impl LockInfo {
    /// A new lock for `<bucket>/<state_key>`, with a random ID and `Who` =
    /// `user@host` from the operating system (never from credentials).
    pub fn new(operation: &str, info: &str, bucket: &str, state_key: &str) -> Self {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            info: info.to_string(),
            who: who(),
            version: format!("tfsync {}", env!("CARGO_PKG_VERSION")),
            created: Utc::now(),
            path: format!("{bucket}/{state_key}"),
        }
    }

    /// The JSON body Terraform's `json.Marshal(LockInfo)` would write.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse a lock written by Terraform, OpenTofu or tfsync.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let info: LockInfo = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if info.id.trim().is_empty() {
            return Err("the lock has an empty ID".into());
        }
        Ok(info)
    }

    /// How long ago the lock was created (zero if its clock is ahead of ours).
    pub fn age(&self) -> Duration {
        (Utc::now() - self.created).to_std().unwrap_or_default()
    }
}

/// `user@host`, as Terraform's `os/user` + `os.Hostname` give it.
pub fn who() -> String {
    let user = whoami::username().unwrap_or_else(|_| "unknown".into());
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// Go's `time.RFC3339Nano` in UTC: up to 9 fractional digits, trailing zeros
/// trimmed, no fraction at all when it is zero, `Z` for the zone.
pub fn go_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos() % 1_000_000_000;
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

fn ser_created<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&go_rfc3339_nano(t))
}

fn de_created<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| serde::de::Error::custom(format!("Created {s:?} is not RFC 3339: {e}")))
}

/// What is in a lock record now.
#[derive(Clone)]
pub enum Current {
    Unlocked,
    Locked {
        info: LockInfo,
        /// What a release compares before its delete: the `.tflock`'s
        /// ETag, or a DynamoDB lock item's exact `Info` text.
        etag: Option<String>,
    },
    Unreadable {
        reason: String,
        etag: Option<String>,
    },
}

/// Read the lock that guards `state_key` (one GET).
pub async fn read(store: &dyn ObjectStore, state_key: &str) -> Result<Current, LockError> {
    match store.get(&keys::lock_key(state_key)).await {
        Ok(got) => Ok(match LockInfo::from_json(&got.bytes) {
            Ok(info) => Current::Locked {
                info,
                etag: got.meta.etag,
            },
            Err(reason) => Current::Unreadable {
                reason,
                etag: got.meta.etag,
            },
        }),
        Err(StoreError::NotFound { .. }) => Ok(Current::Unlocked),
        Err(e) => Err(e.into()),
    }
}

/// Take the lock: one create-only PUT of `<state key>.tflock`.
///
/// If the PUT is refused, the holder is read and reported. If the holder is
/// this very lock (same ID: the response to our PUT was lost and the SDK's
/// retry ran into our own object), the lock is ours. With a non-zero `wait`,
/// retries with jittered exponential backoff until the deadline.
///
/// Returns the lock object's ETag when the store reported one, for
/// [`release_own`].
pub async fn acquire(
    store: &dyn ObjectStore,
    state_key: &str,
    info: &LockInfo,
    wait: Duration,
) -> Result<Option<String>, LockError> {
    let lock_key = keys::lock_key(state_key);
    let lock = store.location(&lock_key);
    let lock_key = &lock_key;
    acquire_with(&lock, wait, move || async move {
        match store.put(lock_key, info.to_json(), PutMode::Create).await {
            Ok(etag) => Ok(Attempt::Taken(etag)),
            Err(StoreError::AlreadyExists { .. }) => {
                Ok(Attempt::refused(info, read(store, state_key).await?))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// One try at creating a lock record.
pub enum Attempt {
    /// Ours now, with the tag to release it by.
    Taken(Option<String>),
    /// Someone else holds it.
    Held(Holder),
    /// Refused, yet gone when read: try again at once.
    Vanished,
}

impl Attempt {
    /// A create refused: what the record read right after says. Our own ID
    /// means the response to our create was lost and the SDK's retry ran
    /// into our own record: it is ours.
    pub fn refused(ours: &LockInfo, now: Current) -> Attempt {
        match now {
            Current::Locked { info, etag } if info.id == ours.id => Attempt::Taken(etag),
            Current::Locked { info, .. } => Attempt::Held(Holder::Lock(Box::new(info))),
            Current::Unreadable { reason, .. } => Attempt::Held(Holder::Unreadable(reason)),
            Current::Unlocked => Attempt::Vanished,
        }
    }
}

/// Call `attempt` until the lock at `lock` is taken or, held by someone
/// else, `wait` has passed (jittered exponential backoff in between).
pub async fn acquire_with<F, Fut>(
    lock: &str,
    wait: Duration,
    mut attempt: F,
) -> Result<Option<String>, LockError>
where
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Result<Attempt, LockError>> + Send,
{
    let deadline = crate::duration::deadline_after(wait);
    let mut delay = Duration::from_millis(100);
    let mut vanished = 0;
    loop {
        let holder = match attempt().await? {
            Attempt::Taken(tag) => return Ok(tag),
            Attempt::Held(h) => h,
            // Released between our write and our read: try again at once.
            Attempt::Vanished if vanished < 5 => {
                vanished += 1;
                continue;
            }
            Attempt::Vanished => Holder::Unreadable(
                "the server refuses to create the lock, yet it cannot be read".into(),
            ),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(LockError::Held {
                lock: lock.to_string(),
                holder,
                waited: wait,
            });
        }
        let jittered = delay.mul_f64(0.5 + rand::random::<f64>());
        tokio::time::sleep(jittered.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Release a lock whose ID is `id`: read it, compare the ID, delete it.
/// Returns what the lock said. A lock with another ID is left alone.
pub async fn release(
    store: &dyn ObjectStore,
    state_key: &str,
    id: &str,
) -> Result<LockInfo, LockError> {
    release_checked(store, state_key, id, None).await
}

/// Release a lock whose ID is `id` only if it is at least `min_age` old,
/// judged on what the lock says right now (read just before the delete): a
/// lock that was replaced or renewed since the caller last looked is left
/// alone.
pub async fn release_stale(
    store: &dyn ObjectStore,
    state_key: &str,
    id: &str,
    min_age: Duration,
) -> Result<LockInfo, LockError> {
    release_checked(store, state_key, id, Some(min_age)).await
}

async fn release_checked(
    store: &dyn ObjectStore,
    state_key: &str,
    id: &str,
    min_age: Option<Duration>,
) -> Result<LockInfo, LockError> {
    let lock_key = keys::lock_key(state_key);
    let lock = store.location(&lock_key);
    let (info, etag) = check(read(store, state_key).await?, &lock, id, min_age)?;
    // The If-Match makes the delete the one of the lock just read where the
    // server honours it: a lock its holder released in between is reported
    // as released by them (NotLocked), never as ours; one re-taken since
    // (another ETag) is left alone.
    let deleted = match etag.as_deref() {
        Some(etag) => store.delete_if(&lock_key, etag).await,
        None => store.delete(&lock_key, None).await.map(|()| true),
    };
    match deleted {
        Ok(true) => Ok(info),
        Ok(false) => Err(LockError::NotLocked { lock }),
        Err(StoreError::Precondition { .. }) => Err(LockError::Changed { lock }),
        Err(e) => Err(e.into()),
    }
}

/// Is `current` (read from `lock`) the lock `id`, at least `min_age` old?
/// Returns what it says and its ETag.
pub fn check(
    current: Current,
    lock: &str,
    id: &str,
    min_age: Option<Duration>,
) -> Result<(LockInfo, Option<String>), LockError> {
    let lock = lock.to_string();
    match current {
        Current::Unlocked => Err(LockError::NotLocked { lock }),
        Current::Unreadable { reason, .. } => Err(LockError::Unreadable { lock, reason }),
        Current::Locked { info, .. } if info.id != id => Err(LockError::IdMismatch {
            lock,
            given: id.to_string(),
            held: info.id,
        }),
        Current::Locked { info, .. } if min_age.is_some_and(|m| info.age() < m) => {
            Err(LockError::TooYoung {
                lock,
                id: info.id.clone(),
                age: info.age(),
                bound: min_age.unwrap_or_default(),
            })
        }
        Current::Locked { info, etag } => Ok((info, etag)),
    }
}

/// Release a lock this process took, knowing the ETag `acquire` returned:
/// one conditional DELETE instead of read + compare + delete.
///
/// Where the server honours `If-Match` on DELETE (AWS, SeaweedFS, moto, the
/// directory store) this is atomic: a lock that was broken and re-taken by
/// someone else in the meantime has another ETag and is left alone. Where it
/// does not (Ceph RGW), the window is the one Terraform's own unlock has
/// between its GET and its DELETE. Without an ETag, falls back to
/// [`release`].
pub async fn release_own(
    store: &dyn ObjectStore,
    state_key: &str,
    info: &LockInfo,
    etag: Option<&str>,
) -> Result<(), LockError> {
    let Some(etag) = etag else {
        return release(store, state_key, &info.id).await.map(|_| ());
    };
    let lock_key = keys::lock_key(state_key);
    match store.delete(&lock_key, Some(etag)).await {
        Ok(()) => Ok(()),
        Err(StoreError::Precondition { .. }) => Err(LockError::Changed {
            lock: store.location(&lock_key),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The `.tflock` of one state as a [`LockStore`]: the first lock of every
/// lock set.
pub struct TfLock<'a> {
    store: &'a dyn ObjectStore,
    state_key: String,
}

impl<'a> TfLock<'a> {
    pub fn new(store: &'a dyn ObjectStore, state_key: &str) -> Self {
        TfLock {
            store,
            state_key: state_key.to_string(),
        }
    }
}

#[async_trait]
impl LockStore for TfLock<'_> {
    fn location(&self) -> String {
        self.store.location(&keys::lock_key(&self.state_key))
    }

    async fn acquire(&self, info: &LockInfo, wait: Duration) -> Result<Option<String>, LockError> {
        acquire(self.store, &self.state_key, info, wait).await
    }

    async fn release_own(&self, info: &LockInfo, tag: Option<&str>) -> Result<(), LockError> {
        release_own(self.store, &self.state_key, info, tag).await
    }

    async fn release(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        release_checked(self.store, &self.state_key, id, min_age).await
    }

    async fn read(&self) -> Result<Current, LockError> {
        read(self.store, &self.state_key).await
    }

    async fn safety_warning(&self) -> Option<String> {
        self.store.lock_safety_warning().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERRAFORM_LOCK: &str = r#"{"ID":"59fef1d5-d094-c52e-6aa5-e30279394a88","Operation":"OperationTypeApply","Info":"","Who":"alice@build-7","Version":"1.11.0","Created":"2022-12-11T09:55:24.570354Z","Path":"my-bucket/prod/terraform.tfstate"}"#;

    #[test]
    fn parses_a_terraform_lock_and_writes_it_back_byte_for_byte() {
        let info = LockInfo::from_json(TERRAFORM_LOCK.as_bytes()).expect("parse");
        assert_eq!(info.id, "59fef1d5-d094-c52e-6aa5-e30279394a88");
        assert_eq!(info.operation, "OperationTypeApply");
        assert_eq!(info.path, "my-bucket/prod/terraform.tfstate");
        assert_eq!(
            String::from_utf8(info.to_json()).expect("utf8"),
            TERRAFORM_LOCK
        );
    }

    #[test]
    fn parses_nine_digits_and_extra_fields() {
        let raw = r#"{"ID":"a","Operation":"plan","Info":"x","Who":"u@h","Version":"1.10.0","Created":"2025-03-01T10:00:00.123456789Z","Path":"b/k","Tags":{"team":"x"}}"#;
        let info = LockInfo::from_json(raw.as_bytes()).expect("parse");
        assert_eq!(info.created.timestamp_subsec_nanos(), 123_456_789);
        assert!(
            String::from_utf8(info.to_json())
                .expect("utf8")
                .contains("\"Created\":\"2025-03-01T10:00:00.123456789Z\"")
        );
    }

    #[test]
    fn rejects_empty_and_malformed_locks() {
        assert!(LockInfo::from_json(b"").is_err());
        assert!(LockInfo::from_json(b"{}").is_err());
        assert!(LockInfo::from_json(br#"{"ID":"","Created":"2025-03-01T10:00:00Z"}"#).is_err());
        assert!(LockInfo::from_json(br#"{"ID":"x","Created":"yesterday"}"#).is_err());
    }

    #[test]
    fn emits_fields_in_terraform_order() {
        let info = LockInfo::new("state-push", "", "bkt", "env:/dev/k.tfstate");
        let s = String::from_utf8(info.to_json()).expect("utf8");
        let order: Vec<usize> = [
            "\"ID\"",
            "\"Operation\"",
            "\"Info\"",
            "\"Who\"",
            "\"Version\"",
            "\"Created\"",
            "\"Path\"",
        ]
        .iter()
        .map(|f| s.find(f).expect("field present"))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert!(s.ends_with(r#""Path":"bkt/env:/dev/k.tfstate"}"#), "{s}");
        assert!(uuid::Uuid::parse_str(&info.id).is_ok());
        assert!(info.who.contains('@'));
    }

    #[test]
    fn go_time_format() {
        let t = DateTime::parse_from_rfc3339("2022-12-11T09:55:24.570000Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(go_rfc3339_nano(&t), "2022-12-11T09:55:24.57Z");
        let t = DateTime::parse_from_rfc3339("2022-12-11T09:55:24Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(go_rfc3339_nano(&t), "2022-12-11T09:55:24Z");
        let t = DateTime::parse_from_rfc3339("2022-12-11T10:55:24.000000001+01:00")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(go_rfc3339_nano(&t), "2022-12-11T09:55:24.000000001Z");
    }

    /// The holder releases its lock right after our read of it: between
    /// the re-read of a release and its delete (issue 9 item 17).
    #[derive(Debug)]
    struct ReleasedAfterRead {
        inner: crate::store::fs::FsStore,
    }

    #[async_trait]
    impl ObjectStore for ReleasedAfterRead {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn bucket(&self) -> &str {
            self.inner.bucket()
        }
        async fn get(&self, key: &str) -> crate::store::Result<crate::store::GetResult> {
            let got = self.inner.get(key).await?;
            if key.ends_with(keys::LOCK_SUFFIX) {
                self.inner.delete(key, None).await?;
            }
            Ok(got)
        }
        async fn head(&self, key: &str) -> crate::store::Result<crate::store::ObjectMeta> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: Vec<u8>,
            mode: PutMode,
        ) -> crate::store::Result<Option<String>> {
            self.inner.put(key, body, mode).await
        }
        async fn delete(&self, key: &str, if_match: Option<&str>) -> crate::store::Result<()> {
            self.inner.delete(key, if_match).await
        }
        async fn delete_if(&self, key: &str, etag: &str) -> crate::store::Result<bool> {
            self.inner.delete_if(key, etag).await
        }
        async fn list(&self, prefix: &str) -> crate::store::Result<Vec<crate::store::ObjectMeta>> {
            self.inner.list(prefix).await
        }
    }

    #[tokio::test]
    async fn a_lock_released_by_its_holder_before_our_delete_is_not_ours() {
        let dir = tempfile::tempdir().expect("tmp");
        let inner = crate::store::fs::FsStore::open(dir.path()).expect("store");
        let store = ReleasedAfterRead {
            inner: inner.clone(),
        };
        for stale in [true, false] {
            let info = LockInfo::new("OperationTypeApply", "", "b", "k");
            acquire(&inner, "k", &info, Duration::ZERO)
                .await
                .expect("lock");
            let r = if stale {
                release_stale(&store, "k", &info.id, Duration::ZERO).await
            } else {
                release(&store, "k", &info.id).await
            };
            match r {
                Err(LockError::NotLocked { lock }) => assert!(lock.ends_with("k.tflock"), "{lock}"),
                Ok(_) => panic!("reported released: the holder had released it"),
                Err(e) => panic!("{e}"),
            }
        }
    }
}
