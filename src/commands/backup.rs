//! `tfsync backup` and `tfsync backup verify`: arguments -> the engines of
//! `backup` -> the report. A backup never takes or touches a lock.

use super::{Ctx, open_backup, open_destination};
use crate::backup::{Progress, copy, verify};
use crate::cli::{BackupArgs, VerifyArgs};
use crate::config::Config;
use crate::error::Error;
use crate::location::join;
use crate::metrics::Metrics;
use crate::output::Printer;
use crate::store::open::Opened;
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
    let dest = match open_destination(&ctx.config, to, &args.side, true).await {
        Ok(d) => d,
        Err(e) => return Err(failed_run(ctx, &args, None, to, started, e).await),
    };
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
    let mut summary = match copy::backup(
        ctx.store.as_ref(),
        &destination,
        &opts,
        &Bar::new(&ctx.out, "backup"),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return Err(failed_run(ctx, &args, Some(&dest), &dest.display, started, e).await),
    };
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
    if ctx.out.prometheus() {
        let last = match summary.failures.is_empty() {
            true => snapshot_time(&summary.snapshot),
            false => last_snapshot(&dest).await,
        };
        let run = Run {
            source: &summary.source,
            destination: &summary.destination,
            summary: Some(&summary),
            seconds: summary.seconds,
            last_success: last,
        };
        ctx.out.raw(&prometheus(&run)?);
    } else {
        report(&ctx.out, &summary);
    }
    match summary.incomplete() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A run that stopped before its summary: with `--output prometheus`, the
/// metrics that say so (`tfsync_backup_success 0`) are printed before the
/// error is returned.
async fn failed_run(
    ctx: &Ctx,
    args: &BackupArgs,
    dest: Option<&Opened>,
    destination: &str,
    started: Instant,
    e: Error,
) -> Error {
    if !ctx.out.prometheus() {
        return e;
    }
    let last = match dest {
        Some(d) => last_snapshot(d).await,
        None => None,
    };
    let source = join(&ctx.store.describe(), args.prefix.trim_end_matches('/'));
    let run = Run {
        source: &source,
        destination,
        summary: None,
        seconds: seconds_since(started),
        last_success: last,
    };
    match prometheus(&run) {
        Ok(text) => ctx.out.raw(&text),
        Err(m) => ctx.out.warn(m.to_string()),
    }
    e
}

/// The time of the newest complete snapshot at the destination (its ID),
/// if it can be listed.
async fn last_snapshot(dest: &Opened) -> Option<chrono::DateTime<chrono::Utc>> {
    let ids = crate::backup::snapshot::list_ids(dest.store.as_ref(), &dest.prefix)
        .await
        .ok()?;
    ids.iter().rev().find_map(|id| snapshot_time(id))
}

/// A snapshot ID (`2026-11-22T10-21-41.306Z`) as a time.
fn snapshot_time(id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(id, "%Y-%m-%dT%H-%M-%S%.3fZ")
        .ok()
        .map(|t| t.and_utc())
}

/// What `--output prometheus` reports about one run.
struct Run<'a> {
    source: &'a str,
    destination: &'a str,
    /// `None`: the run stopped before it had one (listing, manifest...).
    summary: Option<&'a copy::Summary>,
    seconds: f64,
    /// The newest complete snapshot: this run's when it made one.
    last_success: Option<chrono::DateTime<chrono::Utc>>,
}

/// The gauges of a backup run, labelled with its source and destination.
fn prometheus(run: &Run<'_>) -> Result<String, Error> {
    let m = Metrics::new();
    let labels = ["source", "destination"];
    let values = [run.source, run.destination];
    let gauge = |name: &str, help: &str, value: f64| -> Result<(), Error> {
        let g = m.gauge(name, help, &labels)?;
        Metrics::set(&g, &values, value)
    };
    let ok = run.summary.is_some_and(|s| s.failures.is_empty());
    gauge(
        "tfsync_backup_success",
        "1 if the last run made a complete snapshot, else 0.",
        if ok { 1.0 } else { 0.0 },
    )?;
    if let Some(s) = run.summary {
        let states: [(&str, &str, usize); 4] = [
            ("seen", "States found under the prefix.", s.seen),
            ("copied", "States copied (new or changed).", s.copied),
            (
                "skipped",
                "States unchanged since the previous snapshot (not read again).",
                s.skipped,
            ),
            (
                "failed",
                "States that could not be copied (no manifest was then written).",
                s.failed,
            ),
        ];
        for (what, help, n) in states {
            gauge(&format!("tfsync_backup_states_{what}"), help, n as f64)?;
        }
        gauge(
            "tfsync_backup_bytes_copied",
            "Bytes of the states copied by the last run.",
            s.bytes as f64,
        )?;
        gauge(
            "tfsync_backup_pruned_snapshots",
            "Old snapshots deleted by --keep in the last run.",
            s.pruned.len() as f64,
        )?;
    }
    gauge(
        "tfsync_backup_duration_seconds",
        "Wall-clock duration of the last run.",
        run.seconds,
    )?;
    gauge(
        "tfsync_backup_last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        crate::metrics::timestamp(chrono::Utc::now()),
    )?;
    gauge(
        "tfsync_backup_last_success_timestamp_seconds",
        "Time of the newest complete snapshot at the destination (Unix time; 0: none).",
        run.last_success.map_or(0.0, crate::metrics::timestamp),
    )?;
    m.render()
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
    if out.prometheus() {
        out.raw(&verify_prometheus(&summary)?);
    } else if out.json() {
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

/// `backup verify --output prometheus`: what the run checked, labelled with
/// the location.
fn verify_prometheus(s: &verify::Summary) -> Result<String, Error> {
    let m = Metrics::new();
    let gauge = |name: &str, help: &str, value: f64| -> Result<(), Error> {
        let g = m.gauge(name, help, &["location"])?;
        Metrics::set(&g, &[&s.location], value)
    };
    let ok = s.failures.is_empty();
    gauge(
        "tfsync_backup_verify_success",
        "1 if every object of the snapshots checked matched its manifest, else 0.",
        if ok { 1.0 } else { 0.0 },
    )?;
    gauge(
        "tfsync_backup_verify_snapshots",
        "Snapshots checked.",
        s.snapshots.len() as f64,
    )?;
    gauge(
        "tfsync_backup_verify_objects",
        "Objects checked.",
        s.objects as f64,
    )?;
    gauge(
        "tfsync_backup_verify_objects_failed",
        "Objects damaged or missing.",
        s.failed as f64,
    )?;
    gauge(
        "tfsync_backup_verify_duration_seconds",
        "Wall-clock duration of the run.",
        s.seconds,
    )?;
    gauge(
        "tfsync_backup_verify_last_run_timestamp_seconds",
        "When the run ended (Unix time).",
        crate::metrics::timestamp(chrono::Utc::now()),
    )?;
    m.render()
}
