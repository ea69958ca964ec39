//! `tfsync locks`: every lock object under a prefix of the bucket, with its
//! holder and age. One LIST (all pages), then one GET per lock.

use super::Ctx;
use super::table::{self, current_json};
use crate::cli::LocksArgs;
use crate::error::Error;
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
    v["lock"] = if l.has_tflock {
        current_json(&l.current)
    } else {
        serde_json::Value::Null
    };
    // With a lock table: the state's DynamoDB lock item, and how it and the
    // .tflock agree.
    if let (Some(item), Some(table)) = (&l.item, ctx.store.lock_table()) {
        let id = crate::tfstate::dynamo::lock_id(ctx.store.bucket(), &l.state_key);
        v["dynamodb"] = json!({
            "lock_id": id,
            "location": table.location(&id),
            "lock": current_json(item),
        });
        v["pair"] = json!(l.pair().map(|p| p.as_str()));
    }
    v
}

/// A table of found locks, oldest first as listed; with a lock table, a
/// last column says which records hold each lock.
pub fn render(found: &[FoundLock]) -> String {
    let pairs = found.iter().any(|l| l.item.is_some());
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| {
            let mut row = row(l);
            if pairs {
                row.push(l.pair().map_or("-", |p| p.cell()).to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["AGE", "WHO", "OPERATION", "CREATED", "STATE KEY", "ID"];
    if pairs {
        header.push("HELD IN");
    }
    table::render(&header, &rows)
}

fn row(l: &FoundLock) -> Vec<String> {
    match &l.current {
        Current::Locked { info, .. } => vec![
            table::age_cell(info),
            info.who.clone(),
            info.operation.clone(),
            go_rfc3339_nano(&info.created),
            l.state_key.clone(),
            info.id.clone(),
        ],
        Current::Unreadable { reason, .. } => vec![
            "?".into(),
            "?".into(),
            format!("UNREADABLE: {reason}"),
            "-".into(),
            l.state_key.clone(),
            "-".into(),
        ],
        Current::Unlocked => vec![],
    }
}
