//! `tfsync history`: the bucket versions of the state, and the helpers
//! `pull --version-id` and `restore --version-id` share.

use super::{Ctx, no_versioning};
use crate::cli::HistoryArgs;
use crate::error::Error;
use crate::store::s3::Versioning;
use crate::tfstate::state::{self, StateInfo};
use serde_json::json;

pub async fn run(ctx: &Ctx, args: HistoryArgs) -> Result<(), Error> {
    let store = ctx.s3_store()?;
    let key = ctx.config.state_key();
    let versioning = store.versioning().await?;
    if versioning == Versioning::Off {
        if ctx.out.json() {
            ctx.out.emit_json(&json!({
                "location": ctx.state_location(),
                "versioning": "off",
                "versions": [],
            }));
        } else {
            ctx.out.data(no_versioning(store));
        }
        return Ok(());
    }
    let versions: Vec<_> = store
        .list_versions(&key)
        .await?
        .into_iter()
        .filter(|v| v.key == key)
        .collect();
    let mut rows = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let (serial, lineage) = if v.delete_marker || i >= args.limit {
            (None, None)
        } else {
            match state::parse(&store.get_version(&key, &v.version_id).await?.bytes) {
                Ok(StateInfo::Plain(s)) => (Some(s.serial), Some(s.lineage)),
                _ => (None, None),
            }
        };
        rows.push(json!({
            "version_id": v.version_id,
            "last_modified": v.last_modified.map(|t| t.to_rfc3339()),
            "size": if v.delete_marker { None } else { Some(v.size) },
            "serial": serial,
            "lineage": lineage,
            "is_latest": v.is_latest,
            "delete_marker": v.delete_marker,
        }));
    }
    if ctx.out.json() {
        ctx.out.emit_json(&json!({
            "location": ctx.state_location(),
            "versioning": if versioning == Versioning::Enabled { "enabled" } else { "suspended" },
            "versions": rows,
        }));
        return Ok(());
    }
    if rows.is_empty() {
        ctx.out
            .data(format!("no versions of {}", ctx.state_location()));
        return Ok(());
    }
    ctx.out.data(format!(
        "{:<34} {:<25} {:>9} {:>7}  LINEAGE",
        "VERSION ID", "TIME", "SIZE", "SERIAL"
    ));
    for r in &rows {
        let s = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut line = format!(
            "{:<34} {:<25} {:>9} {:>7}  {}",
            s(&r["version_id"]),
            s(&r["last_modified"]).replace("+00:00", "Z"),
            s(&r["size"]),
            s(&r["serial"]),
            s(&r["lineage"])
        );
        if r["delete_marker"] == true {
            line.push_str("  (delete marker)");
        }
        if r["is_latest"] == true {
            line.push_str("  (current)");
        }
        ctx.out.data(line.trim_end());
    }
    Ok(())
}
