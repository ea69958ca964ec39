//! One file per subcommand, each a short script: arguments -> an engine
//! (`tfstate`, `backup`) -> the report. Commands never import each other:
//! what several share (the context, opening the other side of a command,
//! the versioned bucket) is here; tables are in `table.rs`.

mod backup;
mod completions;
mod config_cmd;
mod digest;
mod doctor;
mod force_unlock;
mod history;
mod list;
mod lock;
mod locks;
mod man;
mod migrate;
mod outputs;
mod prune_locks;
mod pull;
mod push;
mod restore;
mod status;
mod table;
mod unlock;

use crate::backup::{Located, locate};
use crate::cli::{Command, Opts};
use crate::cli::{FromSide, ToSide};
use crate::config::{Config, Needs, Target};
use crate::error::Error;
use crate::location::{Location, SideSettings};
use crate::output::Printer;
use crate::store::open::{self, Opened};
use crate::store::s3::{S3Store, Versioning};
use crate::store::{ObjectStore, Store};
use crate::tfstate::guard::{self, LockSet, LockSpec};
use crate::tfstate::lock::LockInfo;
use std::future::Future;
use std::time::Duration;

/// What every command gets: the settings, the store (built once, with
/// every option: `ctx.store.as_s3()` for S3-only requests), the printer.
pub struct Ctx {
    pub config: Config,
    pub store: Store,
    pub out: Printer,
}

impl Ctx {
    pub fn state_location(&self) -> String {
        self.store.location(&self.config.state_key())
    }
}

pub async fn run(opts: Opts) -> Result<(), Error> {
    // These read no setting: a broken backend block must not stop them.
    match &opts.command {
        Command::Completions(a) => return completions::run(a),
        Command::Man(a) => return man::run(a),
        _ => {}
    }
    let prometheus_ok = matches!(&opts.command, Command::Locks(_) | Command::Backup(_));
    if opts.global.output == crate::cli::OutputFormat::Prometheus && !prometheus_ok {
        return Err(Error::Config(
            "--output prometheus is for `tfsync locks`, `tfsync backup` and `tfsync backup verify` (metrics for node_exporter's textfile collector): use --output text or json for this command".into(),
        ));
    }
    let needs = match &opts.command {
        Command::Locks(_) | Command::Doctor(_) | Command::Config => Needs::Bucket,
        Command::ForceUnlock(a) if a.all => Needs::Bucket,
        // `backup verify` reads only its snapshot location.
        Command::Backup(a) if a.action.is_some() => Needs::Nothing,
        // Commands over many states need a store but no state key.
        Command::Backup(_) | Command::PruneLocks(_) => Needs::Bucket,
        Command::Restore(a) if a.all => Needs::Bucket,
        Command::Digest(a) if a.all => Needs::Bucket,
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
    if let Command::Backup(a) = &opts.command
        && let Some(crate::cli::BackupAction::Verify(v)) = &a.action
    {
        return backup::verify(&config, out, v).await;
    }
    let store = open_store(&config).await?;
    if config.layout == crate::tfstate::keys::Layout::Oss {
        refuse_on_oss(&opts.command, &store.location(&config.state_key()))?;
    }
    let ctx = Ctx { config, store, out };
    match opts.command {
        Command::Pull(a) => pull::run(&ctx, a).await,
        Command::Push(a) => push::run(&ctx, a).await,
        Command::Lock(a) => lock::run(&ctx, a).await,
        Command::Unlock(a) => unlock::run(&ctx, a).await,
        Command::ForceUnlock(a) => force_unlock::run(&ctx, a).await,
        Command::Status => status::run(&ctx).await,
        Command::Digest(a) => digest::run(&ctx, a).await,
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
        Command::Completions(a) => completions::run(&a),
        Command::Man(a) => man::run(&a),
    }
}

/// On a `backend "oss"` layout, whose lock lives in Alibaba TableStore
/// (Terraform's `internal/backend/remote-state/oss/client.go`): refuse what
/// takes or releases a lock, and state writes unless `--lock=false`.
fn refuse_on_oss(command: &Command, state: &str) -> Result<(), Error> {
    let what = match command {
        Command::Push(a) if a.lock => "push",
        Command::Restore(a) if a.lock => "restore",
        Command::Migrate(_) => "migrate",
        Command::Digest(a) if a.fix => "digest --fix",
        Command::Lock(_) => "lock",
        Command::Unlock(_) => "unlock",
        Command::ForceUnlock(_) => "force-unlock",
        _ => return Ok(()),
    };
    let how = match command {
        Command::Push(_) | Command::Restore(_) => {
            "Pass --lock=false, as Terraform's -lock=false, only if you are sure no one else writes: the write is then still compare-and-swap, but excludes no one"
        }
        _ => "Take or release it with Terraform (terraform force-unlock for a stale lock)",
    };
    Err(Error::Config(format!(
        "{state}: tfsync {what} refused: the backend \"oss\" keeps its lock in Alibaba TableStore (tablestore_table), which tfsync cannot take, so a .tflock would exclude no one. {how}"
    )))
}

/// The configured store, every option applied (see `store::open`).
pub async fn open_store(config: &Config) -> Result<Store, Error> {
    crate::store::open::open(config).await
}

impl Ctx {
    /// The configured store as an S3 store, for version requests.
    pub fn s3_store(&self) -> Result<&S3Store, Error> {
        self.store.as_s3().ok_or_else(|| {
            Error::Config(match &self.config.target {
                Target::Dir(d) => format!(
                    "{} is a directory: it keeps no versions (only S3 buckets with versioning do)",
                    d.display()
                ),
                Target::S3(_) | Target::Local(_) | Target::Azure(_) | Target::Gcs(_) => format!(
                    "{}: tfsync reads object versions of S3 buckets only (not of this backend yet)",
                    self.store.describe()
                ),
            })
        })
    }

    /// The configured bucket, with versioning (enabled, or suspended with
    /// versions kept).
    pub async fn versioned(&self) -> Result<&S3Store, Error> {
        let store = self.s3_store()?;
        if store.versioning().await? == Versioning::Off {
            return Err(Error::Config(no_versioning(store)));
        }
        Ok(store)
    }

    /// Where the domain layer's warnings go.
    pub fn warn(&self) -> impl Fn(String) + Sync + '_ {
        move |w: String| self.out.warn(w)
    }

    /// Run `body` while holding a new lock of `operation` on the state at
    /// `state_key` of the configured store ([`guard::under_lock`]).
    pub async fn under_lock<T>(
        &self,
        state_key: &str,
        operation: &str,
        wait: Duration,
        body: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let spec = LockSpec::new(self.store.as_ref(), state_key, operation);
        guard::under_lock(spec, wait, &self.warn(), body).await
    }

    /// The locks of the configured state.
    pub fn lock_set(&self) -> LockSet<'_> {
        LockSet::new(self.store.as_ref(), &self.config.state_key())
    }
}

/// Why a bucket has no history to read.
pub fn no_versioning(store: &S3Store) -> String {
    format!(
        "{} has no versioning: it keeps only the current state, so there is no history to read. Enable versioning on the bucket to keep one (on Ceph RGW, keep lock buckets unversioned: it ignores If-None-Match there)",
        store.describe()
    )
}

/// Open the destination `to` of a backup or a migration with its `--to-*`
/// flags (the source's settings fill in the rest, as `store::open` says);
/// `batched` as in [`open::open_location`].
pub async fn open_destination(
    config: &Config,
    to: &str,
    side: &ToSide,
    batched: bool,
) -> Result<Opened, Error> {
    let side = SideSettings {
        endpoint: side.to_endpoint.clone(),
        region: side.to_region.clone(),
        profile: side.to_profile.clone(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let loc = Location::parse(to)?;
    // The destination is the one directory store that may be created.
    if let Location::Dir(dir) = &loc {
        crate::store::fs::FsStore::create(dir.clone())?;
    }
    open::open_location(&loc, &side, config, batched, &env).await
}

/// Open `text`, with its `--from-*` flags, as a backup location or a
/// snapshot in one ([`locate`]).
pub async fn open_backup(config: &Config, text: &str, side: &FromSide) -> Result<Located, Error> {
    let side = SideSettings {
        endpoint: side.from_endpoint.clone(),
        region: side.from_region.clone(),
        profile: side.from_profile.clone(),
    };
    let env = |k: &str| std::env::var(k).ok();
    locate(&Location::parse(text)?, async |loc: &Location| {
        open::open_location(loc, &side, config, false, &env).await
    })
    .await
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
