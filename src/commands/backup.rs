//! `tfsync backup` and `tfsync backup verify`: arguments -> the engines of
//! `backup` -> the report. A backup never takes or touches a lock.

use super::{Ctx, open_backup, open_destination};
use crate::backup::{Progress, copy, verify};
use crate::cli::{BackupArgs, VerifyArgs};
use crate::config::Config;
use crate::error::Error;
use crate::output::Printer;
use std::time::Instant;

/// A progress bar on a terminal only (never in cron, JSON or quiet mode).
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(out: &Printer, what: &str) -> Bar {
        use std::io::IsTerminal;
        if out.json() || out.quiet || !std::io::stderr().is_terminal() {
            return Bar(indicatif::ProgressBar::hidden());
        }
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} states, {binary_bytes} ({elapsed})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Bar(bar)
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self) {
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Seconds since `started`, to the millisecond.
fn seconds_since(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

pub async fn run(ctx: &Ctx, args: BackupArgs) -> Result<(), Error> {
    let started = Instant::now();
    let to = args.to.as_deref().unwrap_or_default();
    let dest = open_destination(&ctx.config, to, &args.side, true).await?;
    let pattern = match &args.pattern {
        Some(p) => Some(
            glob::Pattern::new(p)
                .map_err(|e| Error::Config(format!("--match {p:?} is not a glob: {e}")))?,
        ),
        None => None,
    };
    let destination = copy::Destination {
        store: dest.store.as_ref(),
        root: &dest.prefix,
        display: &dest.display,
        same_server: dest.same_server,
    };
    let opts = copy::Options {
        prefix: &args.prefix,
        pattern: pattern.as_ref(),
        gzip: args.gzip,
        concurrency: args.concurrency as usize,
        keep: args.keep.map(|k| k as usize),
    };
    let mut summary = copy::backup(
        ctx.store.as_ref(),
        &destination,
        &opts,
        &Bar::new(&ctx.out, "backup"),
    )
    .await?;
    summary.seconds = seconds_since(started);
    if !summary.future.is_empty() {
        ctx.out.warn(format!(
            "{} has snapshot(s) whose ID sorts after this run's clock ({}): {}. --keep counts them as the newest (this run's snapshot {} is always kept); check the clocks of the machines that write there",
            summary.destination,
            crate::backup::snapshot::new_id(chrono::Utc::now()),
            summary.future.join(", "),
            summary.snapshot
        ));
    }
    report(&ctx.out, &summary);
    match summary.incomplete() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn report(out: &Printer, s: &copy::Summary) {
    if out.json() {
        out.emit_json(&serde_json::to_value(s).unwrap_or_default());
        return;
    }
    if out.quiet && s.failures.is_empty() {
        return;
    }
    let pruned = if s.pruned.is_empty() {
        String::new()
    } else {
        format!(", pruned {} old snapshot(s)", s.pruned.len())
    };
    out.data(format!(
        "backup {} -> {}/{}: {} seen, {} copied, {} skipped, {} failed, {} bytes, {:.2} s{pruned}",
        s.source,
        s.destination,
        s.snapshot,
        s.seen,
        s.copied,
        s.skipped,
        s.failed,
        s.bytes,
        s.seconds
    ));
}

/// `tfsync backup verify`: every object of the chosen snapshots, read once
/// each, checked for size and MD5 against its manifest entry.
pub async fn verify(config: &Config, out: Printer, args: &VerifyArgs) -> Result<(), Error> {
    let started = Instant::now();
    let b = open_backup(config, &args.from, &args.side).await?;
    let mut summary = verify::verify(
        b.opened.store.as_ref(),
        &b.root,
        b.snapshot.as_deref(),
        &b.opened.display,
        args.concurrency as usize,
        config.max_state_size,
        &Bar::new(&out, "verify"),
    )
    .await?;
    summary.seconds = seconds_since(started);
    if out.json() {
        out.emit_json(&serde_json::to_value(&summary).unwrap_or_default());
    } else if !out.quiet || summary.failed > 0 {
        out.data(format!(
            "verify {}: {} snapshot(s), {} objects, {} ok, {} failed, {:.2} s",
            summary.location,
            summary.snapshots.len(),
            summary.objects,
            summary.ok,
            summary.failed,
            summary.seconds
        ));
    }
    match summary.incomplete() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
