//! `tfsync doctor`: probe what the configured bucket's provider really does
//! with conditional writes, with scratch objects under a reserved prefix,
//! and say whether locking is safe there.

use super::Ctx;
use crate::cli::DoctorArgs;
use crate::error::Error;
use crate::store::ObjectStore;
use crate::store::probe::{self, Verdict};
use serde_json::json;

pub async fn run(ctx: &Ctx, args: DoctorArgs) -> Result<(), Error> {
    let base = args.prefix.trim_end_matches('/');
    let prefix = format!("{base}/{}/", uuid::Uuid::new_v4());
    if let Some(gcs) = ctx.store.as_gcs() {
        ctx.out.note(format!(
            "probing {} with scratch objects under {prefix} (removed afterwards)",
            gcs.describe()
        ));
        let report = crate::store::probe_gcs::run(gcs, &prefix).await;
        return show(ctx, &gcs.describe(), report);
    }
    let Some(store) = ctx.store.as_s3() else {
        if ctx.store.as_local().is_some() {
            return Err(Error::Config(format!(
                "doctor probes an S3 bucket; {} is Terraform's local backend, which needs no probe: it locks with an fcntl lock on the state file, as Terraform does (README, Backends)",
                ctx.store.describe()
            )));
        }
        return Err(Error::Config(
            "doctor probes an S3 bucket; a directory store (--dir) needs no probe: it locks with link(2) and flock".into(),
        ));
    };
    ctx.out.note(format!(
        "probing {} with scratch objects under {prefix} (removed afterwards)",
        store.describe()
    ));
    let mut report = probe::run(store, &prefix).await;
    // With a DynamoDB table: its lock item, the digests, and whether the
    // bucket can do without the table.
    if let Some(table) = store.lock_table() {
        report
            .checks
            .extend(crate::tfstate::dynamo::doctor_checks(store, table, &prefix).await);
    }
    show(ctx, &store.describe(), report)
}

/// Print the report; exit 6 (`LockingUnsafe`) when a check failed.
fn show(ctx: &Ctx, describe: &str, report: probe::Report) -> Result<(), Error> {
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
                "verdict: locking is SAFE on {} (versioning {})",
                describe, report.versioning
            ));
        } else {
            lines.push(format!(
                "verdict: locking is UNSAFE on {}: {} check(s) failed",
                describe,
                reasons.len()
            ));
        }
        ctx.out.data(lines.join("\n"));
    }
    if safe {
        Ok(())
    } else {
        Err(Error::LockingUnsafe {
            bucket: describe.to_string(),
            reasons,
        })
    }
}
