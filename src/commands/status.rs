//! `tfsync status`: who holds the lock, and what the state says. Two
//! requests: GET the lock, GET the state.

use super::Ctx;
use crate::duration::short_duration;
use crate::error::Error;
use crate::output::escape_for_terminal as esc;
use crate::store::StoreError;
use crate::tfstate::lock::{self as tflock, Current, go_rfc3339_nano};
use crate::tfstate::state::{self, StateInfo};
use serde_json::{Value, json};

pub async fn run(ctx: &Ctx) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let store = ctx.store.as_ref();
    let (lock, state) = tokio::join!(tflock::read(store, &key), store.get(&key));
    let lock = lock?;
    let state = match state {
        Ok(g) => Some(g),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
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
        ctx.out.emit_json(&json!({
            "location": ctx.state_location(),
            "bucket": store.bucket(),
            "key": key,
            "workspace": ctx.config.workspace,
            "lock": lock_json,
            "state": state_json,
        }));
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
