//! `tfsync locks`: every lock object under a prefix of the bucket, with its
//! holder and age. One LIST (all pages), then one GET per lock.

use super::Ctx;
use super::table::{self, current_json};
use crate::cli::LocksArgs;
use crate::error::Error;
use crate::output::escape_for_terminal as esc;
use crate::tfstate::lock::{Current, go_rfc3339_nano};
use crate::tfstate::scan::{self, FoundLock};
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
            "locks": found.iter().map(|l| entry_json(ctx, l)).collect::<Vec<_>>(),
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
    ctx.out.data(render(&found));
    ctx.out
        .note(format!("{} lock(s){bound} under {where_}", found.len()));
    Ok(())
}

/// The JSON of one found lock: where it is, and what it says.
pub fn entry_json(ctx: &Ctx, l: &FoundLock) -> serde_json::Value {
    let mut v = json!({
        "lock_key": l.lock_key,
        "state_key": l.state_key,
        "location": ctx.store.location(&l.lock_key),
        "last_modified": l.meta.last_modified.map(|t| t.to_rfc3339()),
    });
    v["lock"] = current_json(&l.current);
    v
}

/// A table of found locks, oldest first as listed.
pub fn render(found: &[FoundLock]) -> String {
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| match &l.current {
            Current::Locked { info, .. } => vec![
                table::age_cell(info),
                esc(&info.who).into_owned(),
                esc(&info.operation).into_owned(),
                go_rfc3339_nano(&info.created),
                esc(&l.state_key).into_owned(),
                esc(&info.id).into_owned(),
            ],
            Current::Unreadable { reason, .. } => vec![
                "?".into(),
                "?".into(),
                format!("UNREADABLE: {}", esc(reason)),
                "-".into(),
                esc(&l.state_key).into_owned(),
                "-".into(),
            ],
            Current::Unlocked => vec![],
        })
        .collect();
    table::render(
        &["AGE", "WHO", "OPERATION", "CREATED", "STATE KEY", "ID"],
        &rows,
    )
}
