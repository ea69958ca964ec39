//! Migration of a state and its workspaces to another bucket, prefix or
//! provider.
//!
//! Phase 1, per workspace, under both locks (source `migration source
//! state`, destination `migration destination state`): read the source
//! (checked against its ETag), apply the push rules against the destination
//! and write it with the one guarded write ([`StateWrite`]: compare-and-swap,
//! a lost response recognised), then compare MD5s (the ETag the server
//! answered the write with, where it is the server's own; else read back).
//! The destinations are listed once before any lock: one the listing shows
//! absent is not read, its write is create-only, and one that appeared
//! since is read under the locks and ruled on. Phase 2
//! (`delete_source`), only when every workspace passed phase 1: delete each
//! source under its lock, if it still has the ETag that was copied. A
//! failure in phase 1 leaves every source untouched.

use super::current::Current;
use super::guard::{self, LockSpec, Warn, under_locks};
use super::lock::LockError;
use super::state::{self, StateBody, StateInfo};
use super::write::{self, PlanError, Purpose, Rules, StateWrite};
use super::{keys, read};
use crate::error::Error;
use crate::store::{ObjectId, ObjectMeta, ObjectStore, Payload, StoreError, etag_is_md5};
use futures_util::StreamExt;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const SOURCE_OPERATION: &str = "migration source state";
pub const DESTINATION_OPERATION: &str = "migration destination state";

/// What the migration does (or would do) to one workspace's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    /// Not looked at yet.
    #[serde(rename = "")]
    Pending,
    #[serde(rename = "create")]
    Create,
    #[serde(rename = "overwrite")]
    Overwrite,
    #[serde(rename = "unchanged")]
    Unchanged,
    /// The push rules refuse it (`reason` says why).
    #[serde(rename = "refused")]
    Refused,
    /// No state at the source.
    #[serde(rename = "missing")]
    Missing,
}

/// Where one workspace stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Dry run: looked at, nothing changed.
    #[serde(rename = "planned")]
    Planned,
    #[serde(rename = "moved")]
    Moved,
    #[serde(rename = "moved, source deleted")]
    MovedSourceDeleted,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "not-started")]
    NotStarted,
    /// No source state: nothing to move.
    #[serde(rename = "skipped")]
    Skipped,
}

/// The words of [`Action`] and [`Status`] in text reports: those of the JSON.
fn serde_name(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_name(self))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_name(self))
    }
}

/// One workspace of the migration (`--output json` prints these as they
/// are).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub workspace: String,
    pub source: String,
    pub destination: String,
    pub size: Option<u64>,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub action: Action,
    pub reason: Option<String>,
    pub status: Status,
    #[serde(skip)]
    pub source_key: String,
    #[serde(skip)]
    pub dest_key: String,
    #[serde(skip)]
    source_etag: Option<String>,
    /// The MD5 of the bytes copied (phase 1), for phase 2.
    #[serde(skip)]
    source_md5: Option<String>,
}

/// Which workspaces to move.
pub enum Workspaces<'a> {
    /// Every workspace that has a state at the source.
    All,
    One(&'a str),
}

/// A migration from `src` to `dst`.
pub struct Migration<'a> {
    pub src: &'a dyn ObjectStore,
    pub dst: &'a dyn ObjectStore,
    /// How the source lays out its workspaces (its backend's rule, key
    /// and prefix).
    pub src_layout: keys::StateLayout,
    /// How the destination lays them out: its own backend's rule, so a
    /// state moves between layouts (s3 `<prefix>/W/<key>`, azurerm
    /// `<key>env:W`, local `<workspace_dir>/W/terraform.tfstate`).
    pub dst_layout: keys::StateLayout,
    /// The destination as the user wrote it, for messages.
    pub to: &'a str,
    /// Overwrite whatever the push rules say.
    pub force: bool,
    /// Workspaces moved at once.
    pub concurrency: usize,
    pub lock_timeout: Duration,
    /// Phase 2: delete each source once every workspace is moved.
    pub delete_source: bool,
}

impl Migration<'_> {
    /// The workspaces to move, not started.
    pub async fn items(&self, which: Workspaces<'_>) -> Result<Vec<Item>, Error> {
        if self.src.describe() == self.dst.describe() && self.src_layout == self.dst_layout {
            return Err(Error::Config(format!(
                "{} is where the state already is: give another bucket, prefix or provider",
                self.to
            )));
        }
        let names = match which {
            Workspaces::All => self.workspaces().await?,
            Workspaces::One(w) => vec![w.to_string()],
        };
        let items: Vec<Item> = names
            .into_iter()
            .map(|w| {
                let sk = self.src_layout.state_key(&w);
                let dk = self.dst_layout.state_key(&w);
                Item {
                    workspace: w,
                    source: self.src.location(&sk),
                    destination: self.dst.location(&dk),
                    size: None,
                    serial: None,
                    lineage: None,
                    action: Action::Pending,
                    reason: None,
                    status: Status::NotStarted,
                    source_key: sk,
                    dest_key: dk,
                    source_etag: None,
                    source_md5: None,
                }
            })
            .collect();
        self.refuse_same_objects(&items).await?;
        Ok(items)
    }

    /// Refuse, before any lock is taken or anything written, a destination
    /// that is a source of this migration under another name: a hard link
    /// to it, the same directory by another path (`file:///X/`, a linked
    /// root), or another workspace's key in the same bucket. Moving it
    /// there would meet our own lock, overwrite a source, and with
    /// `--delete-source` delete the only copy.
    async fn refuse_same_objects(&self, items: &[Item]) -> Result<(), Error> {
        let mut sources = std::collections::HashMap::new();
        for it in items {
            for id in self.src.identities(&it.source_key).await? {
                sources.insert(id, it);
            }
        }
        for it in items {
            for id in self.dst.identities(&it.dest_key).await? {
                let Some(src) = sources.get(&id) else {
                    continue;
                };
                let how = match id {
                    ObjectId::File { .. } => {
                        "the same file (same device and inode: a hard link, or the same directory by another path)"
                    }
                    ObjectId::Name { .. } => {
                        "the same key of the same directory (reached by another path)"
                    }
                    ObjectId::Remote { .. } => "the same object (same endpoint, bucket and key)",
                };
                return Err(Error::Config(format!(
                    "{} (workspace {:?}) is {} as the source {} (workspace {:?}): a state cannot be migrated onto itself{}. Nothing was changed; give another bucket, prefix or directory",
                    it.destination,
                    it.workspace,
                    how,
                    src.source,
                    src.workspace,
                    if self.delete_source {
                        " (--delete-source would delete it)"
                    } else {
                        ""
                    },
                )));
            }
        }
        Ok(())
    }

    /// The workspaces that have a state at the source: `default` if its
    /// key exists, and every `W` with a state where the source's layout
    /// puts it, in listing order.
    async fn workspaces(&self) -> Result<Vec<String>, Error> {
        let (store, layout) = (self.src, &self.src_layout);
        let key = layout.state_key(keys::DEFAULT_WORKSPACE);
        let mut out = Vec::new();
        match store.head(&key).await {
            Ok(_) => out.push(keys::DEFAULT_WORKSPACE.to_string()),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        for m in store.list(&layout.list_prefix()).await? {
            if let Some(w) = layout.workspace_of(&m.key)
                && keys::is_listed_workspace(&w)
            {
                out.push(w);
            }
        }
        if out.is_empty() {
            return Err(Error::StateNotFound {
                location: store.location(&key),
            });
        }
        Ok(out)
    }

    /// Dry run: what would happen to each item. Reads only, takes no lock.
    pub async fn plan(&self, items: &mut [Item]) -> Result<(), Error> {
        let mut reads = futures_util::stream::iter(items.iter_mut())
            .map(|item| async move {
                let src = read::get_opt(self.src, &item.source_key)
                    .await?
                    .map(|v| (v.meta, v.body));
                let dst = Current::read(self.dst, &item.dest_key).await?;
                plan(
                    item,
                    src.as_ref().map(|(m, b)| (m, b)),
                    dst.as_ref().map(|c| c as &dyn StateBody),
                    self.force,
                );
                item.status = Status::Planned;
                Ok::<(), Error>(())
            })
            .buffer_unordered(self.concurrency.max(1));
        let mut first_error = None;
        while let Some(r) = reads.next().await {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Phase 1 and (with `delete_source`) phase 2 over `items`, each item
    /// updated as it goes (report them whatever the result).
    pub async fn run(&self, items: &mut [Item], warn: Warn<'_>) -> Result<(), Error> {
        self.copy_all(items, warn).await?;
        if self.delete_source {
            self.delete_sources(items, warn).await?;
        }
        Ok(())
    }

    /// Phase 1: copy and verify, up to `concurrency` workspaces at once.
    /// After the first failure no further workspace starts, but those under
    /// way finish (a future dropped halfway would leave its locks behind).
    async fn copy_all(&self, items: &mut [Item], warn: Warn<'_>) -> Result<(), Error> {
        let stop = AtomicBool::new(false);
        let mut errors: Vec<(String, Error)> = Vec::new();
        let listed = self.destination_listing(items).await;
        {
            let stop = &stop;
            let listed = listed.as_ref();
            let mut runs = futures_util::stream::iter(items.iter_mut())
                .map(|item| async move {
                    if stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    let specs = [
                        LockSpec::new(self.src, &item.source_key, SOURCE_OPERATION),
                        LockSpec::new(self.dst, &item.dest_key, DESTINATION_OPERATION),
                    ];
                    let ws = item.workspace.clone();
                    let absent = listed.is_some_and(|l| l.absent(&item.dest_key));
                    let body = self.move_one(item, absent);
                    match under_locks(&specs, self.lock_timeout, warn, body).await {
                        Ok(()) => None,
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            Some((ws, e))
                        }
                    }
                })
                .buffer_unordered(self.concurrency.max(1));
            while let Some(r) = runs.next().await {
                if let Some(failed) = r {
                    errors.push(failed);
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        for it in items.iter_mut() {
            if errors.iter().any(|(w, _)| *w == it.workspace) {
                it.status = Status::Failed;
            }
        }
        let moved: Vec<&str> = items
            .iter()
            .filter(|it| it.status == Status::Moved)
            .map(|it| it.workspace.as_str())
            .collect();
        let rest: Vec<&str> = items
            .iter()
            .filter(|it| it.status != Status::Moved && it.status != Status::Skipped)
            .map(|it| it.workspace.as_str())
            .collect();
        let (ws, e) = errors.remove(0);
        let item = items.iter().find(|it| it.workspace == ws);
        let what = format!(
            "migration stopped at workspace {ws:?} ({} -> {}): {e}{}\nCopied and verified: {}. Not moved: {}. Every source state is untouched{}; rerun to finish (workspaces already copied are recognised).",
            item.map_or("", |i| i.source.as_str()),
            item.map_or("", |i| i.destination.as_str()),
            if errors.is_empty() {
                String::new()
            } else {
                format!(
                    "\n(and {} more failed: {})",
                    errors.len(),
                    errors
                        .iter()
                        .map(|(w, _)| w.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            if moved.is_empty() {
                "none".to_string()
            } else {
                moved.join(", ")
            },
            rest.join(", "),
            if self.delete_source {
                " (nothing was deleted)"
            } else {
                ""
            },
        );
        Err(match e {
            Error::StateConflict { location, .. } => Error::StateConflict {
                location,
                reason: what,
            },
            Error::Lock(LockError::Held { .. }) | Error::Interrupted { .. } => e,
            _ => Error::Incomplete(what),
        })
    }

    /// The destination keys of `items` that exist, from one listing made
    /// before any lock is taken (keys only): a workspace whose destination
    /// it shows absent is not read under its lock, its state is written
    /// create-only instead, and if one appeared since, it is read then
    /// ([`Migration::move_one`]). `None` (every destination read as usual)
    /// for fewer than [`LISTED_AT_LEAST`] workspaces, when their keys share
    /// no directory, or when the listing fails.
    async fn destination_listing(&self, items: &[Item]) -> Option<Listed> {
        // The default workspace's key is usually outside the others'
        // directory: it is read as usual.
        let keys: Vec<&str> = items
            .iter()
            .filter(|it| it.workspace != keys::DEFAULT_WORKSPACE)
            .map(|it| it.dest_key.as_str())
            .collect();
        if keys.len() < LISTED_AT_LEAST {
            return None;
        }
        let prefix = common_dir(&keys)?;
        let present = self.dst.list_keys(&prefix).await.ok()?;
        Some(Listed {
            present: present.into_iter().map(|m| m.key).collect(),
            prefix,
        })
    }

    /// Phase 1 for one workspace; the caller holds both locks. With
    /// `listed_absent` (the destination listing made before the locks
    /// showed no state there) the destination is not read: the rules are
    /// applied to no state, and the write is create-only, so it lands only
    /// if there is still none. If one appeared since the listing, the
    /// create is refused, and the workspace is done again as usual: the
    /// destination read under the locks, the rules applied to it.
    async fn move_one(&self, item: &mut Item, listed_absent: bool) -> Result<(), Error> {
        if listed_absent {
            match self.move_once(item, true).await {
                Ok(Once::Done) => return Ok(()),
                // A state is there now: the create was refused (or found
                // the source's very bytes there). Done again, read first.
                Ok(Once::ReadFirst) | Err(Error::StateConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.move_once(item, false).await.map(|_| ())
    }

    /// [`Migration::move_one`], once: `skip_read` plans over no destination
    /// state without reading it.
    async fn move_once(&self, item: &mut Item, skip_read: bool) -> Result<Once, Error> {
        let dest_key = item.dest_key.clone();
        let write = StateWrite::new(
            self.dst,
            &dest_key,
            Rules::push(self.force),
            Purpose::Migration,
        );
        // Both locks are held: the source and the destination are read at
        // once (one round trip, not two), the destination streamed.
        let source_key = item.source_key.clone();
        let (s, d) = futures_util::try_join!(
            async {
                read::get_opt(self.src, &source_key)
                    .await
                    .map_err(Error::from)
            },
            async {
                if skip_read {
                    Ok(None)
                } else {
                    write.read_current().await
                }
            }
        )?;
        let s = s.map(|v| {
            let md5 = v.md5();
            (v.meta, v.body, md5)
        });
        // The rules are applied once: the item's action and the write's plan.
        let planned = plan(
            item,
            s.as_ref().map(|(m, b, _)| (m, b)),
            d.as_ref().map(|c| c as &dyn StateBody),
            self.force,
        );
        let (Some((_, bytes, md5)), Some(planned)) = (s, planned) else {
            item.status = Status::Skipped;
            return Ok(Once::Done);
        };
        let plan = planned.map_err(|e| write.plan_error(e))?;
        drop(bytes);
        let written = write.commit(plan, d.as_ref()).await?;
        if skip_read && written.recovered {
            return Ok(Once::ReadFirst);
        }
        drop(d);
        // Read it back: the object at the destination must have the source's
        // MD5. When the store's write ETag is its own, of what it stored, and
        // is that MD5, the write said so already (as a HEAD would); when the
        // state was unchanged, its ETag is that of the read just checked.
        // Otherwise a HEAD tells it when the store's ETag is the MD5 of the
        // object, else (multipart, SSE-KMS) the bytes are read again
        // (streamed).
        let stored = self.dst.write_etag_is_stored()
            && written
                .etag
                .as_deref()
                .is_some_and(|e| etag_is_md5(e) && e.eq_ignore_ascii_case(&md5));
        if !stored {
            let head = self.dst.head(&item.dest_key).await?;
            let got = match head.etag.filter(|e| etag_is_md5(e)) {
                Some(e) => e.to_ascii_lowercase(),
                None => {
                    self.dst
                        .get_to(&item.dest_key, &mut tokio::io::sink())
                        .await?
                        .1
                }
            };
            if got != md5 {
                return Err(StoreError::Other {
                    location: item.destination.clone(),
                    message: format!(
                        "it has MD5 {got} after writing, but the source has MD5 {md5}"
                    ),
                }
                .into());
            }
        }
        item.source_md5 = Some(md5.clone());
        item.status = Status::Moved;
        Ok(Once::Done)
    }

    /// Phase 2: delete the sources, each under its lock and only if it still
    /// has the ETag that was copied.
    async fn delete_sources(&self, items: &mut [Item], warn: Warn<'_>) -> Result<(), Error> {
        let src = self.src;
        let mut deletes = futures_util::stream::iter(
            items.iter_mut().filter(|it| it.action != Action::Missing),
        )
        .map(|item| async move {
            let spec = LockSpec::new(src, &item.source_key, SOURCE_OPERATION);
            let etag = item.source_etag.clone();
            let md5 = item.source_md5.clone();
            let key = item.source_key.clone();
            guard::under_lock(spec, self.lock_timeout, warn, async {
                let changed = || Error::StateConflict {
                    location: src.location(&key),
                    reason: "the source changed after it was copied; it was not deleted. Run the migration again".into(),
                };
                let now = src.head(&key).await?;
                let etag = if now.etag == etag {
                    etag
                } else {
                    // Another ETag, maybe the same bytes: an Azure blob's
                    // ETag changes with its metadata, where the azurerm lock
                    // keeps its info (each lock and unlock changes it). The
                    // bytes copied are what may be deleted, at the ETag
                    // they are read with now (under the lock).
                    let (meta, now_md5) = src.get_to(&key, &mut tokio::io::sink()).await?;
                    if md5.as_deref() != Some(now_md5.as_str()) {
                        return Err(changed());
                    }
                    meta.etag
                };
                // The digest item goes with the state (a digest left behind
                // makes every later Terraform read of that key fail).
                super::dynamo::delete_state(src, &key, etag.as_deref()).await?;
                Ok(())
            })
            .await?;
            item.status = Status::MovedSourceDeleted;
            Ok::<(), Error>(())
        })
        .buffer_unordered(self.concurrency.max(1));
        let mut first_error = None;
        while let Some(r) = deletes.next().await {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How one try at a workspace ended.
enum Once {
    Done,
    /// Written without reading the destination, a state was found there
    /// with the source's bytes: do it again, reading it first (then it is
    /// reported as it is: unchanged).
    ReadFirst,
}

/// A migration of fewer workspaces reads each destination (one request
/// each) rather than listing them first.
const LISTED_AT_LEAST: usize = 8;

/// The destination keys under `prefix` that existed before the locks.
struct Listed {
    prefix: String,
    present: std::collections::HashSet<String>,
}

impl Listed {
    /// Did the listing show no object at `key`? (A key outside the listed
    /// prefix is not known to be absent.)
    fn absent(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && !self.present.contains(key)
    }
}

/// The longest directory (a prefix ending in `/`) every key is in, `None`
/// when there is none (the listing would be of the whole bucket).
fn common_dir(keys: &[&str]) -> Option<String> {
    let first = keys.first()?;
    let mut len = first.len();
    for k in &keys[1..] {
        len = len.min(
            first
                .bytes()
                .zip(k.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Bytes up to a `/` (ASCII): the cut is on a character boundary.
    let dir = first.as_bytes()[..len].iter().rposition(|&b| b == b'/')? + 1;
    Some(first[..dir].to_string())
}

/// Fill in what would happen to `item` (the source's metadata and bytes
/// over the destination's state), and return what the push rules made of
/// it (`None`: no source).
fn plan(
    item: &mut Item,
    src: Option<(&ObjectMeta, &Payload)>,
    dst: Option<&dyn StateBody>,
    force: bool,
) -> Option<Result<write::Plan, PlanError>> {
    let Some((meta, bytes)) = src else {
        item.action = Action::Missing;
        item.reason = Some("no state at the source".into());
        return None;
    };
    item.size = Some(bytes.len() as u64);
    item.source_etag = meta.etag.clone();
    if let Ok(StateInfo::Plain(s)) = state::parse(bytes) {
        item.serial = Some(s.serial);
        item.lineage = Some(s.lineage);
    }
    let planned = write::plan(&Rules::push(force), bytes, dst);
    item.action = match &planned {
        Ok(p) => match p.action {
            write::Action::Create => Action::Create,
            write::Action::Overwrite => Action::Overwrite,
            write::Action::Unchanged => Action::Unchanged,
        },
        Err(PlanError::Refused(r)) => {
            item.reason = Some(Purpose::Migration.refusal(r));
            Action::Refused
        }
        // The push rules have no other outcome.
        Err(PlanError::Invalid(reason)) => {
            item.reason = Some(reason.clone());
            Action::Refused
        }
    };
    Some(planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PutMode;
    use crate::store::fs::FsStore;

    const KEY: &str = "net/terraform.tfstate";
    const WORKSPACES: [(&str, &str); 3] = [
        ("default", "net/terraform.tfstate"),
        ("prod", "env:/prod/net/terraform.tfstate"),
        ("staging", "env:/staging/net/terraform.tfstate"),
    ];

    fn st(lineage: &str, serial: u64) -> Vec<u8> {
        format!(
            r#"{{"version":4,"serial":{serial},"lineage":"{lineage}","outputs":{{"x":{{"value":1,"type":"number"}}}},"resources":[]}}"#
        )
        .into_bytes()
    }

    struct Dirs {
        _src: tempfile::TempDir,
        _dst: tempfile::TempDir,
        src: FsStore,
        dst: FsStore,
    }

    async fn dirs() -> Dirs {
        let (a, b) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        let d = Dirs {
            src: FsStore::new(a.path()).expect("src"),
            dst: FsStore::new(b.path()).expect("dst"),
            _src: a,
            _dst: b,
        };
        for (i, (_, k)) in WORKSPACES.iter().enumerate() {
            d.src
                .put(k, st(&format!("lin-{i}"), 5), PutMode::Create)
                .await
                .expect("seed");
        }
        d
    }

    fn migration<'a>(d: &'a Dirs, delete_source: bool, force: bool) -> Migration<'a> {
        Migration {
            src: &d.src,
            dst: &d.dst,
            src_layout: keys::StateLayout::new(keys::Layout::S3, KEY, "env:"),
            dst_layout: keys::StateLayout::new(
                keys::Layout::S3,
                "moved/net/terraform.tfstate",
                "env:",
            ),
            to: "file:///elsewhere/moved",
            force,
            concurrency: 2,
            lock_timeout: Duration::ZERO,
            delete_source,
        }
    }

    async fn get(store: &FsStore, key: &str) -> Option<Vec<u8>> {
        match store.get(key).await {
            Ok(g) => Some(g.bytes),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    }

    async fn no_locks(store: &FsStore) {
        let locks: Vec<String> = store
            .list("")
            .await
            .expect("list")
            .into_iter()
            .map(|m| m.key)
            .filter(|k| k.ends_with(keys::LOCK_SUFFIX))
            .collect();
        assert!(locks.is_empty(), "{locks:?}");
    }

    #[tokio::test]
    async fn three_workspaces_dry_run_then_moved_and_sources_deleted() {
        let d = dirs().await;
        let m = migration(&d, true, false);
        let mut items = m.items(Workspaces::All).await.expect("items");
        let names: Vec<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
        assert_eq!(names, ["default", "prod", "staging"]);

        m.plan(&mut items).await.expect("plan");
        assert!(
            items
                .iter()
                .all(|i| i.action == Action::Create && i.status == Status::Planned),
            "{items:?}"
        );
        assert!(d.dst.list("").await.expect("list").is_empty(), "dry run");

        let mut items = m.items(Workspaces::All).await.expect("items");
        let warn = |w: String| panic!("unexpected warning {w}");
        m.run(&mut items, &warn).await.expect("run");
        for (i, (w, k)) in WORKSPACES.iter().enumerate() {
            let it = items.iter().find(|it| it.workspace == *w).expect("item");
            assert_eq!(it.status, Status::MovedSourceDeleted, "{it:?}");
            assert_eq!((it.serial, it.action), (Some(5), Action::Create));
            let dk = k.replace("net/", "moved/net/");
            assert_eq!(get(&d.dst, &dk).await, Some(st(&format!("lin-{i}"), 5)));
            assert_eq!(get(&d.src, k).await, None, "{k} deleted at the source");
        }
        no_locks(&d.src).await;
        no_locks(&d.dst).await;
        let json = serde_json::to_value(&items[0]).expect("json");
        assert_eq!(json["status"], "moved, source deleted");
        assert_eq!(json["action"], "create");
        assert!(json.get("source_key").is_none());
    }

    #[tokio::test]
    async fn a_second_run_is_unchanged_and_another_lineage_is_refused() {
        let d = dirs().await;
        let m = migration(&d, false, false);
        let warn = |w: String| panic!("unexpected warning {w}");
        let mut items = m.items(Workspaces::All).await.expect("items");
        m.run(&mut items, &warn).await.expect("first run");
        let mut items = m.items(Workspaces::All).await.expect("items");
        m.run(&mut items, &warn).await.expect("second run");
        assert!(
            items
                .iter()
                .all(|i| i.action == Action::Unchanged && i.status == Status::Moved)
        );

        // prod at the destination now belongs to another state.
        d.dst
            .put(
                "env:/prod/moved/net/terraform.tfstate",
                st("other", 9),
                PutMode::Overwrite,
            )
            .await
            .expect("put");
        let mut items = m.items(Workspaces::All).await.expect("items");
        let e = m.run(&mut items, &warn).await.expect_err("refused");
        match &e {
            Error::StateConflict { reason, .. } => assert!(
                reason.contains("stopped at workspace \"prod\"")
                    && reason.contains("lineage")
                    && reason.contains("untouched"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        let prod = items.iter().find(|i| i.workspace == "prod").expect("prod");
        assert_eq!(
            (prod.action, prod.status),
            (Action::Refused, Status::Failed)
        );
        assert!(
            prod.reason
                .as_deref()
                .is_some_and(|r| r.ends_with("use --force to overwrite"))
        );
        assert_eq!(
            get(&d.dst, "env:/prod/moved/net/terraform.tfstate").await,
            Some(st("other", 9)),
            "not overwritten"
        );
        no_locks(&d.src).await;
        no_locks(&d.dst).await;

        // --force overwrites it.
        let m = migration(&d, false, true);
        let mut items = m.items(Workspaces::One("prod")).await.expect("items");
        m.run(&mut items, &warn).await.expect("forced");
        assert_eq!(items[0].action, Action::Overwrite);
        assert_eq!(
            get(&d.dst, "env:/prod/moved/net/terraform.tfstate").await,
            Some(st("lin-1", 5))
        );
    }

    #[tokio::test]
    async fn the_same_place_and_a_missing_state_are_errors() {
        let d = dirs().await;
        let mut m = migration(&d, false, false);
        m.dst = &d.src;
        m.dst_layout.key = KEY.into();
        assert!(matches!(
            m.items(Workspaces::All).await,
            Err(Error::Config(_))
        ));
        let mut m = migration(&d, false, false);
        m.src_layout.key = "absent/terraform.tfstate".into();
        assert!(matches!(
            m.items(Workspaces::All).await,
            Err(Error::StateNotFound { .. })
        ));
        // The same key under another workspace key prefix (`--to-key` with
        // `--to-workspace-key-prefix`): a workspace moves; the default one
        // would be itself and is refused.
        let mut m = migration(&d, false, false);
        m.dst = &d.src;
        m.dst_layout = keys::StateLayout::new(keys::Layout::S3, KEY, "ws");
        let mut items = m.items(Workspaces::One("prod")).await.expect("items");
        assert_eq!(items[0].dest_key, "ws/prod/net/terraform.tfstate");
        m.run(&mut items, &|_| {}).await.expect("run");
        let moved = get(&d.src, "ws/prod/net/terraform.tfstate").await;
        assert!(moved.is_some());
        assert_eq!(moved, get(&d.src, "env:/prod/net/terraform.tfstate").await);
        assert!(matches!(
            m.items(Workspaces::All).await,
            Err(Error::Config(_))
        ));
        // One named workspace without a state: skipped, not an error.
        let m = migration(&d, false, false);
        let mut items = m.items(Workspaces::One("qa")).await.expect("items");
        m.run(&mut items, &|_| {}).await.expect("run");
        assert_eq!(
            (items[0].action, items[0].status),
            (Action::Missing, Status::Skipped)
        );
    }

    /// Each side has its own layout: s3's `env:/W/<key>` moves to azurerm's
    /// `<key>env:W` and back, byte for byte; the same objects under both
    /// layouts are still refused.
    #[tokio::test]
    async fn between_layouts_and_back() {
        let d = dirs().await;
        let s3 = keys::StateLayout::new(keys::Layout::S3, KEY, "env:");
        let az = keys::StateLayout::new(keys::Layout::Azure, "az/terraform.tfstate", "");
        let warn = |w: String| panic!("unexpected warning {w}");
        let mut m = migration(&d, false, false);
        m.dst_layout = az.clone();
        let mut items = m.items(Workspaces::All).await.expect("items");
        let dests: Vec<&str> = items.iter().map(|i| i.dest_key.as_str()).collect();
        assert_eq!(
            dests,
            [
                "az/terraform.tfstate",
                "az/terraform.tfstateenv:prod",
                "az/terraform.tfstateenv:staging"
            ]
        );
        m.run(&mut items, &warn).await.expect("to azurerm's layout");
        for (i, w) in ["default", "prod", "staging"].iter().enumerate() {
            assert_eq!(
                get(&d.dst, &az.state_key(w)).await,
                Some(st(&format!("lin-{i}"), 5))
            );
        }
        // Back, from the azurerm layout (its workspaces found by its
        // listing rule) to the s3 one, into an empty directory.
        let back = tempfile::tempdir().expect("tmp");
        let back_store = FsStore::new(back.path()).expect("back");
        let m = Migration {
            src: &d.dst,
            dst: &back_store,
            src_layout: az.clone(),
            dst_layout: s3.clone(),
            ..migration(&d, false, false)
        };
        let mut items = m.items(Workspaces::All).await.expect("items");
        let names: Vec<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
        assert_eq!(names, ["default", "prod", "staging"]);
        m.run(&mut items, &warn).await.expect("back");
        for (_, k) in WORKSPACES {
            assert_eq!(get(&back_store, k).await, get(&d.src, k).await, "{k}");
        }
        no_locks(&d.dst).await;
        no_locks(&back_store).await;
        // The identity refusal holds across layouts: the same store and
        // layout is refused, whatever the layouts were called.
        let m = Migration {
            src: &d.dst,
            dst: &d.dst,
            src_layout: az.clone(),
            dst_layout: az,
            ..migration(&d, false, false)
        };
        assert!(matches!(
            m.items(Workspaces::All).await,
            Err(Error::Config(_))
        ));
    }

    /// Phase 2 deletes a source only if it still holds the bytes that were
    /// copied: one rewritten between the phases (another ETag and another
    /// MD5) is kept and the run says so; the others are deleted.
    #[tokio::test]
    async fn phase_two_keeps_a_source_that_changed_after_the_copy() {
        let d = dirs().await;
        let m = migration(&d, true, false);
        let warn = |w: String| panic!("unexpected warning {w}");
        let mut items = m.items(Workspaces::All).await.expect("items");
        m.copy_all(&mut items, &warn).await.expect("phase 1");
        let changed = st("lin-1", 6);
        d.src
            .put(
                "env:/prod/net/terraform.tfstate",
                changed.clone(),
                PutMode::Overwrite,
            )
            .await
            .expect("rewrite");
        let e = m
            .delete_sources(&mut items, &warn)
            .await
            .expect_err("refused");
        assert!(
            matches!(&e, Error::StateConflict { reason, .. } if reason.contains("changed after it was copied")),
            "{e:?}"
        );
        assert_eq!(
            get(&d.src, "env:/prod/net/terraform.tfstate").await,
            Some(changed),
            "kept"
        );
        assert_eq!(
            get(&d.src, KEY).await,
            None,
            "an unchanged source is deleted"
        );
        no_locks(&d.src).await;
    }

    /// A directory store whose listings show nothing: as if every state
    /// at the destination appeared after the listing made before the locks.
    #[derive(Debug)]
    struct ListsNothing(FsStore);

    #[async_trait::async_trait]
    impl ObjectStore for ListsNothing {
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn bucket(&self) -> &str {
            self.0.bucket()
        }
        async fn get(&self, key: &str) -> crate::store::Result<crate::store::GetResult> {
            self.0.get(key).await
        }
        async fn head(&self, key: &str) -> crate::store::Result<ObjectMeta> {
            self.0.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: Vec<u8>,
            mode: PutMode,
        ) -> crate::store::Result<Option<String>> {
            self.0.put(key, body, mode).await
        }
        async fn delete(&self, key: &str, if_match: Option<&str>) -> crate::store::Result<()> {
            self.0.delete(key, if_match).await
        }
        async fn list(&self, _: &str) -> crate::store::Result<Vec<ObjectMeta>> {
            Ok(Vec::new())
        }
        async fn list_keys(&self, _: &str) -> crate::store::Result<Vec<ObjectMeta>> {
            Ok(Vec::new())
        }
    }

    /// The destinations are listed before the locks (issue 12); one that
    /// appears after the listing is still read under the locks and the push
    /// rules applied to it: a copy already there is unchanged, another
    /// lineage is refused and left as it is.
    #[tokio::test]
    async fn a_destination_that_appears_after_the_listing_is_read_and_ruled_on() {
        let d = dirs().await;
        for i in 0..LISTED_AT_LEAST {
            d.src
                .put(
                    &format!("env:/w{i}/{KEY}"),
                    st(&format!("w-{i}"), 5),
                    PutMode::Create,
                )
                .await
                .expect("seed");
        }
        let dk = |i: usize| format!("env:/w{i}/moved/{KEY}");
        // Already a copy there, which the listing does not show.
        d.dst
            .put(&dk(1), st("w-1", 5), PutMode::Create)
            .await
            .expect("copy");
        let dst = ListsNothing(FsStore::new(d._dst.path()).expect("dst"));
        let mut m = migration(&d, false, false);
        m.dst = &dst;
        let warn = |w: String| panic!("unexpected warning {w}");
        let mut items = m.items(Workspaces::All).await.expect("items");
        m.run(&mut items, &warn).await.expect("run");
        let w1 = items.iter().find(|i| i.workspace == "w1").expect("w1");
        assert_eq!((w1.action, w1.status), (Action::Unchanged, Status::Moved));
        let w2 = items.iter().find(|i| i.workspace == "w2").expect("w2");
        assert_eq!((w2.action, w2.status), (Action::Create, Status::Moved));
        assert_eq!(get(&d.dst, &dk(2)).await, Some(st("w-2", 5)));

        // w0 there now belongs to another state: refused, not overwritten.
        d.dst
            .put(&dk(0), st("other", 9), PutMode::Overwrite)
            .await
            .expect("theirs");
        let mut items = m.items(Workspaces::All).await.expect("items");
        let e = m.run(&mut items, &warn).await.expect_err("refused");
        match &e {
            Error::StateConflict { reason, .. } => {
                assert!(reason.contains("lineage"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let w0 = items.iter().find(|i| i.workspace == "w0").expect("w0");
        assert_eq!((w0.action, w0.status), (Action::Refused, Status::Failed));
        assert_eq!(get(&d.dst, &dk(0)).await, Some(st("other", 9)));
        no_locks(&d.src).await;
        no_locks(&d.dst).await;
    }

    #[test]
    fn common_dirs() {
        assert_eq!(
            common_dir(&["env:/a/k", "env:/b/k"]).as_deref(),
            Some("env:/")
        );
        assert_eq!(
            common_dir(&["env:/ab/k", "env:/ac/k"]).as_deref(),
            Some("env:/")
        );
        assert_eq!(common_dir(&["p/env:/a/k"]).as_deref(), Some("p/env:/a/"));
        assert_eq!(common_dir(&["a/k", "b/k"]), None);
        // A cut inside a character: the directory before it.
        assert_eq!(
            common_dir(&["e/\u{e9}/k", "e/\u{e8}/k"]).as_deref(),
            Some("e/")
        );
        assert_eq!(common_dir(&[]), None);
    }

    #[test]
    fn words_are_those_of_the_json() {
        assert_eq!(Action::Pending.to_string(), "");
        assert_eq!(Action::Refused.to_string(), "refused");
        assert_eq!(Status::NotStarted.to_string(), "not-started");
        assert_eq!(
            Status::MovedSourceDeleted.to_string(),
            "moved, source deleted"
        );
    }
}
