//! `tfsync force-unlock`: show who holds the lock, confirm, release it.
//! As in Terraform, the lock ID must be given and must match. With
//! `--older-than`, only a lock at least that old is broken; with `--all`,
//! every such lock under a prefix. Either way the lock is read again right
//! before each delete, and left alone if its ID changed or it is too young.

use super::{Ctx, interactive};
use crate::cli::ForceUnlockArgs;
use crate::duration::short_duration;
use crate::error::Error;
use crate::output::escape_for_terminal as esc;
use crate::tfstate::guard::LockSet;
use crate::tfstate::lock::{Current, Holder, LockError};
use crate::tfstate::scan;
use serde_json::json;
use std::io::{BufRead, Write};

pub async fn run(ctx: &Ctx, args: ForceUnlockArgs) -> Result<(), Error> {
    if args.all {
        return run_all(ctx, &args).await;
    }
    let Some(lock_id) = args.lock_id.clone() else {
        return Err(Error::Config(
            "force-unlock needs a LOCK_ID, or --all --older-than DURATION".into(),
        ));
    };
    let key = ctx.config.state_key();
    let locks = ctx.lock_set();
    let mut lock = locks.lock_location();
    if let Some(table) = ctx.store.lock_table() {
        let item = crate::tfstate::dynamo::lock_id(ctx.store.bucket(), &key);
        lock = format!("{lock} and {}", table.location(&item));
    }
    // Either record may be absent (a teammate without use_lockfile holds
    // only the DynamoDB item); none may hold another lock.
    let held = locks.inspect(&lock_id, args.older_than).await?;
    if !ctx.out.json() || !args.yes {
        eprintln!("Lock on {lock}:\n{}", Holder::Lock(Box::new(held.clone())));
    }
    if !args.yes {
        confirm(&format!("refusing to force-unlock {lock}"))?;
    }
    let info = locks.release(&lock_id, args.older_than).await?;
    super::report_released(ctx, &info);
    Ok(())
}

/// Ask for `yes` on the terminal; without one, refuse (the caller passes `--yes`).
fn confirm(refusing: &str) -> Result<(), Error> {
    if !interactive() {
        return Err(Error::NotConfirmed(format!(
            "{refusing} without confirmation: no terminal to ask on. Pass --yes to confirm"
        )));
    }
    eprint!(
        "\nDo you really want to force-unlock?\n  Whoever holds this lock may still be writing the state.\n  Only 'yes' will be accepted to confirm.\n\n  Enter a value: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("standard input", e))?;
    if answer.trim() != "yes" {
        return Err(Error::NotConfirmed(
            "force-unlock cancelled: the lock was left in place".into(),
        ));
    }
    Ok(())
}

/// `--all --older-than D [--prefix P]`.
async fn run_all(ctx: &Ctx, args: &ForceUnlockArgs) -> Result<(), Error> {
    let Some(bound) = args.older_than else {
        return Err(Error::Config("--all needs --older-than DURATION".into()));
    };
    let prefix = args.prefix.clone().unwrap_or_default();
    let store = ctx.store.as_ref();
    let where_ = if prefix.is_empty() {
        store.describe()
    } else {
        store.location(&prefix)
    };
    let mut found = scan::locks(store, &prefix).await?;
    found.retain(|l| l.age().is_some_and(|a| a >= bound));
    let bound_text = short_duration(bound);
    if found.is_empty() {
        if ctx.out.json() {
            ctx.out
                .emit_json(&json!({ "released": [], "already_released": [], "left": [] }));
        }
        ctx.out.note(format!(
            "no locks older than {bound_text} under {where_}: nothing to do"
        ));
        return Ok(());
    }
    if !ctx.out.json() || !args.yes {
        eprintln!(
            "{} lock(s) older than {bound_text} under {where_}:\n{}",
            found.len(),
            super::table::locks_table(&found)
        );
    }
    if !args.yes {
        confirm(&format!("refusing to force-unlock {} lock(s)", found.len()))?;
    }

    let mut released = Vec::new();
    let mut already = Vec::new();
    let mut left = Vec::new();
    let mut first_error = None;
    for l in &found {
        let Current::Locked { info, .. } = &l.current else {
            continue;
        };
        // Read again and compare ID and age right before the delete.
        match LockSet::new(store, &l.state_key)
            .release(&info.id, Some(bound))
            .await
        {
            Ok(gone) => {
                ctx.out.note(format!(
                    "released lock {} on {} (held by {}, {}, {} old)",
                    esc(&gone.id),
                    esc(&store.location(&l.state_key)),
                    esc(&gone.who),
                    esc(&gone.operation),
                    short_duration(gone.age())
                ));
                let mut v = super::table::lock_entry_json(ctx, l);
                v["lock"] = super::table::lock_fields(&gone);
                released.push(v);
            }
            // Released by its holder meanwhile (before the re-read, or
            // between it and the delete): nothing left to break.
            Err(LockError::NotLocked { .. }) => {
                ctx.out.note(format!(
                    "lock {} on {} was already released (by its holder, not by this command)",
                    esc(&info.id),
                    esc(&store.location(&l.state_key))
                ));
                already.push(json!({
                    "lock_key": l.lock_key,
                    "state_key": l.state_key,
                    "id": info.id,
                }));
            }
            Err(e) => {
                ctx.out.warn(format!("left in place: {e}"));
                left.push(json!({
                    "lock_key": l.lock_key,
                    "state_key": l.state_key,
                    "id": info.id,
                    "reason": e.to_string(),
                }));
                first_error.get_or_insert(Error::from(e));
            }
        }
    }
    if ctx.out.json() {
        ctx.out
            .emit_json(&json!({ "released": released, "already_released": already, "left": left }));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
