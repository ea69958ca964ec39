//! `tfsync migrate`: move a state and its workspaces to another bucket,
//! prefix or provider.
//!
//! Phase 1, per workspace, under both locks (source `migration source
//! state`, destination `migration destination state`): read the source,
//! apply the push rules against the destination, write compare-and-swap,
//! read back and compare MD5s. Phase 2 (`--delete-source`), only when every
//! workspace passed phase 1: delete each source under its lock, if it still
//! has the ETag that was copied. A failure in phase 1 leaves every source
//! untouched.

use super::backup::open_destination;
use super::{Ctx, LockSpec, under_locks};
use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::location::join;
use crate::store::{GetResult, ObjectStore, PutMode, StoreError, etag_is_md5, md5_hex};
use crate::tfstate::keys;
use crate::tfstate::state::{self, StateInfo};
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

pub const SOURCE_OPERATION: &str = "migration source state";
pub const DESTINATION_OPERATION: &str = "migration destination state";

#[derive(Debug, Serialize)]
struct Item {
    workspace: String,
    source: String,
    destination: String,
    size: Option<u64>,
    serial: Option<u64>,
    lineage: Option<String>,
    /// create, overwrite, unchanged, refused, missing (no source state)
    action: String,
    reason: Option<String>,
    /// planned (dry run), moved, failed, not-started, skipped
    status: String,
    #[serde(skip)]
    source_key: String,
    #[serde(skip)]
    dest_key: String,
    #[serde(skip)]
    source_etag: Option<String>,
}

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<(), Error> {
    let dest = open_destination(&ctx.config, &args.to, &args.side, false).await?;
    let src = ctx.store.as_ref();
    let dst = dest.store.as_ref();
    let cfg = &ctx.config;
    let dest_key = join(&dest.prefix, &cfg.key);
    if src.describe() == dst.describe() && dest_key == cfg.key {
        return Err(Error::Config(format!(
            "{} is where the state already is: give another bucket, prefix or provider",
            args.to
        )));
    }
    let workspaces = if args.all_workspaces {
        workspaces(src, &cfg.key, &cfg.workspace_key_prefix).await?
    } else {
        vec![cfg.workspace.clone()]
    };

    let mut items: Vec<Item> = workspaces
        .iter()
        .map(|w| {
            let sk = keys::state_key(&cfg.key, w, &cfg.workspace_key_prefix);
            let dk = keys::state_key(&dest_key, w, &cfg.workspace_key_prefix);
            Item {
                workspace: w.clone(),
                source: src.location(&sk),
                destination: dst.location(&dk),
                size: None,
                serial: None,
                lineage: None,
                action: String::new(),
                reason: None,
                status: "not-started".into(),
                source_key: sk,
                dest_key: dk,
                source_etag: None,
            }
        })
        .collect();

    let n = args.concurrency as usize;
    if args.dry_run {
        let mut reads = futures_util::stream::iter(items.iter_mut())
            .map(|item| async move {
                let src_state = get_opt(src, &item.source_key).await?;
                let dst_state = get_opt(dst, &item.dest_key).await?;
                plan(item, src_state.as_ref(), dst_state.as_ref(), args.force);
                item.status = "planned".into();
                Ok::<(), Error>(())
            })
            .buffer_unordered(n);
        let mut first_error = None;
        while let Some(r) = reads.next().await {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        drop(reads);
        if let Some(e) = first_error {
            return Err(e);
        }
        report(ctx, &args, &items, true);
        return Ok(());
    }

    // Phase 1: copy and verify, up to `n` workspaces at once. After the
    // first failure no further workspace starts, but those under way finish
    // (a future dropped halfway would leave its locks behind).
    let stop = AtomicBool::new(false);
    let mut errors: Vec<(String, Error)> = Vec::new();
    {
        let stop = &stop;
        let out = &ctx.out;
        let mut runs = futures_util::stream::iter(items.iter_mut())
            .map(|item| async move {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
                let specs = [
                    LockSpec {
                        store: src,
                        state_key: item.source_key.clone(),
                        operation: SOURCE_OPERATION.into(),
                    },
                    LockSpec {
                        store: dst,
                        state_key: item.dest_key.clone(),
                        operation: DESTINATION_OPERATION.into(),
                    },
                ];
                let ws = item.workspace.clone();
                let r = under_locks(
                    out,
                    &specs,
                    args.lock_timeout,
                    move_one(src, dst, item, args.force),
                )
                .await;
                match r {
                    Ok(()) => None,
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        Some((ws, e))
                    }
                }
            })
            .buffer_unordered(n);
        while let Some(r) = runs.next().await {
            if let Some(failed) = r {
                errors.push(failed);
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        for it in items.iter_mut() {
            if errors.iter().any(|(w, _)| *w == it.workspace) {
                it.status = "failed".into();
            }
        }
        report(ctx, &args, &items, false);
        let moved: Vec<&str> = items
            .iter()
            .filter(|it| it.status == "moved")
            .map(|it| it.workspace.as_str())
            .collect();
        let rest: Vec<&str> = items
            .iter()
            .filter(|it| it.status != "moved" && it.status != "skipped")
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
            if args.delete_source {
                " (nothing was deleted)"
            } else {
                ""
            },
        );
        return Err(match e {
            Error::StateConflict { location, .. } => Error::StateConflict {
                location,
                reason: what,
            },
            Error::LockHeld { .. } | Error::Interrupted { .. } => e,
            _ => Error::Incomplete(what),
        });
    }

    // Phase 2: delete the sources, each still as it was copied.
    if args.delete_source {
        let out = &ctx.out;
        let mut deletes = futures_util::stream::iter(
            items.iter_mut().filter(|it| it.action != "missing"),
        )
        .map(|item| async move {
            let spec = LockSpec {
                store: src,
                state_key: item.source_key.clone(),
                operation: SOURCE_OPERATION.into(),
            };
            let etag = item.source_etag.clone();
            let key = item.source_key.clone();
            under_locks(out, std::slice::from_ref(&spec), args.lock_timeout, async {
                let now = src.head(&key).await?;
                if now.etag != etag {
                    return Err(Error::StateConflict {
                        location: src.location(&key),
                        reason: "the source changed after it was copied; it was not deleted. Run the migration again".into(),
                    });
                }
                src.delete(&key, etag.as_deref()).await?;
                Ok(())
            })
            .await?;
            item.status = "moved, source deleted".into();
            Ok::<(), Error>(())
        })
        .buffer_unordered(n);
        let mut first_error = None;
        while let Some(r) = deletes.next().await {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        drop(deletes);
        if let Some(e) = first_error {
            report(ctx, &args, &items, false);
            return Err(e);
        }
    }
    report(ctx, &args, &items, false);
    Ok(())
}

/// The workspaces that have a state: `default` if `key` exists, and every
/// `W` with a state at `<prefix>/W/<key>`.
async fn workspaces(
    store: &dyn ObjectStore,
    key: &str,
    prefix: &str,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    match store.head(key).await {
        Ok(_) => out.push(keys::DEFAULT_WORKSPACE.to_string()),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let list_prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let suffix = format!("/{key}");
    for m in store.list(&list_prefix).await? {
        if let Some(w) = m.key[list_prefix.len()..].strip_suffix(&suffix)
            && keys::validate_workspace(w).is_ok()
            && w != keys::DEFAULT_WORKSPACE
        {
            out.push(w.to_string());
        }
    }
    if out.is_empty() {
        return Err(Error::StateNotFound {
            location: store.location(key),
        });
    }
    Ok(out)
}

async fn get_opt(store: &dyn ObjectStore, key: &str) -> Result<Option<GetResult>, Error> {
    match store.get(key).await {
        Ok(g) => Ok(Some(g)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Fill in what would happen to `item`.
fn plan(item: &mut Item, src: Option<&GetResult>, dst: Option<&GetResult>, force: bool) {
    let Some(src) = src else {
        item.action = "missing".into();
        item.reason = Some("no state at the source".into());
        return;
    };
    item.size = Some(src.bytes.len() as u64);
    item.source_etag = src.meta.etag.clone();
    if let Ok(StateInfo::Plain(s)) = state::parse(&src.bytes) {
        item.serial = Some(s.serial);
        item.lineage = Some(s.lineage);
    }
    item.action = match dst {
        None => "create".into(),
        Some(d) if d.bytes == src.bytes => "unchanged".into(),
        Some(d) => match state::check_push(&src.bytes, Some(&d.bytes)) {
            Err(r) if !force => {
                item.reason = Some(format!("{r}; use --force to overwrite"));
                "refused".into()
            }
            _ => "overwrite".into(),
        },
    };
}

/// Phase 1 for one workspace; the caller holds both locks.
async fn move_one(
    src: &dyn ObjectStore,
    dst: &dyn ObjectStore,
    item: &mut Item,
    force: bool,
) -> Result<(), Error> {
    let s = get_opt(src, &item.source_key).await?;
    let d = get_opt(dst, &item.dest_key).await?;
    plan(item, s.as_ref(), d.as_ref(), force);
    let Some(s) = s else {
        item.status = "skipped".into();
        return Ok(());
    };
    let md5 = md5_hex(&s.bytes);
    if let Some(etag) = s.meta.etag.as_deref().filter(|e| etag_is_md5(e))
        && !etag.eq_ignore_ascii_case(&md5)
    {
        return Err(StoreError::Transport {
            location: item.source.clone(),
            message: format!("the bytes received (MD5 {md5}) do not match the ETag {etag}"),
        }
        .into());
    }
    match item.action.as_str() {
        "refused" => {
            return Err(Error::StateConflict {
                location: item.destination.clone(),
                reason: item.reason.clone().unwrap_or_default(),
            });
        }
        "unchanged" => {}
        _ => {
            let mode = match d.as_ref().map(|d| d.meta.etag.clone()) {
                None => PutMode::Create,
                Some(Some(e)) => PutMode::Update(e),
                Some(None) => PutMode::Overwrite,
            };
            match dst.put(&item.dest_key, s.bytes.clone(), mode).await {
                Ok(_) => {}
                Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                    return Err(Error::StateConflict {
                        location: item.destination.clone(),
                        reason: "the destination state changed while it was being written (someone wrote it without the lock); nothing was overwritten".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Read it back: the object at the destination must have the source's
    // MD5. A HEAD tells it when the store's ETag is the MD5 of the object;
    // otherwise (multipart, SSE-KMS) the bytes are read again.
    let head = dst.head(&item.dest_key).await?;
    let got = match head.etag.filter(|e| etag_is_md5(e)) {
        Some(e) => e.to_ascii_lowercase(),
        None => md5_hex(&dst.get(&item.dest_key).await?.bytes),
    };
    if got != md5 {
        return Err(StoreError::Other {
            location: item.destination.clone(),
            message: format!("it has MD5 {got} after writing, but the source has MD5 {md5}"),
        }
        .into());
    }
    item.status = "moved".into();
    Ok(())
}

fn report(ctx: &Ctx, args: &MigrateArgs, items: &[Item], dry_run: bool) {
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "to": args.to,
            "dry_run": dry_run,
            "delete_source": args.delete_source,
            "workspaces": items,
        }));
        return;
    }
    if dry_run {
        ctx.out.data("plan (dry run, nothing changed):");
    }
    for it in items {
        let what = match (it.serial, &it.lineage) {
            (Some(s), Some(l)) => format!(" (serial {s}, lineage {l})"),
            _ => String::new(),
        };
        let reason = it
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let line = format!(
            "  {:<12} {} -> {}{what}: {} [{}]{reason}",
            it.workspace, it.source, it.destination, it.action, it.status
        );
        if dry_run {
            ctx.out.data(line);
        } else {
            ctx.out.note(line);
        }
    }
}
