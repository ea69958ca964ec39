//! `tfsync locks`: every lock object under a prefix of the bucket, with its
//! holder and age. One LIST (all pages), then one GET per lock.

use super::Ctx;
use super::table;
use crate::cli::LocksArgs;
use crate::error::Error;
use crate::tfstate::scan;
use serde_json::json;

pub async fn run(ctx: &Ctx, args: LocksArgs) -> Result<(), Error> {
    let mut found = scan::locks(ctx.store.as_ref(), &args.prefix).await?;
    if let Some(bound) = args.older_than {
        // Unreadable locks have no age: they are shown only without a bound.
        found.retain(|l| l.age().is_some_and(|a| a >= bound));
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
