//! The lock lifecycle: the locks of a state held while a closure runs, and
//! released on every path (success, error, a lock held by someone else,
//! SIGINT, SIGTERM).
//!
//! A state is guarded by a [`LockSet`]: every lock record that must be held
//! to write it, taken in order and released in reverse order, each release
//! checking that the record is still ours: the `.tflock` ([`TfLock`]) and,
//! when the store has a DynamoDB lock table (`dynamodb_table`), the lock
//! item with the same ID and Info bytes ([`ItemLock`]), taken after the
//! `.tflock` as Terraform takes them. Everything here (rollback when a
//! later record is refused, release on signals, `unlock`, `force-unlock`)
//! covers both.
//!
//! Nothing here prints: warnings go to the caller's [`Warn`] callback.

use super::dynamo::ItemLock;
use super::local_lock::LocalLock;
use super::lock::{Current, LockError, LockInfo, TfLock, check};
use crate::error::Error;
use crate::store::ObjectStore;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Where warnings go (the command layer prints them).
pub type Warn<'a> = &'a (dyn Fn(String) + Sync);

/// One kind of lock record guarding one state.
#[async_trait]
pub trait LockStore: Send + Sync {
    /// Where the record is, for messages (`s3://bucket/key.tflock`).
    fn location(&self) -> String;

    /// Take the lock with `info`, retrying until `wait` has passed. A record
    /// that is already ours (same ID: the response to our write was lost) is
    /// ours. Returns a tag for [`LockStore::release_own`] (the `.tflock`'s
    /// ETag), when there is one.
    async fn acquire(&self, info: &LockInfo, wait: Duration) -> Result<Option<String>, LockError>;

    /// Release a lock this process took, with the tag `acquire` returned.
    async fn release_own(&self, info: &LockInfo, tag: Option<&str>) -> Result<(), LockError>;

    /// Release the lock only if it has the ID `id` (and, with `min_age`, is
    /// at least that old), judged on the record read right before the
    /// delete. Returns what the record said.
    async fn release(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError>;

    /// What the record says now.
    async fn read(&self) -> Result<Current, LockError>;

    /// After the lock was taken: a warning when cheap signals say this
    /// record may not exclude other writers.
    async fn safety_warning(&self) -> Option<String> {
        None
    }

    /// A lock this process did not take is held for it by `id` (`push
    /// --lock-id`): a record whose writes must name the lock (an Azure
    /// lease) starts naming it. Default: nothing to do.
    fn adopt(&self, id: &str) {
        let _ = id;
    }

    /// `tfsync lock` took the record with `info`, and `acquire` returned
    /// `tag`: make `info` what the record says it is, for the caller to
    /// show (the gcs lock's ID is the lock object's generation). Default:
    /// nothing to change.
    fn acquired(&self, info: &mut LockInfo, tag: Option<&str>) {
        let _ = (info, tag);
    }
}

/// Every lock record of one state, in the order they are taken.
pub struct LockSet<'a> {
    /// The state's location, for messages.
    state: String,
    parts: Vec<Box<dyn LockStore + 'a>>,
}

impl<'a> LockSet<'a> {
    /// The locks that guard the state at `state_key` of `store`. This is the
    /// one place that decides which records make up a state's lock.
    pub fn new(store: &'a dyn ObjectStore, state_key: &str) -> Self {
        // Terraform's local backend: the OS lock on the state file and its
        // lock info file; everywhere else the `.tflock`.
        let primary: Box<dyn LockStore + 'a> =
            match (store.as_local(), store.as_azure(), store.as_gcs()) {
                (Some(local), _, _) => Box::new(LocalLock::new(local, state_key)),
                (_, Some(azure), _) => {
                    Box::new(super::azure_lock::LeaseLock::new(azure, state_key))
                }
                (_, _, Some(gcs)) => Box::new(super::gcs_lock::GcsLock::new(gcs, state_key)),
                _ => Box::new(TfLock::new(store, state_key)),
            };
        let mut parts: Vec<Box<dyn LockStore + 'a>> = vec![primary];
        if let Some(table) = store.lock_table() {
            parts.push(Box::new(ItemLock::new(table, store.bucket(), state_key)));
        }
        LockSet {
            state: store.location(state_key),
            parts,
        }
    }

    /// The state's location, for messages.
    pub fn state_location(&self) -> &str {
        &self.state
    }

    /// Where the first record is (`s3://b/k.tflock`), for messages.
    pub fn lock_location(&self) -> String {
        self.primary().location()
    }

    /// The first record (the `.tflock`): the one `status` and the messages
    /// about the holder are about.
    fn primary(&self) -> &dyn LockStore {
        self.parts[0].as_ref()
    }

    /// Does every record say the lock `id` is held, at least `min_age` old?
    /// Returns what the first record says.
    pub async fn check(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        let mut first = None;
        for p in &self.parts {
            let (info, _) = check(p.read().await?, &p.location(), id, min_age)?;
            p.adopt(id);
            first.get_or_insert(info);
        }
        first.ok_or_else(|| LockError::NotLocked {
            lock: self.primary().location(),
        })
    }

    /// What each record says now, with where it is, in the order taken.
    pub async fn records(&self) -> Result<Vec<(String, Current)>, LockError> {
        let mut out = Vec::new();
        for p in &self.parts {
            out.push((p.location(), p.read().await?));
        }
        Ok(out)
    }

    /// The holder, found in any record (the first one that is not
    /// unlocked), and where it was found.
    pub async fn holder(&self) -> Result<(String, Current), LockError> {
        let mut records = self.records().await?;
        let at = records
            .iter()
            .position(|(_, c)| !matches!(c, Current::Unlocked))
            .unwrap_or(0);
        Ok(records.swap_remove(at))
    }

    /// Before `unlock` / `force-unlock`: is the lock `id` (at least
    /// `min_age` old) in at least one record, and in no record another
    /// lock? A record that is absent is fine (a teammate without
    /// `use_lockfile` holds the item only; one without the table, the
    /// `.tflock` only). Returns what the first record that has it says.
    pub async fn inspect(
        &self,
        id: &str,
        min_age: Option<Duration>,
    ) -> Result<LockInfo, LockError> {
        let mut found = None;
        let mut other = None;
        for (location, current) in self.records().await? {
            match check(current, &location, id, min_age) {
                Ok((info, _)) => {
                    found.get_or_insert(info);
                }
                Err(LockError::NotLocked { .. }) => {}
                Err(e) => {
                    other.get_or_insert(e);
                }
            }
        }
        match (other, found) {
            (Some(e), _) => Err(e),
            (None, Some(info)) => Ok(info),
            (None, None) => Err(LockError::NotLocked {
                lock: self.primary().location(),
            }),
        }
    }

    /// `unlock` / `force-unlock`: release every record that carries `id`
    /// (and is at least `min_age` old), last taken first, each checked right
    /// before its delete; absent records are skipped. A record holding
    /// another lock (or unreadable) is left in place, and so is every record
    /// when it is seen before any delete ([`LockSet::inspect`]). Returns
    /// what the first record released said.
    pub async fn release(
        &self,
        id: &str,
        min_age: Option<Duration>,
    ) -> Result<LockInfo, LockError> {
        // With several records, none is deleted before all were seen (one
        // record alone is checked by its own release, as before).
        if self.parts.len() > 1 {
            self.inspect(id, min_age).await?;
        }
        let mut first = None;
        let mut error = None;
        let mut not_locked = None;
        for p in self.parts.iter().rev() {
            match p.release(id, min_age).await {
                Ok(info) => first = Some(info),
                Err(e @ LockError::NotLocked { .. }) => {
                    // The first record's own words (the local lock's are
                    // about its OS lock, not a missing object).
                    not_locked = Some(e);
                }
                Err(e) => {
                    // A record behind a refused one is not released either.
                    error = Some(e);
                    break;
                }
            }
        }
        match (error, first) {
            (Some(e), _) => Err(e),
            (None, Some(info)) => Ok(info),
            (None, None) => Err(not_locked.unwrap_or_else(|| LockError::NotLocked {
                lock: self.primary().location(),
            })),
        }
    }
}

/// The locks to take on one state, and what they say.
pub struct LockSpec<'a> {
    pub store: &'a dyn ObjectStore,
    pub state_key: String,
    pub operation: String,
    pub info: String,
}

impl<'a> LockSpec<'a> {
    pub fn new(store: &'a dyn ObjectStore, state_key: &str, operation: &str) -> Self {
        LockSpec {
            store,
            state_key: state_key.to_string(),
            operation: operation.to_string(),
            info: String::new(),
        }
    }

    /// The lock's `Info` text.
    pub fn with_info(mut self, info: &str) -> Self {
        self.info = info.to_string();
        self
    }

    fn lock_info(&self) -> LockInfo {
        LockInfo::new(
            &self.operation,
            &self.info,
            self.store.bucket(),
            &self.state_key,
        )
    }
}

/// One record to take: which record, with which lock, for which state.
struct Part<'s> {
    lock: &'s dyn LockStore,
    info: &'s LockInfo,
    state: &'s str,
}

fn parts<'s>(sets: &'s [LockSet<'_>], infos: &'s [LockInfo]) -> Vec<Part<'s>> {
    sets.iter()
        .zip(infos)
        .flat_map(|(set, info)| {
            set.parts.iter().map(move |p| Part {
                lock: p.as_ref(),
                info,
                state: &set.state,
            })
        })
        .collect()
}

/// Take `parts` in order, recording each tag in `tags` as soon as it is held.
async fn take_all(
    parts: &[Part<'_>],
    wait: Duration,
    tags: &Mutex<Vec<Option<String>>>,
    warn: Warn<'_>,
) -> Result<(), LockError> {
    for p in parts {
        let tag = p.lock.acquire(p.info, wait).await?;
        tags.lock().unwrap_or_else(|e| e.into_inner()).push(tag);
        if let Some(w) = p.lock.safety_warning().await {
            warn(w);
        }
    }
    Ok(())
}

/// What releasing the records taken (and the one maybe taken) came to.
struct Released {
    /// At least one record was deleted.
    any: bool,
    /// The first failure, after every record was tried.
    error: Option<LockError>,
}

/// Release, last first, the records whose tags are in `tags`, and, when
/// `maybe_next`, the one after them (interrupted while it was being taken:
/// its write may have landed): read it, compare the ID, delete. Each failure
/// is reported through `warn` with the command that releases the lock.
async fn release_taken(
    parts: &[Part<'_>],
    tags: Vec<Option<String>>,
    maybe_next: bool,
    warn: Warn<'_>,
) -> Released {
    let taken = tags.len();
    let upto = if maybe_next {
        (taken + 1).min(parts.len())
    } else {
        taken
    };
    let mut out = Released {
        any: false,
        error: None,
    };
    for i in (0..upto).rev() {
        let p = &parts[i];
        let released = match tags.get(i) {
            Some(tag) => p.lock.release_own(p.info, tag.as_deref()).await,
            None => p.lock.release(&p.info.id, None).await.map(|_| ()),
        };
        match released {
            Ok(()) => out.any = true,
            // Interrupted before that record was taken: nothing to release.
            Err(LockError::NotLocked { .. } | LockError::IdMismatch { .. }) if i == taken => {}
            Err(e) => {
                warn(format!(
                    "could not release lock {} on {} ({e}).\nIf it is still held, release it with: tfsync unlock {}",
                    p.info.id, p.state, p.info.id
                ));
                out.error.get_or_insert(e);
            }
        }
    }
    out
}

/// Run `body` while holding the locks of every spec (each spec's records
/// taken in order and released in reverse order; the specs, different
/// states, at the same time), and release the ones taken on every path:
/// success, error, a lock held by someone else, SIGINT and SIGTERM. One
/// signal handler covers them all, so no lock can be left behind by a
/// signal. `body` is lazy: nothing in it runs before every lock is held.
pub async fn under_locks<T>(
    specs: &[LockSpec<'_>],
    wait: Duration,
    warn: Warn<'_>,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    // A store with a lock of its own around writes (the directory store's
    // flock) waits for it as long as for the state's lock.
    for s in specs {
        s.store.set_lock_wait(wait);
    }
    let sets: Vec<LockSet> = specs
        .iter()
        .map(|s| LockSet::new(s.store, &s.state_key))
        .collect();
    let infos: Vec<LockInfo> = specs.iter().map(LockSpec::lock_info).collect();
    hold(&sets, &infos, wait, warn, body).await
}

/// [`under_locks`] over lock sets already built.
async fn hold<T>(
    sets: &[LockSet<'_>],
    infos: &[LockInfo],
    wait: Duration,
    warn: Warn<'_>,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let parts = parts(sets, infos);
    // The records of one state are taken in order (and released in reverse
    // order); the states' sets, independent of each other, at the same
    // time (a migration's source and destination: one round trip, not
    // two). `body` runs only once every record of every set is held.
    let groups = set_ranges(sets);
    let tags: Vec<Mutex<Vec<Option<String>>>> = groups.iter().map(|_| Mutex::default()).collect();
    let mut signals = Signals::install()?;
    let work = async {
        let taken = futures_util::future::join_all(
            groups
                .iter()
                .zip(&tags)
                .map(|(g, t)| take_all(&parts[g.clone()], wait, t, warn)),
        )
        .await;
        for r in taken {
            r?;
        }
        body.await
    };
    let result = tokio::select! {
        r = work => r,
        signal = signals.recv() => Err(Error::Interrupted {
            signal,
            detail: "the state was either not written or written whole (writes are all-or-nothing); check with `tfsync status`".into(),
        }),
    };
    let interrupted = matches!(result, Err(Error::Interrupted { .. }));
    let released = futures_util::future::join_all(groups.iter().zip(tags).map(|(g, t)| {
        let t = t.into_inner().unwrap_or_else(|e| e.into_inner());
        release_taken(&parts[g.clone()], t, interrupted, warn)
    }))
    .await;
    match released.into_iter().find_map(|r| r.error) {
        Some(e) => result.and(Err(e.into())),
        None => result,
    }
}

/// The range of [`parts`] each set's records take, in order.
fn set_ranges(sets: &[LockSet<'_>]) -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    sets.iter()
        .map(|s| {
            let r = start..start + s.parts.len();
            start = r.end;
            r
        })
        .collect()
}

/// [`under_locks`] for one state.
pub async fn under_lock<T>(
    spec: LockSpec<'_>,
    wait: Duration,
    warn: Warn<'_>,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    under_locks(std::slice::from_ref(&spec), wait, warn, body).await
}

/// `tfsync lock`: take the locks of `spec` and keep them. When a later
/// record is refused, the ones already taken are released; on SIGINT or
/// SIGTERM while waiting, every record that may have been written (a write
/// may land as the signal comes) is released by its ID, so no lock is left
/// that nobody knows the ID of.
pub async fn take(spec: &LockSpec<'_>, wait: Duration, warn: Warn<'_>) -> Result<LockInfo, Error> {
    if spec.store.as_local().is_some() {
        return Err(Error::Config(format!(
            "{} is a state of Terraform's local backend: its lock is an OS lock on the state file that lives only as long as the process holding it, so `tfsync lock` cannot keep it after it exits. `tfsync push`, `restore` and `migrate` lock the state themselves while they write",
            spec.store.location(&spec.state_key)
        )));
    }
    let sets = [LockSet::new(spec.store, &spec.state_key)];
    take_set(&sets, [spec.lock_info()], wait, warn).await
}

/// [`take`] on a lock set already built.
async fn take_set(
    sets: &[LockSet<'_>; 1],
    infos: [LockInfo; 1],
    wait: Duration,
    warn: Warn<'_>,
) -> Result<LockInfo, Error> {
    let parts = parts(sets, &infos);
    let tags = Mutex::default();
    let mut signals = Signals::install()?;
    let result = tokio::select! {
        r = take_all(&parts, wait, &tags, warn) => r.map_err(Error::from),
        signal = signals.recv() => Err(Error::Interrupted { signal, detail: String::new() }),
    };
    let tags = tags.into_inner().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(()) => {
            let mut info = infos[0].clone();
            if let Some(p) = parts.first() {
                p.lock
                    .acquired(&mut info, tags.first().and_then(|t| t.as_deref()));
            }
            Ok(info)
        }
        Err(Error::Interrupted { signal, .. }) => {
            let id = &infos[0].id;
            let released = release_taken(&parts, tags, true, &|_| {}).await;
            let detail = match released {
                Released { error: Some(e), .. } => {
                    format!("lock {id} may be held ({e}); release it with: tfsync unlock {id}")
                }
                Released { any: true, .. } => {
                    "the lock taken as the signal came was released".to_string()
                }
                Released { any: false, .. } => "no lock was taken".to_string(),
            };
            Err(Error::Interrupted { signal, detail })
        }
        Err(e) => {
            // A later record was refused: roll back the ones taken (a
            // failure to do so is warned about with the ID to release).
            release_taken(&parts, tags, false, warn).await;
            Err(e)
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Self, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e| Error::io("signal handler", e);
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::FsStore;
    use crate::store::{PutMode, StoreError};
    use crate::tfstate::keys::lock_key;
    use std::sync::Arc;

    const KEY: &str = "env:/w/terraform.tfstate";

    fn dir_store() -> (tempfile::TempDir, FsStore) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = FsStore::new(dir.path()).expect("store");
        (dir, store)
    }

    async fn locked(store: &FsStore) -> bool {
        match store.head(&lock_key(KEY)).await {
            Ok(_) => true,
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => panic!("{e}"),
        }
    }

    /// A second lock kind for the tests: records what is done to it, and
    /// refuses to be taken when `refuse`.
    struct Fake {
        refuse: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Fake {
        fn note(&self, what: String) {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(what);
        }
    }

    #[async_trait]
    impl LockStore for Fake {
        fn location(&self) -> String {
            "fake://item".into()
        }
        async fn acquire(&self, info: &LockInfo, _: Duration) -> Result<Option<String>, LockError> {
            if self.refuse {
                self.note("refused".into());
                return Err(LockError::Held {
                    lock: self.location(),
                    holder: crate::tfstate::lock::Holder::Unreadable("taken".into()),
                    waited: Duration::ZERO,
                });
            }
            self.note(format!("acquire {}", info.id));
            Ok(Some("tag".into()))
        }
        async fn release_own(&self, info: &LockInfo, tag: Option<&str>) -> Result<(), LockError> {
            self.note(format!("release_own {} {tag:?}", info.id));
            Ok(())
        }
        async fn release(&self, id: &str, _: Option<Duration>) -> Result<LockInfo, LockError> {
            self.note(format!("release {id}"));
            Err(LockError::NotLocked {
                lock: self.location(),
            })
        }
        async fn read(&self) -> Result<Current, LockError> {
            Ok(Current::Unlocked)
        }
    }

    fn with_fake<'a>(store: &'a FsStore, refuse: bool) -> (LockSet<'a>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::default());
        let mut set = LockSet::new(store, KEY);
        set.parts.push(Box::new(Fake {
            refuse,
            log: log.clone(),
        }));
        (set, log)
    }

    fn collect() -> (Arc<Mutex<Vec<String>>>, impl Fn(String) + Sync) {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let s = seen.clone();
        (seen, move |w| {
            s.lock().unwrap_or_else(|e| e.into_inner()).push(w)
        })
    }

    #[tokio::test]
    async fn the_lock_is_held_for_the_body_and_released_on_every_path() {
        let (_d, store) = dir_store();
        let (_, warn) = collect();
        let spec = || LockSpec::new(&store, KEY, "test");
        let r = under_lock(spec(), Duration::ZERO, &warn, async {
            assert!(locked(&store).await, "held while the body runs");
            Ok(7)
        })
        .await;
        assert_eq!(r.expect("ok"), 7);
        assert!(!locked(&store).await, "released after success");

        let r: Result<(), Error> = under_lock(spec(), Duration::ZERO, &warn, async {
            Err(Error::Config("boom".into()))
        })
        .await;
        assert!(matches!(r, Err(Error::Config(_))), "the body's error");
        assert!(!locked(&store).await, "released after an error");
    }

    #[tokio::test]
    async fn a_lock_held_by_someone_else_is_reported_and_kept() {
        let (_d, store) = dir_store();
        let theirs = LockInfo::new("apply", "", "b", KEY);
        store
            .put(&lock_key(KEY), theirs.to_json(), PutMode::Create)
            .await
            .expect("their lock");
        let (_, warn) = collect();
        let ran = std::sync::atomic::AtomicBool::new(false);
        let r = under_lock(
            LockSpec::new(&store, KEY, "test"),
            Duration::ZERO,
            &warn,
            async {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            },
        )
        .await;
        match r {
            Err(Error::Lock(LockError::Held { holder, .. })) => {
                assert!(holder.to_string().contains(&theirs.id))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "body never ran"
        );
        let now = LockInfo::from_json(&store.get(&lock_key(KEY)).await.expect("get").bytes);
        assert_eq!(now.expect("lock").id, theirs.id, "their lock untouched");
    }

    #[tokio::test]
    async fn two_states_are_held_together_and_a_refusal_of_one_releases_the_other() {
        let (_d, store) = dir_store();
        let (_, warn) = collect();
        const OTHER: &str = "env:/x/terraform.tfstate";
        let held = |k: &'static str| {
            let store = &store;
            async move {
                match store.head(&lock_key(k)).await {
                    Ok(_) => true,
                    Err(StoreError::NotFound { .. }) => false,
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let specs = [
            LockSpec::new(&store, KEY, "a"),
            LockSpec::new(&store, OTHER, "b"),
        ];
        under_locks(&specs, Duration::ZERO, &warn, async {
            assert!(
                held(KEY).await && held(OTHER).await,
                "both held in the body"
            );
            Ok(())
        })
        .await
        .expect("both taken");
        assert!(!held(KEY).await && !held(OTHER).await, "both released");

        // The second state is locked by someone else: refused, the body
        // never runs, and the first state's lock (taken meanwhile) is gone.
        let theirs = LockInfo::new("theirs", "", "b", OTHER);
        store
            .put(&lock_key(OTHER), theirs.to_json(), PutMode::Create)
            .await
            .expect("their lock");
        let ran = std::sync::atomic::AtomicBool::new(false);
        let r = under_locks(&specs, Duration::ZERO, &warn, async {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .await;
        assert!(
            matches!(r, Err(Error::Lock(LockError::Held { .. }))),
            "{r:?}"
        );
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!held(KEY).await, "the first state's lock was released");
        let now = LockInfo::from_json(&store.get(&lock_key(OTHER)).await.expect("get").bytes);
        assert_eq!(now.expect("lock").id, theirs.id, "their lock untouched");
    }

    #[tokio::test]
    async fn a_second_lock_kind_is_taken_after_and_released_before_the_tflock() {
        let (_d, store) = dir_store();
        let (set, log) = with_fake(&store, false);
        let info = LockInfo::new("test", "", "b", KEY);
        let (_, warn) = collect();
        hold(
            &[set],
            std::slice::from_ref(&info),
            Duration::ZERO,
            &warn,
            async {
                assert!(locked(&store).await);
                Ok(())
            },
        )
        .await
        .expect("ok");
        assert!(!locked(&store).await);
        let log = log.lock().expect("log").clone();
        assert_eq!(
            log,
            [
                format!("acquire {}", info.id),
                format!("release_own {} Some(\"tag\")", info.id)
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_second_lock_rolls_back_the_tflock() {
        let (_d, store) = dir_store();
        let (_, warn) = collect();
        let (set, _) = with_fake(&store, true);
        let info = LockInfo::new("test", "", "b", KEY);
        let r = hold(&[set], &[info], Duration::ZERO, &warn, async { Ok(()) }).await;
        assert!(
            matches!(r, Err(Error::Lock(LockError::Held { .. }))),
            "{r:?}"
        );
        assert!(!locked(&store).await, "the .tflock was rolled back");

        let (set, log) = with_fake(&store, true);
        let r = take_set(
            &[set],
            [LockInfo::new("test", "", "b", KEY)],
            Duration::ZERO,
            &warn,
        )
        .await;
        assert!(
            matches!(r, Err(Error::Lock(LockError::Held { .. }))),
            "{r:?}"
        );
        assert!(!locked(&store).await, "`lock` rolls back too");
        assert_eq!(log.lock().expect("log").as_slice(), ["refused"]);

        let (set, _) = with_fake(&store, false);
        let info = take_set(
            &[set],
            [LockInfo::new("test", "", "b", KEY)],
            Duration::ZERO,
            &warn,
        )
        .await
        .expect("taken");
        assert!(locked(&store).await, "`lock` keeps the lock");
        let gone = LockSet::new(&store, KEY)
            .release(&info.id, None)
            .await
            .expect("unlock");
        assert_eq!(gone.id, info.id);
    }

    #[tokio::test]
    async fn unlock_checks_the_id_and_a_failed_release_says_how_to_finish() {
        let (_d, store) = dir_store();
        let (seen, warn) = collect();
        let info = take(
            &LockSpec::new(&store, KEY, "test").with_info("why"),
            Duration::ZERO,
            &warn,
        )
        .await
        .expect("lock");
        assert_eq!(info.info, "why");
        let set = LockSet::new(&store, KEY);
        assert!(matches!(
            set.release("someone-else", None).await,
            Err(LockError::IdMismatch { .. })
        ));
        assert!(matches!(
            set.check(&info.id, Some(Duration::from_secs(3600))).await,
            Err(LockError::TooYoung { .. })
        ));
        assert_eq!(set.check(&info.id, None).await.expect("held").id, info.id);
        assert!(locked(&store).await, "kept");

        // The lock is replaced while held: releasing our own fails, and the
        // warning names the command that finishes the job.
        let parts_info = LockInfo::new("test", "", "b", KEY);
        let r: Result<(), Error> = hold(
            &[LockSet::new(&store, KEY)],
            std::slice::from_ref(&parts_info),
            Duration::ZERO,
            &warn,
            async { Ok(()) },
        )
        .await;
        assert!(
            matches!(r, Err(Error::Lock(LockError::Held { .. }))),
            "{r:?}"
        );
        assert!(
            seen.lock().expect("seen").is_empty(),
            "nothing to warn about"
        );

        store.delete(&lock_key(KEY), None).await.expect("break");
        let r: Result<(), Error> = hold(
            &[LockSet::new(&store, KEY)],
            std::slice::from_ref(&parts_info),
            Duration::ZERO,
            &warn,
            async {
                store
                    .put(&lock_key(KEY), info.to_json(), PutMode::Overwrite)
                    .await
                    .map(|_| ())
                    .map_err(Error::from)
            },
        )
        .await;
        assert!(
            matches!(r, Err(Error::Lock(LockError::Changed { .. }))),
            "{r:?}"
        );
        let seen = seen.lock().expect("seen").clone();
        assert!(
            seen.len() == 1 && seen[0].contains(&format!("tfsync unlock {}", parts_info.id)),
            "{seen:?}"
        );
    }
}
