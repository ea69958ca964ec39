//! `tfsync backup` and `tfsync backup verify`: snapshots of every state
//! under a prefix (layout and rules in `snapshot.rs`). A backup never takes
//! or touches a lock: it must not block Terraform.

use super::Ctx;
use crate::cli::{BackupArgs, ToSide, VerifyArgs};
use crate::config::Config;
use crate::error::Error;
use crate::location::{self, Location, SideSettings, join};
use crate::output::Printer;
use crate::snapshot::{self, Entry, Manifest};
use crate::store::open::{self, Opened};
use crate::store::{ObjectMeta, ObjectStore, PutMode, StoreError, etag_is_md5, md5_hex};
use crate::tfstate::{read, state};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Default, Serialize)]
struct Summary {
    snapshot: String,
    source: String,
    destination: String,
    seen: usize,
    copied: usize,
    skipped: usize,
    failed: usize,
    bytes: u64,
    seconds: f64,
    pruned: Vec<String>,
    failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
struct Failure {
    key: String,
    error: String,
}

/// A progress bar on a terminal only (never in cron, JSON or quiet mode).
pub(crate) fn progress(out: &Printer, len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if out.json() || out.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {pos}/{len} states, {binary_bytes} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Open the destination `to` of a backup or a migration with its `--to-*`
/// flags (the source's settings fill in the rest, as `store::open` says);
/// `batched` as in [`open::open_location`].
pub(crate) async fn open_destination(
    config: &Config,
    to: &str,
    side: &ToSide,
    batched: bool,
) -> Result<Opened, Error> {
    let loc = Location::parse(to)?;
    // The destination is the one directory store that may be created.
    if let Location::Dir(dir) = &loc {
        crate::store::fs::FsStore::create(dir.clone())?;
    }
    let side = SideSettings {
        endpoint: side.to_endpoint.clone(),
        region: side.to_region.clone(),
        profile: side.to_profile.clone(),
    };
    let env = |k: &str| std::env::var(k).ok();
    open::open_location(&loc, &side, config, batched, &env).await
}

/// Seconds since `started`, to the millisecond.
fn seconds_since(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// One indented `key: error` line per failure.
fn failure_lines(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("  {}: {}", f.key, f.error))
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn run(ctx: &Ctx, args: BackupArgs) -> Result<(), Error> {
    let started = Instant::now();
    let to = args.to.as_deref().unwrap_or_default();
    let dest = open_destination(&ctx.config, to, &args.side, true).await?;
    let pattern = match &args.pattern {
        Some(p) => Some(
            glob::Pattern::new(p)
                .map_err(|e| Error::Config(format!("--match {p:?} is not a glob: {e}")))?,
        ),
        None => None,
    };
    let src = ctx.store.as_ref();
    let root = dest.prefix.clone();
    let same_bucket = src.describe() == dest.store.describe();
    if same_bucket && root.is_empty() {
        return Err(Error::Config(format!(
            "the backup would go into the bucket it reads ({}): give it a prefix (e.g. {}/backups) or another bucket",
            dest.display, dest.display
        )));
    }
    let own = format!("{root}/");
    let states: Vec<ObjectMeta> = src
        .list(&args.prefix)
        .await?
        .into_iter()
        .filter(|m| snapshot::is_state_key(&m.key, pattern.as_ref()))
        .filter(|m| !(same_bucket && m.key.starts_with(&own)))
        .collect();

    // The newest complete snapshot, for the incremental skip.
    let previous: HashMap<String, Entry> =
        match snapshot::list_ids(dest.store.as_ref(), &root).await?.last() {
            Some(id) => snapshot::read_manifest(dest.store.as_ref(), &root, id)
                .await?
                .states
                .into_iter()
                .map(|e| (e.key.clone(), e))
                .collect(),
            None => HashMap::new(),
        };

    let id = snapshot::new_id(Utc::now());
    let mut summary = Summary {
        snapshot: id.clone(),
        source: location::join(&src.describe(), args.prefix.trim_end_matches('/')),
        destination: dest.display.clone(),
        seen: states.len(),
        ..Default::default()
    };
    let bar = progress(&ctx.out, states.len() as u64, "backup");
    let copier = Copier {
        src,
        dest: dest.store.as_ref(),
        root: &root,
        id: &id,
        gzip: args.gzip,
        server_side: dest.same_server && dest.store.can_copy() && !args.gzip,
    };
    let mut results = futures_util::stream::iter(states.iter())
        .map(|meta| {
            let prev = previous.get(&meta.key);
            let copier = &copier;
            async move {
                let unchanged = prev.filter(|p| {
                    p.source_etag.is_some() && p.source_etag == meta.etag && p.size == meta.size
                });
                match unchanged {
                    Some(p) => Ok((p.clone(), false)),
                    None => copier.copy(meta).await.map(|e| (e, true)),
                }
                .map_err(|e| (meta.key.clone(), e))
            }
        })
        .buffer_unordered(args.concurrency as usize);
    let mut entries = Vec::with_capacity(states.len());
    while let Some(r) = results.next().await {
        match r {
            Ok((entry, copied)) => {
                if copied {
                    summary.copied += 1;
                    summary.bytes += entry.size;
                } else {
                    summary.skipped += 1;
                }
                bar.inc(1);
                entries.push(entry);
            }
            Err((key, e)) => {
                summary.failed += 1;
                bar.inc(1);
                summary.failures.push(Failure {
                    key,
                    error: e.to_string(),
                });
            }
        }
    }
    drop(results);
    bar.finish_and_clear();

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
        snapshot::write_manifest(dest.store.as_ref(), &root, &manifest).await?;
        dest.store.flush().await?;
        if let Some(keep) = args.keep {
            summary.pruned = snapshot::prune(dest.store.as_ref(), &root, keep as usize)
                .await?
                .snapshots;
        }
    }
    summary.failures.sort_by(|a, b| a.key.cmp(&b.key));
    summary.seconds = seconds_since(started);
    report(&ctx.out, &summary);
    if summary.failures.is_empty() {
        return Ok(());
    }
    Err(Error::Incomplete(format!(
        "backup of {} failed for {} of {} states; no manifest was written, so this run is not a snapshot (the next run copies again what it needs):\n{}",
        summary.source,
        summary.failed,
        summary.seen,
        failure_lines(&summary.failures)
    )))
}

fn report(out: &Printer, s: &Summary) {
    if out.json() {
        out.emit_json(&serde_json::to_value(s).unwrap_or_default());
        return;
    }
    if out.quiet && s.failures.is_empty() {
        return;
    }
    let pruned = if s.pruned.is_empty() {
        String::new()
    } else {
        format!(", pruned {} old snapshot(s)", s.pruned.len())
    };
    out.data(format!(
        "backup {} -> {}/{}: {} seen, {} copied, {} skipped, {} failed, {} bytes, {:.2} s{pruned}",
        s.source,
        s.destination,
        s.snapshot,
        s.seen,
        s.copied,
        s.skipped,
        s.failed,
        s.bytes,
        s.seconds
    ));
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
        let got = self.src.get(&meta.key).await?;
        // MD5 and header on the blocking pool: a second core while the
        // runtime thread keeps the requests going.
        let (got, md5, header) = tokio::task::spawn_blocking(move || {
            let md5 = md5_hex(&got.bytes);
            let header = state::header(&got.bytes);
            (got, md5, header)
        })
        .await
        .map_err(|e| StoreError::Other {
            location: self.src.location(&meta.key),
            message: format!("worker failed: {e}"),
        })?;
        read::check(&self.src.location(&meta.key), &got.meta, &md5)?;
        let (serial, lineage) = match header {
            Some((serial, lineage)) => (Some(serial), Some(lineage)),
            None => (None, None),
        };
        let object = snapshot::object_for(self.id, &meta.key, self.gzip);
        let dest_key = join(self.root, &object);
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
                        .put(&dest_key, got.bytes.clone(), PutMode::Overwrite)
                        .await?
                }
            }
        } else if self.gzip {
            let gz = snapshot::gzip(&got.bytes).map_err(|e| StoreError::Other {
                location: self.dest.location(&dest_key),
                message: format!("gzip failed: {e}"),
            })?;
            let want = md5_hex(&gz);
            let etag = self.dest.put(&dest_key, gz, PutMode::Overwrite).await?;
            check_written(self.dest, &dest_key, etag, &want)?;
            None
        } else {
            self.dest
                .put(&dest_key, got.bytes.clone(), PutMode::Overwrite)
                .await?
        };
        if !self.gzip {
            check_written(self.dest, &dest_key, stored_etag, &md5)?;
        }
        Ok(Entry {
            key: meta.key.clone(),
            object,
            size: got.bytes.len() as u64,
            md5,
            serial,
            lineage,
            source_etag: got.meta.etag.clone(),
            source_last_modified: got.meta.last_modified,
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

/// A backup location and, if it names one, a snapshot in it.
pub(crate) struct Backup {
    pub opened: Opened,
    pub root: String,
    pub snapshot: Option<String>,
}

/// Open `text` as a backup root, or as `<root>/<snapshot id>` when the last
/// part of it is the ID of a complete snapshot.
pub(crate) async fn open_backup(
    config: &Config,
    text: &str,
    side: &crate::cli::FromSide,
) -> Result<Backup, Error> {
    let loc = Location::parse(text)?;
    let side = SideSettings {
        endpoint: side.from_endpoint.clone(),
        region: side.from_region.clone(),
        profile: side.from_profile.clone(),
    };
    let env = |k: &str| std::env::var(k).ok();
    // `…/<id>`: a directory's last component, or a prefix's last segment.
    let (parent, last) = match &loc {
        Location::Dir(d) => (
            d.parent()
                .map(|p| Location::Dir(p.to_path_buf()))
                .filter(|_| d.file_name().is_some()),
            d.file_name().map(|n| n.to_string_lossy().into_owned()),
        ),
        Location::S3 {
            bucket,
            prefix,
            remote,
        } if !prefix.is_empty() => {
            let (p, last) = prefix.rsplit_once('/').unwrap_or(("", prefix));
            (
                Some(Location::S3 {
                    bucket: bucket.clone(),
                    prefix: p.to_string(),
                    remote: remote.clone(),
                }),
                Some(last.to_string()),
            )
        }
        Location::S3 { .. } => (None, None),
    };
    if let (Some(parent), Some(id)) = (parent, last) {
        let opened = open::open_location(&parent, &side, config, false, &env).await?;
        let root = opened.prefix.clone();
        match opened.store.head(&snapshot::manifest_key(&root, &id)).await {
            Ok(_) => {
                return Ok(Backup {
                    opened,
                    root,
                    snapshot: Some(id),
                });
            }
            Err(StoreError::NotFound { .. } | StoreError::BucketNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let opened = open::open_location(&loc, &side, config, false, &env).await?;
    let root = opened.prefix.clone();
    Ok(Backup {
        opened,
        root,
        snapshot: None,
    })
}

#[derive(Debug, Default, Serialize)]
struct VerifySummary {
    location: String,
    snapshots: Vec<String>,
    objects: usize,
    ok: usize,
    failed: usize,
    seconds: f64,
    failures: Vec<Failure>,
}

/// `tfsync backup verify`: every object of the chosen snapshots, read once
/// each, checked for size and MD5 against its manifest entry.
pub async fn verify(config: &Config, out: Printer, args: &VerifyArgs) -> Result<(), Error> {
    let started = Instant::now();
    let b = open_backup(config, &args.from, &args.side).await?;
    let store = b.opened.store.as_ref();
    let ids = match &b.snapshot {
        Some(id) => vec![id.clone()],
        None => snapshot::list_ids(store, &b.root).await?,
    };
    if ids.is_empty() {
        return Err(Error::Store(StoreError::NotFound {
            location: format!(
                "{} (no complete snapshot: no manifests/*.json)",
                b.opened.display
            ),
        }));
    }
    // One check per object, even when several manifests point to it.
    let mut objects: HashMap<String, Entry> = HashMap::new();
    for id in &ids {
        for e in snapshot::read_manifest(store, &b.root, id).await?.states {
            objects.entry(e.object.clone()).or_insert(e);
        }
    }
    let mut summary = VerifySummary {
        location: b.opened.display.clone(),
        snapshots: ids,
        objects: objects.len(),
        ..Default::default()
    };
    let bar = progress(&out, objects.len() as u64, "verify");
    let root = b.root.as_str();
    let mut results = futures_util::stream::iter(objects.values())
        .map(|e| async move {
            let key = join(root, &e.object);
            let check = async {
                let got = store.get(&key).await.map_err(|e| e.to_string())?;
                let bytes = if e.gzip {
                    snapshot::gunzip(&got.bytes).map_err(|err| format!("not valid gzip: {err}"))?
                } else {
                    got.bytes
                };
                let md5 = md5_hex(&bytes);
                if bytes.len() as u64 != e.size || md5 != e.md5 {
                    return Err(format!(
                        "{} bytes with MD5 {md5}, the manifest says {} bytes with MD5 {}",
                        bytes.len(),
                        e.size,
                        e.md5
                    ));
                }
                Ok(())
            };
            check.await.map_err(|err| Failure {
                key: store.location(&key),
                error: err,
            })
        })
        .buffer_unordered(args.concurrency as usize);
    while let Some(r) = results.next().await {
        bar.inc(1);
        match r {
            Ok(()) => summary.ok += 1,
            Err(f) => {
                summary.failed += 1;
                summary.failures.push(f);
            }
        }
    }
    drop(results);
    bar.finish_and_clear();
    summary.failures.sort_by(|a, b| a.key.cmp(&b.key));
    summary.seconds = seconds_since(started);
    if out.json() {
        out.emit_json(&serde_json::to_value(&summary).unwrap_or_default());
    } else if !out.quiet || summary.failed > 0 {
        out.data(format!(
            "verify {}: {} snapshot(s), {} objects, {} ok, {} failed, {:.2} s",
            summary.location,
            summary.snapshots.len(),
            summary.objects,
            summary.ok,
            summary.failed,
            summary.seconds
        ));
    }
    if summary.failures.is_empty() {
        return Ok(());
    }
    Err(Error::Incomplete(format!(
        "{} of {} backup objects are damaged or missing:\n{}",
        summary.failed,
        summary.objects,
        failure_lines(&summary.failures)
    )))
}
