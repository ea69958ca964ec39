//! `tfsync prune-locks --versions`: the noncurrent versions of `.tflock`
//! objects that pile up in versioned buckets.
//!
//! Order matters: a delete marker on top of a lock key is removed only
//! after every other version of that key, so no old lock version can ever
//! become current again. The current version of a lock (a lock held now) is
//! never deleted.

use super::Ctx;
use super::no_versioning;
use crate::cli::PruneLocksArgs;
use crate::error::Error;
use crate::store::s3::{ObjectVersion, Versioning};
use crate::tfstate::keys::LOCK_SUFFIX;
use serde_json::json;
use std::collections::BTreeMap;

pub async fn run(ctx: &Ctx, args: PruneLocksArgs) -> Result<(), Error> {
    let store = ctx.s3_store()?;
    if store.versioning().await? == Versioning::Off {
        return Err(Error::Config(no_versioning(store)));
    }
    let mut by_key: BTreeMap<String, Vec<ObjectVersion>> = BTreeMap::new();
    for v in store.list_versions(&args.prefix).await? {
        if v.key.ends_with(LOCK_SUFFIX) {
            by_key.entry(v.key.clone()).or_default().push(v);
        }
    }
    let mut plan: Vec<ObjectVersion> = Vec::new();
    for versions in by_key.into_values() {
        let (current, old): (Vec<_>, Vec<_>) = versions.into_iter().partition(|v| v.is_latest);
        plan.extend(old);
        // A delete marker on top, with nothing else left under it: last.
        plan.extend(current.into_iter().filter(|v| v.delete_marker));
    }
    let mut deleted = 0;
    for v in &plan {
        if !args.dry_run {
            store.delete_version(&v.key, &v.version_id).await?;
            deleted += 1;
        }
    }
    if ctx.out.json() {
        ctx.out.emit_json(&json!({
            "dry_run": args.dry_run,
            "deleted": deleted,
            "versions": plan.iter().map(|v| json!({
                "key": v.key,
                "version_id": v.version_id,
                "delete_marker": v.delete_marker,
            })).collect::<Vec<_>>(),
        }));
    } else if args.dry_run {
        for v in &plan {
            ctx.out.data(format!(
                "would delete {} version {}{}",
                crate::store::ObjectStore::location(store, &v.key),
                v.version_id,
                if v.delete_marker {
                    " (delete marker)"
                } else {
                    ""
                }
            ));
        }
        ctx.out
            .data(format!("{} lock versions would be deleted", plan.len()));
    } else {
        ctx.out.note(format!(
            "deleted {deleted} noncurrent lock versions under {}",
            crate::store::ObjectStore::location(store, &args.prefix)
        ));
    }
    Ok(())
}
