//! `tfsync config`: the resolved configuration, each value with its source.
//! Makes no request. The rows are `Config::sources`, the record the
//! precedence table (`config/table.rs`) keeps of every setting it resolved,
//! so no setting can be missing here. Secrets (an SSE-C key, OSS
//! credentials) show only that they are set.

use super::Ctx;
use crate::error::Error;
use serde_json::json;

pub async fn run(ctx: &Ctx) -> Result<(), Error> {
    let cfg = &ctx.config;
    if ctx.out.json() {
        ctx.out.emit_json(&json!({
            "settings": cfg.sources,
            "state": if cfg.key.is_empty() { None } else { Some(ctx.state_location()) },
            "warnings": cfg.warnings,
        }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cfg
        .sources
        .iter()
        .map(|r| vec![r.name.to_string(), r.value.clone(), r.source.to_string()])
        .collect();
    ctx.out
        .data(super::table::render(&["SETTING", "VALUE", "SOURCE"], &rows));
    if !cfg.key.is_empty() {
        ctx.out.data(format!("\nstate: {}", ctx.state_location()));
    }
    if matches!(cfg.target, crate::config::Target::S3(_)) {
        ctx.out.data(
            "credentials: from the environment or the profile (never shown); see README, Configuration",
        );
    }
    Ok(())
}
