//! `tfsync digest [--fix] [--all]`: the digests Terraform keeps in its
//! DynamoDB table (`<bucket>/<state key>-md5`) against the states' MD5s,
//! and with `--fix` the repair Terraform's error message asks for by hand:
//! the digest of the state as it is, stored under the state's lock.
//! Requests: one GetItem and one GET per state (with `--all`: one Scan and
//! one LIST, then one GET per state that has a digest).

use super::Ctx;
use super::table;
use crate::cli::DigestArgs;
use crate::error::Error;
use crate::store::ObjectStore;
use crate::store::dynamo::LockTable;
use crate::tfstate::dynamo::{self, DigestCheck, Stored};
use crate::tfstate::keys::LOCK_SUFFIX;
use crate::tfstate::read;
use serde_json::json;
use std::collections::BTreeMap;

/// The operation of the lock `--fix` takes.
const FIX_OPERATION: &str = "tfsync-digest-fix";

/// One state and its digest.
struct Row {
    state_key: String,
    check: DigestCheck,
    /// The object was read (without a digest, `--all` does not read it).
    compared: bool,
    fixed: bool,
}

impl Row {
    /// Would Terraform refuse to read the state (or warn about the digest)?
    fn stale(&self) -> bool {
        self.check.matches() == Some(false) || matches!(self.check.stored, Stored::Invalid(_))
    }
}

pub async fn run(ctx: &Ctx, args: DigestArgs) -> Result<(), Error> {
    let store = ctx.store.as_ref();
    let Some(table) = store.lock_table() else {
        return Err(Error::Config(
            "digest compares states with the digests Terraform keeps in its DynamoDB table: set --dynamodb-table (or TFSYNC_DYNAMODB_TABLE, or dynamodb_table in the backend block)".into(),
        ));
    };
    let mut rows = if args.all {
        every_state(store, table, args.prefix.as_deref().unwrap_or("")).await?
    } else {
        let key = ctx.config.state_key();
        vec![compare(store, table, &key, None).await?]
    };
    if !args.all
        && let [row] = rows.as_slice()
        && row.check.actual.is_none()
        && row.check.stored == Stored::Missing
    {
        return Err(Error::StateNotFound {
            location: ctx.state_location(),
        });
    }
    if args.fix {
        for row in rows.iter_mut().filter(|r| r.stale()) {
            *row = fix(ctx, table, &row.state_key, &args).await?;
        }
    }

    if ctx.out.json() {
        ctx.out.emit_json(&json!({
            "bucket": store.bucket(),
            "table": table.name(),
            "states": rows.iter().map(|r| row_json(store, table, r)).collect::<Vec<_>>(),
        }));
    } else if args.all {
        if rows.is_empty() {
            ctx.out.note(format!(
                "no states and no digests under {}",
                store.describe()
            ));
        } else {
            ctx.out.data(render(&rows));
        }
    } else {
        for r in &rows {
            ctx.out
                .data(format!("{}: {}", store.location(&r.state_key), line(r)));
        }
    }
    let stale: Vec<&Row> = rows.iter().filter(|r| r.stale() && !r.fixed).collect();
    match stale.as_slice() {
        [] => Ok(()),
        [one] => Err(Error::StateConflict {
            location: store.location(&one.state_key),
            reason: format!(
                "its digest in {} is stale: Terraform refuses to read it. Check the state, then run `tfsync digest --fix`",
                table.location(&dynamo::digest_id(store.bucket(), &one.state_key))
            ),
        }),
        many => Err(Error::StateConflict {
            location: store.describe(),
            reason: format!(
                "{} stale digest(s) in {} ({}): Terraform refuses to read those states. Check them, then run `tfsync digest --all --fix`",
                many.len(),
                table.describe(),
                many.iter()
                    .map(|r| r.state_key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// The digest of `key` against its object (read and checked), or against
/// `stored` when the caller already has it.
async fn compare(
    store: &dyn ObjectStore,
    table: &LockTable,
    key: &str,
    stored: Option<Stored>,
) -> Result<Row, Error> {
    let stored = match stored {
        Some(s) => s,
        None => dynamo::read_digest(table, store.bucket(), key).await?,
    };
    let actual = read::get_opt(store, key).await?.map(|v| v.md5());
    Ok(Row {
        state_key: key.to_string(),
        check: DigestCheck { stored, actual },
        compared: true,
        fixed: false,
    })
}

/// Every object under `prefix` that may be a state (not a `.tflock`, not
/// the doctor's scratch objects) and every digest there; the objects that
/// have a digest are read.
async fn every_state(
    store: &dyn ObjectStore,
    table: &LockTable,
    prefix: &str,
) -> Result<Vec<Row>, Error> {
    let mut digests = dynamo::scan(table, store.bucket(), prefix).await?.digests;
    let mut keys: BTreeMap<String, ()> = BTreeMap::new();
    for meta in store.list(prefix).await? {
        if !meta.key.ends_with(LOCK_SUFFIX) && !meta.key.starts_with(".tfsync-doctor/") {
            keys.insert(meta.key, ());
        }
    }
    for k in digests.keys() {
        keys.insert(k.clone(), ());
    }
    let mut rows = Vec::new();
    for key in keys.into_keys() {
        rows.push(match digests.remove(&key) {
            Some(stored) => compare(store, table, &key, Some(stored)).await?,
            None => Row {
                state_key: key,
                check: DigestCheck {
                    stored: Stored::Missing,
                    actual: None,
                },
                compared: false,
                fixed: false,
            },
        });
    }
    Ok(rows)
}

/// Under the state's lock: read the state again and store its MD5 as the
/// digest (or remove a digest whose state is gone).
async fn fix(ctx: &Ctx, table: &LockTable, key: &str, args: &DigestArgs) -> Result<Row, Error> {
    let store = ctx.store.as_ref();
    let bucket = store.bucket();
    let body = async {
        let actual = read::get_opt(store, key).await?.map(|v| v.md5());
        match &actual {
            Some(md5) => dynamo::write_digest(table, bucket, key, md5).await?,
            None => dynamo::delete_digest(table, bucket, key).await?,
        }
        Ok(actual)
    };
    let actual = ctx
        .under_lock(key, FIX_OPERATION, args.lock_timeout, body)
        .await?;
    let stored = match &actual {
        Some(md5) => Stored::Md5(md5.clone()),
        None => Stored::Missing,
    };
    Ok(Row {
        state_key: key.to_string(),
        check: DigestCheck { stored, actual },
        compared: true,
        fixed: true,
    })
}

fn row_json(store: &dyn ObjectStore, table: &LockTable, r: &Row) -> serde_json::Value {
    let mut v = r.check.json();
    v["state_key"] = json!(r.state_key);
    v["location"] = json!(store.location(&r.state_key));
    v["digest_item"] = json!(table.location(&dynamo::digest_id(store.bucket(), &r.state_key)));
    v["compared"] = json!(r.compared);
    v["fixed"] = json!(r.fixed);
    v
}

fn status(r: &Row) -> &'static str {
    match (&r.check.stored, r.check.matches(), r.fixed) {
        (_, _, true) => "FIXED",
        (Stored::Missing, _, _) if r.check.actual.is_none() && !r.compared => "no digest",
        (Stored::Missing, _, _) if r.check.actual.is_none() => "no state, no digest",
        (Stored::Missing, _, _) => "no digest",
        (Stored::Invalid(_), _, _) => "INVALID",
        (_, Some(true), _) => "ok",
        (_, _, _) if r.check.actual.is_none() => "STALE (no state)",
        _ => "STALE",
    }
}

fn line(r: &Row) -> String {
    let actual = r.check.actual.as_deref().unwrap_or("none (no state)");
    match (&r.check.stored, r.fixed) {
        (Stored::Md5(s), true) => format!("digest fixed: {s} stored"),
        (Stored::Missing, true) => "digest removed (there is no state)".into(),
        (Stored::Missing, _) => {
            format!("no digest stored (Terraform warns and reads on); state MD5 {actual}")
        }
        (Stored::Invalid(s), _) => format!(
            "the digest {s:?} is not an MD5 (Terraform warns and reads on); state MD5 {actual}"
        ),
        (Stored::Md5(s), _) if r.check.matches() == Some(true) => {
            format!("digest {s} matches the state")
        }
        (Stored::Md5(s), _) => {
            format!("STALE: digest {s}, state MD5 {actual}: Terraform refuses to read this state")
        }
    }
}

fn render(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                status(r).to_string(),
                r.check.stored.text().unwrap_or("-").to_string(),
                r.check.actual.clone().unwrap_or_else(|| "-".into()),
                r.state_key.clone(),
            ]
        })
        .collect();
    table::render(&["STATUS", "STORED", "STATE MD5", "STATE KEY"], &cells)
}
