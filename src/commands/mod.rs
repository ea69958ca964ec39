//! One file per subcommand, each a short script over `tfstate` and `store`.

mod config_cmd;
mod doctor;
mod force_unlock;
mod list;
mod lock;
mod locks;
mod outputs;
mod pull;
mod push;
mod status;
mod table;
mod unlock;

use crate::cli::{Command, Opts};
use crate::config::{Config, Needs, Target};
use crate::error::Error;
use crate::output::Printer;
use crate::store::ObjectStore;
use crate::store::fs::FsStore;
use crate::store::s3::S3Store;
use crate::tfstate::lock::{self as tflock, LockInfo};
use std::future::Future;
use std::time::Duration;

/// What every command gets: the settings, the store, the printer.
pub struct Ctx {
    pub config: Config,
    pub store: Box<dyn ObjectStore>,
    pub out: Printer,
}

impl Ctx {
    pub fn state_location(&self) -> String {
        self.store.location(&self.config.state_key())
    }
}

pub async fn run(opts: Opts) -> Result<(), Error> {
    let needs = match &opts.command {
        Command::Locks(_) | Command::Doctor(_) | Command::Config => Needs::Bucket,
        Command::ForceUnlock(a) if a.all => Needs::Bucket,
        _ => Needs::State,
    };
    let ask = |name: &str, hint: &str| -> Option<String> {
        use std::io::{BufRead, Write};
        eprint!("{name} ({hint}): ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    };
    let prompt: Option<crate::config::Prompt<'_>> = if interactive() { Some(&ask) } else { None };
    let config = Config::resolve_with(&opts.global, &|k| std::env::var(k).ok(), needs, prompt)?;
    let out = Printer {
        format: config.output,
        quiet: config.quiet,
    };
    for w in &config.warnings {
        out.warn(w);
    }
    let store = open_store(&config).await?;
    let ctx = Ctx { config, store, out };
    match opts.command {
        Command::Pull(a) => pull::run(&ctx, a).await,
        Command::Push(a) => push::run(&ctx, a).await,
        Command::Lock(a) => lock::run(&ctx, a).await,
        Command::Unlock(a) => unlock::run(&ctx, a).await,
        Command::ForceUnlock(a) => force_unlock::run(&ctx, a).await,
        Command::Status => status::run(&ctx).await,
        Command::List => list::run(&ctx).await,
        Command::Locks(a) => locks::run(&ctx, a).await,
        Command::Outputs(a) => outputs::run(&ctx, a).await,
        Command::Doctor(a) => doctor::run(&ctx, a).await,
        Command::Config => config_cmd::run(&ctx).await,
    }
}

pub async fn open_store(config: &Config) -> Result<Box<dyn ObjectStore>, Error> {
    Ok(match &config.target {
        Target::S3(o) => Box::new(
            S3Store::connect(o)
                .await?
                .with_write_options(config.write.clone())
                .with_transport(&config.transport)?,
        ),
        Target::Dir(d) => Box::new(FsStore::new(d.clone())?),
    })
}

/// Run `body` while holding a new lock of `operation` on the configured
/// state, and release the lock on every path: success, error, SIGINT and
/// SIGTERM. `body` is lazy: nothing in it runs before the lock is held.
pub async fn under_lock<T>(
    ctx: &Ctx,
    operation: &str,
    wait: Duration,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let store = ctx.store.as_ref();
    let state_key = ctx.config.state_key();
    let info = LockInfo::new(operation, "", store.bucket(), &state_key);
    let mut signals = Signals::install()?;
    let mut lock_etag = None;
    let work = async {
        lock_etag = Some(tflock::acquire(store, &state_key, &info, wait).await?);
        warn_if_unsafe(ctx).await;
        body.await
    };
    let result = tokio::select! {
        r = work => r,
        signal = signals.recv() => Err(Error::Interrupted {
            signal,
            detail: "the state was either not written or written whole (writes are all-or-nothing); check with `tfsync status`".into(),
        }),
    };
    if matches!(result, Err(Error::LockHeld { .. })) {
        return result; // never ours
    }
    // Interrupted during acquire: we may or may not hold it; compare IDs.
    let released = match &lock_etag {
        Some(etag) => tflock::release_own(store, &state_key, &info, etag.as_deref()).await,
        None => tflock::release(store, &state_key, &info.id)
            .await
            .map(|_| ()),
    };
    match released {
        Ok(()) => result,
        // Interrupted before the lock was taken: nothing to release.
        Err(Error::NotLocked { .. } | Error::LockIdMismatch { .. }) if lock_etag.is_none() => {
            result
        }
        Err(e) => {
            ctx.out.warn(format!(
                "could not release lock {} ({e}).\nIf it is still held, release it with: tfsync unlock {}",
                info.id, info.id
            ));
            result.and(Err(e))
        }
    }
}

/// After a lock was taken: warn loudly when cheap signals (one request, on
/// S3-compatible endpoints only) say the lock may not exclude other writers.
pub(crate) async fn warn_if_unsafe(ctx: &Ctx) {
    if let Some(w) = ctx.store.lock_safety_warning().await {
        ctx.out.warn(w);
    }
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e| Error::io("signal handler", e);
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Is stdin a terminal a person can answer on?
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The result of `unlock` and `force-unlock`.
fn report_released(ctx: &Ctx, info: &LockInfo) {
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({ "released": info }));
    } else {
        ctx.out.note(format!(
            "released lock {} on {} (held by {}, {})",
            info.id,
            ctx.state_location(),
            info.who,
            info.operation
        ));
    }
}
