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

use super::Ctx;
use super::backup::open_destination;
use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::location::join;
use crate::store::{GetResult, ObjectStore, StoreError, etag_is_md5, md5_hex};
use crate::tfstate::guard::{self, LockSpec, under_locks};
use crate::tfstate::keys;
use crate::tfstate::lock::LockError;
use crate::tfstate::read;
use crate::tfstate::state::{self, StateInfo};
use crate::tfstate::write::{self, Action, PlanError, Purpose, Rules, StateWrite};
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
                let src_state = read::get_opt(src, &item.source_key).await?;
                let dst_state = get_opt(dst, &item.dest_key).await?;
                plan(
                    item,
                    src_state.as_ref().map(|v| &v.got),
                    dst_state.as_ref(),
                    args.force,
                );
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
        let warn = &ctx.warn();
        let mut runs = futures_util::stream::iter(items.iter_mut())
            .map(|item| async move {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
                let specs = [
                    LockSpec::new(src, &item.source_key, SOURCE_OPERATION),
                    LockSpec::new(dst, &item.dest_key, DESTINATION_OPERATION),
                ];
                let ws = item.workspace.clone();
                let r = under_locks(
                    &specs,
                    args.lock_timeout,
                    warn,
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
            Error::Lock(LockError::Held { .. }) | Error::Interrupted { .. } => e,
            _ => Error::Incomplete(what),
        });
    }

    // Phase 2: delete the sources, each still as it was copied.
    if args.delete_source {
        let warn = &ctx.warn();
        let mut deletes = futures_util::stream::iter(
            items.iter_mut().filter(|it| it.action != "missing"),
        )
        .map(|item| async move {
            let spec = LockSpec::new(src, &item.source_key, SOURCE_OPERATION);
            let etag = item.source_etag.clone();
            let key = item.source_key.clone();
            guard::under_lock(spec, args.lock_timeout, warn, async {
                let now = src.head(&key).await?;
                if now.etag != etag {
                    return Err(Error::StateConflict {
                        location: src.location(&key),
                        reason: "the source changed after it was copied; it was not deleted. Run the migration again".into(),
                    });
                }
                // The digest item goes with the state (a digest left behind
                // makes every later Terraform read of that key fail).
                crate::tfstate::dynamo::delete_state(src, &key, etag.as_deref()).await?;
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
    let rules = Rules::push(force);
    item.action = match write::plan(&rules, &src.bytes, dst.map(|d| d.bytes.as_slice())) {
        Ok(p) => match p.action {
            Action::Create => "create",
            Action::Overwrite => "overwrite",
            Action::Unchanged => "unchanged",
        },
        Err(PlanError::Refused(r)) => {
            item.reason = Some(Purpose::Migration.refusal(&r));
            "refused"
        }
        // The push rules have no other outcome.
        Err(PlanError::Invalid(reason)) => {
            item.reason = Some(reason);
            "refused"
        }
    }
    .into();
}

/// Phase 1 for one workspace; the caller holds both locks.
async fn move_one(
    src: &dyn ObjectStore,
    dst: &dyn ObjectStore,
    item: &mut Item,
    force: bool,
) -> Result<(), Error> {
    let s = read::get_opt(src, &item.source_key).await?;
    let dest_key = item.dest_key.clone();
    let write = StateWrite::new(dst, &dest_key, Rules::push(force), Purpose::Migration);
    let d = write.read_current().await?;
    plan(item, s.as_ref().map(|v| &v.got), d.as_ref(), force);
    let Some(s) = s else {
        item.status = "skipped".into();
        return Ok(());
    };
    let md5 = s.md5;
    let plan = write.plan(&s.got.bytes, d.as_ref())?;
    write.commit(plan, d.as_ref()).await?;
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
