//! `backup`: one snapshot of every state under a prefix. A backup never
//! takes or touches a lock: it must not block Terraform.
//!
//! Each state is read once (checked against its ETag), written to the
//! snapshot and checked against the ETag the destination reports. Between
//! two buckets of one server, a state whose listed ETag is an MD5 is copied
//! server-side without being read whole: the first bytes of that version
//! (for its serial and lineage) and a copy of that version, both
//! conditional on its ETag, the copy's ETag checked against it. A state
//! whose source ETag and size are those of the newest complete snapshot,
//! and whose object is still there (one listing per snapshot referenced,
//! or one HEAD each when they are many), is not read again (incremental).
//! The manifest is written last, only when every state was stored, after a
//! flush.

use super::snapshot::{self, Entry, Manifest};
use super::{Failure, Progress, failure_lines, retention};
use crate::error::Error;
use crate::location::join;
use crate::store::{ObjectMeta, ObjectStore, Payload, PutMode, StoreError, etag_is_md5};
use crate::tfstate::{read, state};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Bytes read from the head of a state for its serial and lineage when it
/// is copied server-side (Terraform writes them in the first ~150 bytes).
const HEAD_BYTES: u64 = 1024;

/// Up to this many snapshots referenced by unchanged states are listed
/// (one LIST each) instead of one HEAD per state.
const MAX_LISTED_SNAPSHOTS: usize = 8;

/// Where the snapshot goes.
pub struct Destination<'a> {
    pub store: &'a dyn ObjectStore,
    /// The backup root: a prefix in the bucket, or empty.
    pub root: &'a str,
    /// `s3://bucket/prefix` or `file:///dir`, for messages.
    pub display: &'a str,
    /// On the same S3 server and credentials as the source (a server-side
    /// copy works).
    pub same_server: bool,
}

/// What to copy, and how.
pub struct Options<'a> {
    /// Only keys under this prefix of the source.
    pub prefix: &'a str,
    /// Only keys matching this glob.
    pub pattern: Option<&'a glob::Pattern>,
    pub gzip: bool,
    /// States copied at once.
    pub concurrency: usize,
    /// Keep this many complete snapshots afterwards (`--keep`).
    pub keep: Option<usize>,
}

/// What a backup did (`--output json` prints it as it is).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub snapshot: String,
    pub source: String,
    pub destination: String,
    pub seen: usize,
    pub copied: usize,
    pub skipped: usize,
    pub failed: usize,
    pub bytes: u64,
    /// Set by the caller, who knows when the run started.
    pub seconds: f64,
    pub pruned: Vec<String>,
    pub failures: Vec<Failure>,
    /// Snapshot IDs at the destination that sort after this run's clock
    /// (for a warning; not part of the JSON summary).
    #[serde(skip)]
    pub future: Vec<String>,
}

impl Summary {
    /// The error for a run where some states failed (no manifest was
    /// written): every key with its error.
    pub fn incomplete(&self) -> Option<Error> {
        if self.failures.is_empty() {
            return None;
        }
        Some(Error::Incomplete(format!(
            "backup of {} failed for {} of {} states; no manifest was written, so this run is not a snapshot (the next run copies again what it needs):\n{}",
            self.source,
            self.failed,
            self.seen,
            failure_lines(&self.failures)
        )))
    }
}

/// Back up the states of `src` into a new snapshot at `dest`. States that
/// fail are listed in the summary (and no manifest is written); errors that
/// stop the whole run (listing, the manifest) are returned.
pub async fn backup(
    src: &dyn ObjectStore,
    dest: &Destination<'_>,
    opts: &Options<'_>,
    progress: &dyn Progress,
) -> Result<Summary, Error> {
    let root = dest.root;
    let same_bucket = match (local_dir(src), local_dir(dest.store)) {
        // Two directories: the same one however it is spelt (`/S/.`, `/S/`,
        // a symlink to it); one inside the other is refused.
        (Some(s), Some(d)) => {
            let (s, d) = (canonical(&s), canonical(&d));
            if d != s && d.starts_with(&s) {
                return Err(Error::Config(format!(
                    "the backup destination {} is inside the directory it reads ({}): every run would copy the earlier snapshots again. Give a directory outside it",
                    dest.display,
                    s.display()
                )));
            }
            d == s
        }
        _ => src.describe() == dest.store.describe(),
    };
    if same_bucket && root.is_empty() && local_dir(src).is_some() {
        // A prefix would be a directory inside the source: refused above.
        return Err(Error::Config(format!(
            "the backup would go into the directory it reads ({}): give a directory outside it",
            dest.display
        )));
    }
    if same_bucket && root.is_empty() {
        return Err(Error::Config(format!(
            "the backup would go into the bucket it reads ({}): give it a prefix (e.g. {}/backups) or another bucket",
            dest.display, dest.display
        )));
    }
    let own = format!("{root}/");
    let list_states = async {
        Ok::<_, Error>(
            src.list(opts.prefix)
                .await?
                .into_iter()
                .filter(|m| snapshot::is_state_key(&m.key, opts.pattern))
                .filter(|m| !(same_bucket && m.key.starts_with(&own)))
                .collect::<Vec<ObjectMeta>>(),
        )
    };
    // The newest complete snapshot, for the incremental skip.
    // (Not one from a clock ahead of ours; not one whose entries fail the
    // checks of a restore: then everything is copied again.) Then the
    // objects of the snapshots it points to, when they are few. All of it
    // while the source is listed: the two sides do not wait for each other.
    let read_previous = async {
        let ids = snapshot::list_ids(dest.store, root).await?;
        let previous: HashMap<String, Entry> = match snapshot::newest_not_after(&ids, Utc::now()) {
            Some(id) => {
                let m = snapshot::read_manifest(dest.store, root, id).await?;
                match snapshot::check_entries(dest.store, root, &m) {
                    Ok(()) => m.states.into_iter().map(|e| (e.key.clone(), e)).collect(),
                    Err(_) => HashMap::new(),
                }
            }
            None => HashMap::new(),
        };
        let listed = list_snapshots(dest.store, root, previous.values()).await;
        Ok::<_, Error>((previous, listed))
    };
    let (states, (previous, listed)) = futures_util::try_join!(list_states, read_previous)?;

    let id = snapshot::new_id(Utc::now());
    let mut summary = Summary {
        snapshot: id.clone(),
        source: join(&src.describe(), opts.prefix.trim_end_matches('/')),
        destination: dest.display.to_string(),
        seen: states.len(),
        ..Default::default()
    };
    // The objects the unchanged states point to, found in one listing of
    // each snapshot they are in (instead of one HEAD per state); `None`
    // when there are too many snapshots or a listing fails: HEADs then.
    let present = present_objects(dest.store, root, &states, &previous, listed).await;
    let present = present.as_ref();
    progress.start(states.len() as u64);
    let copier = Copier {
        src,
        dest: dest.store,
        root,
        id: &id,
        gzip: opts.gzip,
        server_side: dest.same_server && dest.store.can_copy() && !opts.gzip,
    };
    let mut results = futures_util::stream::iter(states.iter())
        .map(|meta| {
            let prev = previous.get(&meta.key);
            let copier = &copier;
            async move {
                let unchanged = prev.filter(|p| {
                    p.source_etag.is_some() && p.source_etag == meta.etag && p.size == meta.size
                });
                // Skipped only while the object it points to is still there
                // (one HEAD): a deleted object is copied again.
                let kept = match (unchanged, present) {
                    (Some(p), Some(listed)) => {
                        Ok(listed.contains(&join(root, &p.object)).then_some(p))
                    }
                    (Some(p), None) => match copier.dest.head(&join(root, &p.object)).await {
                        Ok(_) => Ok(Some(p)),
                        Err(StoreError::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    },
                    (None, _) => Ok(None),
                };
                match kept {
                    Ok(Some(p)) => Ok((p.clone(), false)),
                    Ok(None) => copier.copy(meta).await.map(|e| (e, true)),
                    Err(e) => Err(e),
                }
                .map_err(|e| (meta.key.clone(), e))
            }
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut entries = Vec::with_capacity(states.len());
    while let Some(r) = results.next().await {
        progress.advance();
        match r {
            Ok((entry, copied)) => {
                if copied {
                    summary.copied += 1;
                    summary.bytes += entry.size;
                } else {
                    summary.skipped += 1;
                }
                entries.push(entry);
            }
            Err((key, e)) => {
                summary.failed += 1;
                summary.failures.push(Failure {
                    key,
                    error: e.to_string(),
                });
            }
        }
    }
    drop(results);
    progress.finish();

    if summary.failures.is_empty() {
        // Every object durable before the manifest that makes them a snapshot.
        dest.store.flush().await?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let manifest = Manifest {
            format: snapshot::FORMAT.into(),
            id: id.clone(),
            created: Utc::now(),
            source: summary.source.clone(),
            states: entries,
        };
        snapshot::write_manifest(dest.store, root, &manifest).await?;
        dest.store.flush().await?;
        if let Some(keep) = opts.keep {
            let pruned = retention::prune(dest.store, root, keep, Some(&id), Utc::now()).await?;
            summary.pruned = pruned.snapshots;
            summary.future = pruned.future;
        }
    }
    summary.failures.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(summary)
}

/// The destination objects (key and size) of every snapshot the `entries`
/// point to: one listing each. `None` when there are none, more than
/// [`MAX_LISTED_SNAPSHOTS`], or a listing fails.
async fn list_snapshots(
    dest: &dyn ObjectStore,
    root: &str,
    entries: impl Iterator<Item = &Entry>,
) -> Option<HashMap<String, u64>> {
    let snapshots: HashSet<&str> = entries
        .filter_map(|p| p.object.split_once('/').map(|(id, _)| id))
        .collect();
    if snapshots.is_empty() || snapshots.len() > MAX_LISTED_SNAPSHOTS {
        return None;
    }
    let mut listed: HashMap<String, u64> = HashMap::new();
    for id in snapshots {
        for m in dest.list_keys(&join(root, &format!("{id}/"))).await.ok()? {
            listed.insert(m.key, m.size);
        }
    }
    Some(listed)
}

/// The keys of the destination objects that the states unchanged since the
/// previous snapshot point to and that still exist (with the size the
/// manifest gives, when not gzipped): one listing per snapshot they are in,
/// `listed` when it was made already (of the snapshots of every entry of
/// the previous snapshot). `None` (look at each with a HEAD instead) when
/// they are spread over more than [`MAX_LISTED_SNAPSHOTS`] snapshots or a
/// listing fails.
async fn present_objects(
    dest: &dyn ObjectStore,
    root: &str,
    states: &[ObjectMeta],
    previous: &HashMap<String, Entry>,
    listed: Option<HashMap<String, u64>>,
) -> Option<HashSet<String>> {
    let wanted: Vec<&Entry> = states
        .iter()
        .filter_map(|m| {
            previous
                .get(&m.key)
                .filter(|p| p.source_etag.is_some() && p.source_etag == m.etag && p.size == m.size)
        })
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let listed = match listed {
        Some(l) => l,
        None => list_snapshots(dest, root, wanted.iter().copied()).await?,
    };
    Some(
        wanted
            .into_iter()
            .map(|p| (join(root, &p.object), p))
            .filter(|(k, p)| listed.get(k).is_some_and(|&size| p.gzip || size == p.size))
            .map(|(k, _)| k)
            .collect(),
    )
}

/// The directory of a directory store (`file://<dir>`), `None` for a bucket.
fn local_dir(store: &dyn ObjectStore) -> Option<std::path::PathBuf> {
    store
        .describe()
        .strip_prefix("file://")
        .map(std::path::PathBuf::from)
}

/// `dir` with symlinks, `.` and `..` resolved; as given when it cannot be
/// (it does not exist yet).
fn canonical(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Copies one state into the snapshot: one GET from the source, then a PUT
/// (or a server-side copy) to the destination.
struct Copier<'a> {
    src: &'a dyn ObjectStore,
    dest: &'a dyn ObjectStore,
    root: &'a str,
    id: &'a str,
    gzip: bool,
    server_side: bool,
}

impl Copier<'_> {
    async fn copy(&self, meta: &ObjectMeta) -> Result<Entry, StoreError> {
        if self.server_side
            && let Some(etag) = meta.etag.as_deref().filter(|e| etag_is_md5(e))
            && let Some(entry) = self.copy_listed(meta, etag).await?
        {
            return Ok(entry);
        }
        self.copy_read(meta).await
    }

    /// Server-side copy of the version listed (ETag `etag`, an MD5) without
    /// reading it whole: the first [`HEAD_BYTES`] of that version (for the
    /// serial and lineage) and a copy of that version (`If-Match` on both),
    /// at once. The manifest's MD5 is the listed ETag, and the copy must
    /// report it. `None` when this cannot be done (the state changed since
    /// the listing, its serial and lineage are not in the head, a server
    /// that reports another ETag): the caller reads it whole instead.
    async fn copy_listed(
        &self,
        meta: &ObjectMeta,
        etag: &str,
    ) -> Result<Option<Entry>, StoreError> {
        let object = snapshot::object_for(self.id, &meta.key, false);
        let dest_key = join(self.root, &object);
        let (head, copied) = futures_util::join!(
            self.src.get_head(&meta.key, HEAD_BYTES, etag),
            self.dest
                .copy_from_if(self.src.bucket(), &meta.key, &dest_key, Some(etag))
        );
        let head = match head {
            Ok(h) => h,
            Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match copied {
            Ok(Some(e)) if e.eq_ignore_ascii_case(etag) => {}
            Ok(_) | Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        // The whole state when it fits in the head (what it says is final);
        // else its first bytes, or the whole read when they do not tell.
        let (serial, lineage) = if (head.bytes.len() as u64) < meta.size {
            match state::head_header(&head.bytes) {
                Some((s, l)) => (Some(s), Some(l)),
                None => return Ok(None),
            }
        } else {
            state::header(&head.bytes).map_or((None, None), |(s, l)| (Some(s), Some(l)))
        };
        Ok(Some(Entry {
            key: meta.key.clone(),
            object,
            size: meta.size,
            md5: etag.to_ascii_lowercase(),
            serial,
            lineage,
            source_etag: meta.etag.clone(),
            source_last_modified: meta.last_modified,
            time: Utc::now(),
            gzip: false,
        }))
    }

    /// One GET of the whole state, then a PUT (or a server-side copy).
    async fn copy_read(&self, meta: &ObjectMeta) -> Result<Entry, StoreError> {
        let got = self.src.get(&meta.key).await?;
        // MD5 and header on the blocking pool: a second core while the
        // runtime thread keeps the requests going. Serial and lineage from
        // the first bytes, as a server-side copy takes them (the whole
        // document is parsed only when they are not there): the manifest
        // says the same of a state whichever way it was copied.
        // Hashed once: the check against the ETag, the destination's
        // Content-MD5 (or the directory store's ETag) and the manifest.
        let (got_meta, body, md5, header) = tokio::task::spawn_blocking(move || {
            let body = Payload::new(got.bytes);
            let md5 = body.md5_hex();
            let header = match body.get(..HEAD_BYTES as usize) {
                Some(head) if body.len() as u64 > HEAD_BYTES => {
                    state::head_header(head).or_else(|| state::header(&body))
                }
                _ => state::header(&body),
            };
            (got.meta, body, md5, header)
        })
        .await
        .map_err(|e| StoreError::Other {
            location: self.src.location(&meta.key),
            message: format!("worker failed: {e}"),
        })?;
        read::check(&self.src.location(&meta.key), &got_meta, &md5)?;
        let (serial, lineage) = match header {
            Some((serial, lineage)) => (Some(serial), Some(lineage)),
            None => (None, None),
        };
        let object = snapshot::object_for(self.id, &meta.key, self.gzip);
        let dest_key = join(self.root, &object);
        // Shared with the write, not copied (a large state is held once).
        let size = body.len() as u64;
        let stored_etag = if self.server_side {
            // The copy is of whatever the source holds now: if that is not
            // what was read (the state changed meanwhile), write the bytes
            // read instead, so the manifest and the object agree.
            match self
                .dest
                .copy_from(self.src.bucket(), &meta.key, &dest_key)
                .await?
            {
                Some(e) if e.eq_ignore_ascii_case(&md5) => Some(e),
                _ => {
                    self.dest
                        .put_bytes(&dest_key, body.clone(), PutMode::Overwrite)
                        .await?
                }
            }
        } else if self.gzip {
            let gz = Payload::new(snapshot::gzip(&body).map_err(|e| StoreError::Other {
                location: self.dest.location(&dest_key),
                message: format!("gzip failed: {e}"),
            })?);
            let want = gz.md5_hex();
            let etag = self
                .dest
                .put_bytes(&dest_key, gz, PutMode::Overwrite)
                .await?;
            check_written(self.dest, &dest_key, etag, &want)?;
            None
        } else {
            self.dest
                .put_bytes(&dest_key, body.clone(), PutMode::Overwrite)
                .await?
        };
        if !self.gzip {
            check_written(self.dest, &dest_key, stored_etag, &md5)?;
        }
        Ok(Entry {
            key: meta.key.clone(),
            object,
            size,
            md5,
            serial,
            lineage,
            source_etag: got_meta.etag.clone(),
            source_last_modified: got_meta.last_modified,
            time: Utc::now(),
            gzip: self.gzip,
        })
    }
}

/// The ETag the destination reported for a write, when it is an MD5, must
/// be the MD5 of what was sent.
fn check_written(
    store: &dyn ObjectStore,
    key: &str,
    etag: Option<String>,
    want: &str,
) -> Result<(), StoreError> {
    match etag {
        Some(e) if etag_is_md5(&e) && !e.eq_ignore_ascii_case(want) => Err(StoreError::Transport {
            location: store.location(key),
            message: format!("stored with ETag {e}, but the bytes sent have MD5 {want}"),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backup::Silent;
    use crate::store::fs::FsStore;
    use crate::store::md5_hex;

    pub(crate) fn st(lineage: &str, serial: u64) -> Vec<u8> {
        format!(r#"{{"version":4,"serial":{serial},"lineage":"{lineage}","outputs":{{"x":{{"value":1,"type":"number"}}}},"resources":[]}}"#)
            .into_bytes()
    }

    pub(crate) const STATES: [&str; 3] = [
        "net/terraform.tfstate",
        "env:/prod/net/terraform.tfstate",
        "app/terraform.tfstate",
    ];

    /// A source with three states and a lock, and an empty destination.
    pub(crate) struct Dirs {
        _a: tempfile::TempDir,
        _b: tempfile::TempDir,
        pub src: FsStore,
        pub dst: FsStore,
    }

    pub(crate) async fn dirs() -> Dirs {
        let (a, b) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        let d = Dirs {
            src: FsStore::new(a.path()).expect("src"),
            dst: FsStore::new(b.path()).expect("dst"),
            _a: a,
            _b: b,
        };
        for (i, k) in STATES.iter().enumerate() {
            d.src
                .put(k, st(&format!("lin-{i}"), 3), PutMode::Create)
                .await
                .expect("seed");
        }
        d.src
            .put(
                "other/terraform.tfstate.tflock",
                b"{}".to_vec(),
                PutMode::Create,
            )
            .await
            .expect("lock");
        d
    }

    pub(crate) async fn run(d: &Dirs, gzip: bool, keep: Option<usize>) -> Summary {
        // Snapshot IDs are the time to the millisecond.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let dest = Destination {
            store: &d.dst,
            root: "nightly",
            display: "file:///backups/nightly",
            same_server: false,
        };
        let opts = Options {
            prefix: "",
            pattern: None,
            gzip,
            concurrency: 2,
            keep,
        };
        backup(&d.src, &dest, &opts, &Silent).await.expect("backup")
    }

    #[tokio::test]
    async fn a_snapshot_of_every_state_then_an_incremental_one() {
        let d = dirs().await;
        let first = run(&d, false, None).await;
        assert_eq!(
            (first.seen, first.copied, first.skipped, first.failed),
            (3, 3, 0, 0),
            "the lock is not a state: {first:?}"
        );
        assert!(first.incomplete().is_none());
        let ids = snapshot::list_ids(&d.dst, "nightly").await.expect("ids");
        assert_eq!(ids, std::slice::from_ref(&first.snapshot));
        let m = snapshot::read_manifest(&d.dst, "nightly", &ids[0])
            .await
            .expect("manifest");
        let keys: Vec<&str> = m.states.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "app/terraform.tfstate",
                "env:/prod/net/terraform.tfstate",
                "net/terraform.tfstate"
            ]
        );
        for e in &m.states {
            let got = d
                .dst
                .get(&join("nightly", &e.object))
                .await
                .expect("object");
            assert_eq!(got.bytes, d.src.get(&e.key).await.expect("src").bytes);
            assert_eq!(md5_hex(&got.bytes), e.md5);
            assert_eq!(e.serial, Some(3));
        }

        // Nothing changed: nothing read again, the manifest points to the
        // objects of the first snapshot.
        let second = run(&d, false, None).await;
        assert_eq!((second.copied, second.skipped), (0, 3), "{second:?}");
        let m2 = snapshot::read_manifest(&d.dst, "nightly", &second.snapshot)
            .await
            .expect("manifest");
        assert!(
            m2.states
                .iter()
                .all(|e| e.object.starts_with(&first.snapshot))
        );

        // One state changed: only it is copied.
        d.src
            .put(STATES[0], st("lin-0", 4), PutMode::Overwrite)
            .await
            .expect("put");
        let third = run(&d, true, None).await;
        assert_eq!((third.copied, third.skipped), (1, 2), "{third:?}");
        let m3 = snapshot::read_manifest(&d.dst, "nightly", &third.snapshot)
            .await
            .expect("manifest");
        let changed = m3
            .states
            .iter()
            .find(|e| e.key == STATES[0])
            .expect("entry");
        assert!(changed.gzip && changed.object.ends_with(".gz"));
        assert_eq!(changed.serial, Some(4));
    }

    #[tokio::test]
    async fn an_unchanged_state_whose_object_is_gone_is_copied_again() {
        let d = dirs().await;
        let first = run(&d, false, None).await;
        let m = snapshot::read_manifest(&d.dst, "nightly", &first.snapshot)
            .await
            .expect("manifest");
        let lost = m.states.iter().find(|e| e.key == STATES[0]).expect("entry");
        d.dst
            .delete(&join("nightly", &lost.object), None)
            .await
            .expect("delete");
        let second = run(&d, false, None).await;
        assert_eq!((second.copied, second.skipped), (1, 2), "{second:?}");
        let m2 = snapshot::read_manifest(&d.dst, "nightly", &second.snapshot)
            .await
            .expect("manifest");
        for e in &m2.states {
            let got = d
                .dst
                .get(&join("nightly", &e.object))
                .await
                .expect("every object of the new snapshot exists");
            assert_eq!(md5_hex(&got.bytes), e.md5);
        }
        let again = m2
            .states
            .iter()
            .find(|e| e.key == STATES[0])
            .expect("entry");
        assert!(again.object.starts_with(&second.snapshot), "{again:?}");
    }

    #[tokio::test]
    async fn keep_prunes_old_snapshots_but_not_the_objects_still_used() {
        let d = dirs().await;
        let first = run(&d, false, None).await;
        run(&d, false, None).await;
        let third = run(&d, false, Some(1)).await;
        assert_eq!(third.pruned.len(), 2, "{third:?}");
        let ids = snapshot::list_ids(&d.dst, "nightly").await.expect("ids");
        assert_eq!(ids, std::slice::from_ref(&third.snapshot));
        // The kept snapshot still points to the first one's objects.
        let m = snapshot::read_manifest(&d.dst, "nightly", &ids[0])
            .await
            .expect("manifest");
        for e in &m.states {
            assert!(e.object.starts_with(&first.snapshot));
            assert!(d.dst.head(&join("nightly", &e.object)).await.is_ok());
        }
    }

    #[tokio::test]
    async fn keep_never_prunes_this_runs_snapshot_and_reports_ids_from_the_future() {
        let d = dirs().await;
        run(&d, false, None).await;
        // A snapshot written by a clock far ahead.
        let future = snapshot::new_id(Utc::now() + chrono::Duration::days(400));
        let m = Manifest {
            format: snapshot::FORMAT.into(),
            id: future.clone(),
            created: Utc::now(),
            source: "elsewhere".into(),
            states: Vec::new(),
        };
        snapshot::write_manifest(&d.dst, "nightly", &m)
            .await
            .expect("future manifest");
        let now = run(&d, false, Some(1)).await;
        let ids = snapshot::list_ids(&d.dst, "nightly").await.expect("ids");
        assert_eq!(ids, std::slice::from_ref(&now.snapshot), "{now:?}");
        assert_eq!(now.future, std::slice::from_ref(&future));
        assert_eq!(now.pruned.len(), 2, "{now:?}");
        let kept = snapshot::read_manifest(&d.dst, "nightly", &now.snapshot)
            .await
            .expect("this run's manifest");
        for e in &kept.states {
            assert!(d.dst.head(&join("nightly", &e.object)).await.is_ok());
        }
    }

    /// After a snapshot from a clock ahead of ours, the incremental base is
    /// still the newest snapshot not after now (issue 9).
    #[tokio::test]
    async fn the_incremental_base_is_not_a_snapshot_from_the_future() {
        let d = dirs().await;
        let first = run(&d, false, None).await;
        let m = Manifest {
            format: snapshot::FORMAT.into(),
            id: snapshot::new_id(Utc::now() + chrono::Duration::days(400)),
            created: Utc::now(),
            source: "elsewhere".into(),
            states: Vec::new(),
        };
        snapshot::write_manifest(&d.dst, "nightly", &m)
            .await
            .expect("future manifest");
        let second = run(&d, false, None).await;
        assert_eq!(
            (second.copied, second.skipped),
            (0, first.seen),
            "compared with {} (the newest not after now): {second:?}",
            first.snapshot
        );
    }

    #[tokio::test]
    async fn the_source_directory_is_refused_however_it_is_spelt() {
        let d = dirs().await;
        let src = std::path::PathBuf::from(
            d.src
                .describe()
                .strip_prefix("file://")
                .expect("a directory"),
        );
        let opts = Options {
            prefix: "",
            pattern: None,
            gzip: false,
            concurrency: 1,
            keep: None,
        };
        let mut slash = src.clone().into_os_string();
        slash.push("/");
        for (to, inside) in [
            (src.join("."), false),
            (std::path::PathBuf::from(slash), false),
            (src.join("net").join(".."), false),
            (src.join("backups"), true),
        ] {
            let store = FsStore::create(to.clone()).expect("dest");
            let dest = Destination {
                store: &store,
                root: "",
                display: "file:///given",
                same_server: false,
            };
            let err = backup(&d.src, &dest, &opts, &Silent)
                .await
                .expect_err(&format!("backup into {} accepted", to.display()));
            let msg = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{to:?}: {msg}");
            assert!(
                msg.contains(if inside {
                    "is inside"
                } else {
                    "into the directory it reads"
                }),
                "{to:?}: {msg}"
            );
        }
        assert!(
            snapshot::list_ids(&d.src, "")
                .await
                .expect("ids")
                .is_empty(),
            "no snapshot written into the source"
        );
    }

    #[tokio::test]
    async fn the_source_bucket_needs_a_prefix() {
        let d = dirs().await;
        let dest = Destination {
            store: &d.src,
            root: "",
            display: "file:///src",
            same_server: false,
        };
        let opts = Options {
            prefix: "",
            pattern: None,
            gzip: false,
            concurrency: 1,
            keep: None,
        };
        assert!(matches!(
            backup(&d.src, &dest, &opts, &Silent).await,
            Err(Error::Config(_))
        ));
    }
}
