//! Command-line definitions (clap) and nothing else: values are validated and
//! resolved into a `Config` by `config.rs`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  # Who holds the lock, and what does the state say?
  tfsync --bucket tf-states --key prod/network.tfstate status

  # The same against an S3-compatible server (Ceph, MinIO, Spaces, R2...)
  export TFSYNC_BUCKET=tf-states TFSYNC_KEY=prod/network.tfstate
  export AWS_ENDPOINT_URL_S3=https://fra1.digitaloceanspaces.com
  tfsync status --output json

  # Back up a state, edit it, push it back under the lock
  tfsync pull -o network.tfstate
  tfsync push network.tfstate

  # Hold the lock for a maintenance window, then release it
  id=$(tfsync lock --operation maintenance --info 'moving VPC' --wait 5m)
  tfsync unlock \"$id\"

  # Break a stale lock left by a crashed CI job
  tfsync force-unlock 59fef1d5-d094-c52e-6aa5-e30279394a88

  # Workspace 'staging' (state at env:/staging/<key>)
  tfsync --workspace staging pull";

#[derive(Debug, Parser)]
#[command(
    name = "tfsync",
    version,
    about = "Read, write, lock and unlock Terraform / OpenTofu remote state on S3-compatible storage",
    long_about = "Read, write, lock and unlock Terraform / OpenTofu remote state on S3-compatible storage.\n\n\
The lock is the one Terraform >= 1.11 and OpenTofu >= 1.10 take with `use_lockfile = true`: \
the object `<state key>.tflock`, created with `If-None-Match: *`. A lock taken by tfsync \
stops Terraform, and a lock taken by Terraform stops tfsync.",
    after_help = "Run `tfsync --help` for examples and exit codes, `tfsync help <command>` for each command's.",
    after_long_help = long_help(),
)]
pub struct Opts {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Command,
}

fn long_help() -> String {
    format!("{EXAMPLES}\n\n{}", crate::exit::HELP)
}

/// Where the state is and how to talk to its store. Every option can also be
/// given in the environment.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalOpts {
    /// Bucket that holds the state
    #[arg(long, global = true, env = "TFSYNC_BUCKET", hide_env_values = true)]
    pub bucket: Option<String>,

    /// Key of the state in the bucket (the backend's `key`)
    #[arg(long, global = true, env = "TFSYNC_KEY", hide_env_values = true)]
    pub key: Option<String>,

    /// Region [default: from AWS_REGION / AWS_DEFAULT_REGION / profile; us-east-1 for custom endpoints]
    #[arg(long, global = true, env = "TFSYNC_REGION", hide_env_values = true)]
    pub region: Option<String>,

    /// S3-compatible endpoint URL [default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, else AWS]
    #[arg(long, global = true, env = "TFSYNC_ENDPOINT", hide_env_values = true)]
    pub endpoint: Option<String>,

    /// Terraform workspace [default: default]
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "TFSYNC_WORKSPACE",
        hide_env_values = true
    )]
    pub workspace: Option<String>,

    /// Prefix of non-default workspaces' states [default: env:]
    #[arg(
        long,
        global = true,
        env = "TFSYNC_WORKSPACE_KEY_PREFIX",
        hide_env_values = true
    )]
    pub workspace_key_prefix: Option<String>,

    /// AWS shared-config profile [default: AWS_PROFILE]
    #[arg(long, global = true, hide_env_values = true)]
    pub profile: Option<String>,

    /// Path-style addressing (always on for custom endpoints)
    #[arg(long, global = true)]
    pub path_style: bool,

    /// Use a local directory as the store instead of a bucket
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "TFSYNC_DIR",
        hide_env_values = true,
        conflicts_with = "endpoint"
    )]
    pub dir: Option<PathBuf>,

    /// Attempts per request, retried with backoff on throttling and 5xx
    #[arg(long, global = true, default_value_t = 4, value_name = "N")]
    pub max_attempts: u32,

    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, env = "TFSYNC_OUTPUT")]
    pub output: OutputFormat,

    /// Print nothing on success except requested data
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print each request made to the store on stderr
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download the state exactly as stored (to stdout or a file)
    #[command(
        after_help = "Examples:\n  tfsync pull > backup.tfstate\n  tfsync pull -o backup.tfstate   # created 0600, written atomically"
    )]
    Pull(PullArgs),

    /// Upload a state under the lock, with `terraform state push` checks
    #[command(
        after_help = "Examples:\n  tfsync push network.tfstate\n  tfsync push --lock-timeout 2m network.tfstate\n  tfsync push --force restored.tfstate   # skip lineage/serial checks\n  tfsync push --lock-id \"$id\" edited.tfstate   # under a lock taken with `tfsync lock`"
    )]
    Push(PushArgs),

    /// Take the state lock and print its ID
    #[command(
        after_help = "Examples:\n  id=$(tfsync lock --operation maintenance --info 'rotating keys')\n  tfsync lock --wait 10m --output json"
    )]
    Lock(LockArgs),

    /// Release a lock you hold, by its ID
    #[command(after_help = "Example:\n  tfsync unlock 59fef1d5-d094-c52e-6aa5-e30279394a88")]
    Unlock(UnlockArgs),

    /// Break someone else's lock, after showing who holds it
    #[command(
        after_help = "Examples:\n  tfsync force-unlock 59fef1d5-d094-c52e-6aa5-e30279394a88\n  tfsync force-unlock --yes 59fef1d5-d094-c52e-6aa5-e30279394a88   # no terminal"
    )]
    ForceUnlock(ForceUnlockArgs),

    /// Show the lock holder and a summary of the state
    #[command(after_help = "Examples:\n  tfsync status\n  tfsync status --output json | jq .lock")]
    Status,

    /// Copy every state under a prefix into a timestamped snapshot (incremental; never locks)
    #[command(after_help = crate::cli_ext::BACKUP_HELP)]
    Backup(crate::cli_ext::BackupArgs),

    /// Put states from a backup snapshot back, under the lock, with the push rules
    #[command(after_help = crate::cli_ext::RESTORE_HELP)]
    Restore(crate::cli_ext::RestoreArgs),

    /// Move a state and its workspaces to another bucket, prefix or provider, under both locks
    #[command(after_help = crate::cli_ext::MIGRATE_HELP)]
    Migrate(crate::cli_ext::MigrateArgs),

    /// List the bucket versions of the state (versioned buckets)
    #[command(after_help = crate::cli_ext::HISTORY_HELP)]
    History(crate::cli_ext::HistoryArgs),

    /// Remove the noncurrent versions of `.tflock` objects in a versioned bucket
    #[command(after_help = crate::cli_ext::PRUNE_LOCKS_HELP)]
    PruneLocks(crate::cli_ext::PruneLocksArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Write to FILE (mode 0600, atomically) instead of stdout
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Read this bucket version of the state (see `tfsync history`)
    #[arg(long, value_name = "V")]
    pub version_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The state file to upload
    pub file: PathBuf,

    /// Skip the lineage and serial checks (the write is still under the lock
    /// and compare-and-swap)
    #[arg(long)]
    pub force: bool,

    /// How long to wait for the lock
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// Push under a lock you already hold (from `tfsync lock`) instead of taking one
    #[arg(long, value_name = "LOCK_ID")]
    pub lock_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The lock's Operation
    #[arg(long, default_value = "tfsync-lock")]
    pub operation: String,

    /// The lock's Info
    #[arg(long, default_value = "")]
    pub info: String,

    /// Retry until the lock is free or DURATION has passed (e.g. 30s, 5m)
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// ID of the lock to release
    pub lock_id: String,
}

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// ID of the lock to break (shown by `status` and in lock errors)
    pub lock_id: String,

    /// Do not ask for confirmation (required without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Durations as Terraform writes them: `0s`, `30s`, `5m`, `1h30m`; a bare
/// number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. 30s, 5m, 1h30m"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Opts::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}
