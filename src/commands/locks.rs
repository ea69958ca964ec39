//! `tfsync locks`: every lock object under a prefix of the bucket, with its
//! holder and age. One LIST (all pages), then one GET per lock.

use super::Ctx;
use super::table;
use crate::cli::LocksArgs;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::tfstate::lock::Current;
use crate::tfstate::scan::{self, FoundLock};
use serde_json::json;

pub async fn run(ctx: &Ctx, args: LocksArgs) -> Result<(), Error> {
    let mut found = scan::locks(ctx.store.as_ref(), &args.prefix).await?;
    if let Some(bound) = args.older_than {
        // Unreadable locks have no age: they are shown only without a bound.
        found.retain(|l| l.age().is_some_and(|a| a >= bound));
    }
    if ctx.out.prometheus() {
        ctx.out.raw(&prometheus(ctx, &args, &found)?);
        return Ok(());
    }
    if ctx.out.json() {
        ctx.out.emit_json(&json!({
            "bucket": ctx.store.bucket(),
            "prefix": args.prefix,
            "older_than_seconds": args.older_than.map(|d| d.as_secs()),
            "locks": found.iter().map(|l| table::lock_entry_json(ctx, l)).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let where_ = if args.prefix.is_empty() {
        ctx.store.describe()
    } else {
        ctx.store.location(&args.prefix)
    };
    let bound = args
        .older_than
        .map(|d| format!(" older than {}", crate::duration::short_duration(d)))
        .unwrap_or_default();
    if found.is_empty() {
        ctx.out.note(format!("no locks{bound} under {where_}"));
        return Ok(());
    }
    ctx.out.data(table::locks_table(&found));
    ctx.out
        .note(format!("{} lock(s){bound} under {where_}", found.len()));
    Ok(())
}

/// `--output prometheus`: one `tfsync_lock_age_seconds` sample per lock
/// record (the `.tflock` in the bucket, `lock_store="s3"` (`"dir"` for a
/// directory store, `"local"` for a local backend's OS lock,
/// `"azure_lease"` for an azurerm blob lease, `"gcs"` for a gcs
/// `.tflock`), and the DynamoDB item,
/// `lock_store="dynamodb"`), the
/// number of locks found and of unreadable ones.
fn prometheus(ctx: &Ctx, args: &LocksArgs, found: &[FoundLock]) -> Result<String, Error> {
    let m = Metrics::new();
    let age = m.gauge(
        "tfsync_lock_age_seconds",
        "Age of a held Terraform state lock (now minus its Created time), per lock record.",
        &[
            "bucket",
            "state_key",
            "id",
            "who",
            "operation",
            "lock_store",
        ],
    )?;
    let count = m.gauge(
        "tfsync_locks",
        "Locks found under the prefix (after --older-than).",
        &["bucket", "prefix"],
    )?;
    let unreadable = m.gauge(
        "tfsync_locks_unreadable",
        "Lock records found that are not a valid lock (no age).",
        &["bucket", "prefix"],
    )?;
    let bucket = ctx.store.bucket();
    let object_store = if ctx.store.as_s3().is_some() {
        "s3"
    } else if ctx.store.as_azure().is_some() {
        "azure_lease"
    } else if ctx.store.as_local().is_some() {
        "local"
    } else if ctx.store.as_gcs().is_some() {
        "gcs"
    } else {
        "dir"
    };
    let mut bad = 0;
    for l in found {
        let records = [
            (l.has_tflock.then_some(&l.current), object_store),
            (l.item.as_ref(), "dynamodb"),
        ];
        for (record, store) in records {
            match record {
                Some(Current::Locked { info, .. }) => Metrics::set(
                    &age,
                    &[
                        bucket,
                        &l.state_key,
                        &info.id,
                        &info.who,
                        &info.operation,
                        store,
                    ],
                    (info.age().as_secs_f64() * 1000.0).round() / 1000.0,
                )?,
                Some(Current::Unreadable { .. }) => bad += 1,
                Some(Current::Unlocked) | None => {}
            }
        }
    }
    Metrics::set(&count, &[bucket, &args.prefix], found.len() as f64)?;
    Metrics::set(&unreadable, &[bucket, &args.prefix], f64::from(bad))?;
    m.render()
}
