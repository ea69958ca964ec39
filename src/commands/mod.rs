//! One file per subcommand, each a short script over `tfstate` and `store`.

mod backup;
mod config_cmd;
mod doctor;
mod force_unlock;
mod history;
mod list;
mod lock;
mod locks;
mod migrate;
mod outputs;
mod prune_locks;
mod pull;
mod push;
mod restore;
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
        // Commands over many states need a store but no state key.
        Command::Backup(_) | Command::PruneLocks(_) => Needs::Bucket,
        Command::Restore(a) if a.all => Needs::Bucket,
        _ => Needs::State,
    };
    // `backup verify` reads only its snapshot location: give Config a
    // placeholder bucket it never sends anywhere.
    let mut global = opts.global.clone();
    if matches!(&opts.command, Command::Backup(a) if a.action.is_some())
        && global.bucket.is_none()
        && global.dir.is_none()
    {
        global.bucket = Some(UNUSED_BUCKET.into());
    }
    let ask = |name: &str, hint: &str| -> Option<String> {
        use std::io::{BufRead, Write};
        eprint!("{name} ({hint}): ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    };
    let prompt: Option<crate::config::Prompt<'_>> = if interactive() { Some(&ask) } else { None };
    let config = Config::resolve_with(&global, &|k| std::env::var(k).ok(), needs, prompt)?;
    let out = Printer {
        format: config.output,
        quiet: config.quiet,
    };
    for w in &config.warnings {
        out.warn(w);
    }
    if let Command::Backup(a) = &opts.command
        && let Some(crate::cli_ext::BackupAction::Verify(v)) = &a.action
    {
        return backup::verify(&config, out, v).await;
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
        Command::Backup(a) => backup::run(&ctx, a).await,
        Command::Restore(a) => restore::run(&ctx, a).await,
        Command::Migrate(a) => migrate::run(&ctx, a).await,
        Command::History(a) => history::run(&ctx, a).await,
        Command::PruneLocks(a) => prune_locks::run(&ctx, a).await,
    }
}

/// Placeholder for a bucket a command does not use (never sent anywhere).
const UNUSED_BUCKET: &str = "unused-bucket";

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
    under_lock_on(ctx, &ctx.config.state_key(), operation, wait, body).await
}

/// [`under_lock`] for the state at `state_key` (commands over many states).
pub async fn under_lock_on<T>(
    ctx: &Ctx,
    state_key: &str,
    operation: &str,
    wait: Duration,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let spec = LockSpec {
        store: ctx.store.as_ref(),
        state_key: state_key.to_string(),
        operation: operation.to_string(),
    };
    under_locks(&ctx.out, std::slice::from_ref(&spec), wait, body).await
}

/// One lock to take for [`under_locks`].
pub struct LockSpec<'a> {
    pub store: &'a dyn ObjectStore,
    pub state_key: String,
    pub operation: String,
}

/// Run `body` while holding every lock of `specs` (taken in order, released
/// in reverse order), and release the ones taken on every path: success,
/// error, a lock held by someone else, SIGINT and SIGTERM. One signal
/// handler covers them all, so no lock can be left behind by a signal.
pub async fn under_locks<T>(
    out: &Printer,
    specs: &[LockSpec<'_>],
    wait: Duration,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let infos: Vec<LockInfo> = specs
        .iter()
        .map(|s| LockInfo::new(&s.operation, "", s.store.bucket(), &s.state_key))
        .collect();
    let etags: std::sync::Mutex<Vec<Option<String>>> = std::sync::Mutex::default();
    let mut signals = Signals::install()?;
    let work = async {
        for (s, info) in specs.iter().zip(&infos) {
            let etag = tflock::acquire(s.store, &s.state_key, info, wait).await?;
            etags.lock().unwrap_or_else(|p| p.into_inner()).push(etag);
            if let Some(w) = s.store.lock_safety_warning().await {
                out.warn(w);
            }
        }
        body.await
    };
    let result = tokio::select! {
        r = work => r,
        signal = signals.recv() => Err(Error::Interrupted {
            signal,
            detail: "the state was either not written or written whole (writes are all-or-nothing); check with `tfsync status`".into(),
        }),
    };
    let etags = etags.into_inner().unwrap_or_else(|p| p.into_inner());
    let taken = etags.len();
    // Interrupted while taking lock `taken`: its PUT may have landed.
    let maybe = if matches!(result, Err(Error::Interrupted { .. })) && taken < specs.len() {
        taken + 1
    } else {
        taken
    };
    let mut release_error = None;
    for i in (0..maybe).rev() {
        let (s, info) = (&specs[i], &infos[i]);
        // Our own lock: one conditional DELETE with its ETag; a lock whose
        // PUT may or may not have landed: read, compare the ID, delete.
        let released = match etags.get(i) {
            Some(etag) => tflock::release_own(s.store, &s.state_key, info, etag.as_deref()).await,
            None => tflock::release(s.store, &s.state_key, &info.id)
                .await
                .map(|_| ()),
        };
        match released {
            Ok(()) => {}
            // Interrupted before that lock was taken: nothing to release.
            Err(Error::NotLocked { .. } | Error::LockIdMismatch { .. }) if i == taken => {}
            Err(e) => {
                out.warn(format!(
                    "could not release lock {} on {} ({e}).\nIf it is still held, release it with: tfsync unlock {}",
                    info.id,
                    s.store.location(&s.state_key),
                    info.id
                ));
                release_error.get_or_insert(e);
            }
        }
    }
    match release_error {
        Some(e) => result.and(Err(e)),
        None => result,
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
    use crate::output::escape_for_terminal as esc;
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({ "released": info }));
    } else {
        ctx.out.note(format!(
            "released lock {} on {} (held by {}, {})",
            esc(&info.id),
            ctx.state_location(),
            esc(&info.who),
            esc(&info.operation)
        ));
    }
}
