//! `tfsync status`: who holds the lock, and what the state says. Two
//! requests: GET the lock, GET the state; with a DynamoDB lock table, two
//! more: GetItem the lock item and the state's digest item.

use super::Ctx;
use crate::duration::short_duration;
use crate::error::Error;
use crate::output::escape_for_terminal as esc;
use crate::store::StoreError;
use crate::store::md5_hex;
use crate::tfstate::dynamo::{self, DigestCheck, Stored};
use crate::tfstate::lock::{Current, go_rfc3339_nano};
use crate::tfstate::state::{self, StateInfo};
use serde_json::{Value, json};

pub async fn run(ctx: &Ctx) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let store = ctx.store.as_ref();
    let locks = ctx.lock_set();
    let (records, state) = tokio::join!(locks.records(), store.get(&key));
    let mut records = records?;
    let state = match state {
        Ok(g) => Some(g),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // The holder, found in either record (the .tflock first).
    let item = (records.len() > 1).then(|| records.remove(1).1);
    let tflock = records.remove(0).1;
    let (lock, held_in_item) = match (&tflock, &item) {
        (Current::Unlocked, Some(i)) if !matches!(i, Current::Unlocked) => (i.clone(), true),
        _ => (tflock, false),
    };
    let dynamodb = match (store.lock_table(), item) {
        (Some(table), Some(item)) => {
            let actual = state.as_ref().map(|g| md5_hex(&g.bytes));
            let stored = dynamo::read_digest(table, store.bucket(), &key).await?;
            Some((table, item, dynamo::DigestCheck { stored, actual }))
        }
        _ => None,
    };

    let lock_json = match &lock {
        Current::Unlocked => Value::Null,
        Current::Locked { info, .. } => {
            let mut v = serde_json::to_value(info).unwrap_or_default();
            v["age_seconds"] = json!(info.age().as_secs());
            v
        }
        Current::Unreadable { reason, .. } => json!({ "unreadable": reason }),
    };
    let state_json = state.as_ref().map(|g| {
        let mut v = json!({
            "size": g.bytes.len(),
            "etag": g.meta.etag,
            "last_modified": g.meta.last_modified.map(|t| t.to_rfc3339()),
        });
        match state::parse(&g.bytes) {
            Ok(StateInfo::Plain(s)) => {
                v["format_version"] = json!(s.version);
                v["terraform_version"] = json!(s.terraform_version);
                v["serial"] = json!(s.serial);
                v["lineage"] = json!(s.lineage);
                v["resources"] = json!(s.resources);
                v["outputs"] = json!(s.outputs);
                v["encrypted"] = json!(false);
            }
            Ok(StateInfo::Encrypted { encryption_version }) => {
                v["encrypted"] = json!(true);
                v["encryption_version"] = json!(encryption_version);
            }
            Err(reason) => v["invalid"] = json!(reason),
        }
        v
    });

    if ctx.out.json() {
        let mut doc = json!({
            "location": ctx.state_location(),
            "bucket": store.bucket(),
            "key": key,
            "workspace": ctx.config.workspace,
            "lock": lock_json,
            "state": state_json,
        });
        // Only with a DynamoDB table.
        if let Some((table, item, digest)) = &dynamodb {
            doc["dynamodb"] = json!({
                "table": table.name(),
                "lock": super::table::current_json(item),
                "digest": digest.json(),
            });
        }
        ctx.out.emit_json(&doc);
    } else {
        let mut lines = vec![format!(
            "State:     {} (workspace {})",
            ctx.state_location(),
            ctx.config.workspace
        )];
        lines.push(match &lock {
            Current::Unlocked => "Lock:      unlocked".into(),
            Current::Locked { info, .. } => format!(
                "Lock:      LOCKED by {} for {} since {} ({} ago)\n           ID {}{}",
                esc(&info.who),
                esc(&info.operation),
                go_rfc3339_nano(&info.created),
                short_duration(info.age()),
                esc(&info.id),
                if info.info.is_empty() {
                    String::new()
                } else {
                    format!("\n           Info: {}", esc(&info.info))
                }
            ),
            Current::Unreadable { reason, .. } => {
                format!("Lock:      PRESENT BUT UNREADABLE ({})", esc(reason))
            }
        });
        if held_in_item {
            lines.push(
                "           held by the DynamoDB lock item only (no .tflock: a writer without use_lockfile)".into(),
            );
        }
        if let Some((table, item, digest)) = &dynamodb {
            lines.push(format!(
                "DynamoDB:  table {}, lock item {}",
                table.name(),
                match item {
                    Current::Unlocked => "none".to_string(),
                    Current::Locked { info, .. } => format!("held, ID {}", info.id),
                    Current::Unreadable { reason, .. } => format!("UNREADABLE ({reason})"),
                }
            ));
            lines.push(format!("Digest:    {}", digest_line(digest)));
        }
        if let Some(v) = &state_json {
            let field = |k: &str| match &v[k] {
                Value::Null => "-".to_string(),
                Value::String(s) => esc(s).into_owned(),
                other => other.to_string(),
            };
            lines.push(format!("Size:      {} bytes", field("size")));
            lines.push(format!("ETag:      {}", field("etag")));
            lines.push(format!("Modified:  {}", field("last_modified")));
            if v["encrypted"] == json!(true) {
                lines.push(format!(
                    "Format:    encrypted (OpenTofu, {})",
                    field("encryption_version")
                ));
            } else if let Value::String(reason) = &v["invalid"] {
                lines.push(format!("Format:    NOT A VALID STATE ({})", esc(reason)));
            } else {
                lines.push(format!(
                    "Format:    version {}, written by Terraform {}",
                    field("format_version"),
                    field("terraform_version")
                ));
                lines.push(format!("Serial:    {}", field("serial")));
                lines.push(format!("Lineage:   {}", field("lineage")));
                lines.push(format!("Resources: {}", field("resources")));
                lines.push(format!("Outputs:   {}", field("outputs")));
            }
        } else {
            lines.push("State:     none (no object at this key)".into());
        }
        ctx.out.data(lines.join("\n"));
    }
    match state {
        Some(_) => Ok(()),
        None => Err(Error::StateNotFound {
            location: ctx.state_location(),
        }),
    }
}

/// The digest line of the text output.
fn digest_line(d: &DigestCheck) -> String {
    let actual = d.actual.as_deref().unwrap_or("none (no state)");
    match (&d.stored, d.matches()) {
        (Stored::Missing, _) => {
            format!("none stored (Terraform warns and reads on); state MD5 {actual}")
        }
        (Stored::Invalid(s), _) => {
            format!("stored {s:?} is not an MD5 (Terraform warns and reads on); state MD5 {actual}")
        }
        (Stored::Md5(s), Some(true)) => format!("{s} (matches the state)"),
        (Stored::Md5(s), _) => format!(
            "MISMATCH: stored {s}, state MD5 {actual}: Terraform refuses to read this state; check it, then run `tfsync digest --fix`"
        ),
    }
}
