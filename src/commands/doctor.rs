//! `tfsync doctor`: probe what the configured bucket's provider really does
//! with conditional writes, with scratch objects under a reserved prefix,
//! and say whether locking is safe there.

use super::Ctx;
use crate::cli::DoctorArgs;
use crate::error::Error;
use crate::store::ObjectStore;
use crate::store::azure_probe;
use crate::store::probe::{self, Verdict};
use serde_json::json;

pub async fn run(ctx: &Ctx, args: DoctorArgs) -> Result<(), Error> {
    let base = args.prefix.trim_end_matches('/');
    let prefix = format!("{base}/{}/", uuid::Uuid::new_v4());
    let note = |what: String| {
        ctx.out.note(format!(
            "probing {what} with scratch objects under {prefix} (removed afterwards)"
        ))
    };
    let (report, versioning) = if let Some(store) = ctx.store.as_s3() {
        note(store.describe());
        let mut report = probe::run(store, &prefix).await;
        // With a DynamoDB table: its lock item, the digests, and whether the
        // bucket can do without the table.
        if let Some(table) = store.lock_table() {
            report
                .checks
                .extend(crate::tfstate::dynamo::doctor_checks(store, table, &prefix).await);
        }
        let v = format!(" (versioning {})", report.versioning);
        (report, v)
    } else if let Some(store) = ctx.store.as_gcs() {
        // Terraform's gcs lock is a create-only object (ifGenerationMatch=0).
        note(store.describe());
        (
            crate::store::probe_gcs::run(store, &prefix).await,
            String::new(),
        )
    } else if let Some(store) = ctx.store.as_azure() {
        // Terraform's azurerm lock is a lease on the state blob.
        note(store.describe());
        (azure_probe::run(store, &prefix).await, String::new())
    } else if let Some(store) = ctx.store.as_local() {
        // Terraform's local lock is the OS's: does this file system keep it?
        ctx.out.note(format!(
            "probing the locks of {} with a scratch file (removed afterwards)",
            store.describe()
        ));
        (crate::tfstate::local_probe::run(store).await, String::new())
    } else {
        return Err(Error::Config(
            "doctor probes a backend (s3, gcs, azurerm, local); a directory store (--dir) needs no probe: it locks with link(2) and flock".into(),
        ));
    };
    let store = ctx.store.as_ref();
    let safe = report.safe();
    let reasons = report.reasons();
    if ctx.out.json() {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        v["safe"] = json!(safe);
        v["reasons"] = json!(reasons);
        ctx.out.emit_json(&v);
    } else {
        let mut lines = Vec::new();
        for c in &report.checks {
            let tag = match c.verdict {
                Verdict::Pass => "PASS",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "SKIP",
            };
            lines.push(format!("  {tag}  {}: {}", c.title, c.detail));
            if let Some(f) = &c.fix {
                lines.push(format!("        -> {f}"));
            }
        }
        lines.push(String::new());
        if safe {
            lines.push(format!(
                "verdict: locking is SAFE on {}{versioning}",
                store.describe(),
            ));
        } else {
            lines.push(format!(
                "verdict: locking is UNSAFE on {}: {} check(s) failed",
                store.describe(),
                reasons.len()
            ));
        }
        ctx.out.data(lines.join("\n"));
    }
    if safe {
        Ok(())
    } else {
        Err(Error::LockingUnsafe {
            bucket: store.describe(),
            reasons,
        })
    }
}
