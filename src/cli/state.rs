//! Arguments of the commands on one state: pull, push, lock, unlock,
//! force-unlock, outputs, history, digest.

use crate::duration::parse_duration;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

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

    /// --lock=false: write without taking the lock, like terraform -lock=false (still
    /// compare-and-swap); only if you are sure no one else writes
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", conflicts_with = "lock_id")]
    pub lock: bool,
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
    #[arg(required_unless_present = "all")]
    pub lock_id: Option<String>,

    /// Do not ask for confirmation (required without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Break the lock only if it is older than DURATION (e.g. 2h, 30m)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub older_than: Option<Duration>,

    /// Break every lock under --prefix that is older than --older-than (no --key needed)
    #[arg(long, requires = "older_than", conflicts_with = "lock_id")]
    pub all: bool,

    /// With --all: only locks whose key starts with PREFIX [default: the whole bucket]
    #[arg(long, requires = "all", value_name = "PREFIX")]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// Show only this output (its value alone)
    pub name: Option<String>,

    /// Print sensitive values instead of masking them
    #[arg(long)]
    pub show_sensitive: bool,

    /// Print NAME's value bare (a string, number or bool; no quotes, no newline)
    #[arg(long, requires = "name", conflicts_with = "output")]
    pub raw: bool,
}

pub const HISTORY_HELP: &str = "\
Examples:
  tfsync --bucket tf-states --key prod/network.tfstate history
  tfsync history --limit 100 --output json
  tfsync pull --version-id 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY -o old.tfstate
  tfsync restore --version-id 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY

Newest first. Serial and lineage are read from each version (one GET each, up to --limit);
delete markers are shown. On a bucket without versioning there is no history, and tfsync says so.";

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Read serial and lineage of at most N versions (newest first)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

pub const DIGEST_HELP: &str = "\
Needs a DynamoDB table (--dynamodb-table, TFSYNC_DYNAMODB_TABLE or the backend's dynamodb_table).

Terraform stores the MD5 of every state it writes in the item <bucket>/<state key>-md5 of the
table, and every read compares the state with it: after a mismatch it retries for 10 s, then
fails with \"state data in S3 does not have the expected content\". This compares them, and
with --fix stores the digest of the state as it is now, under the state's lock (a digest whose
state is gone is removed). Exit code 4 when a digest is stale and was not fixed.

Examples:
  tfsync digest
  tfsync digest --fix
  tfsync digest --all --output json | jq '.states[] | select(.matches == false)'
  tfsync digest --all --prefix prod/ --fix";

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Store the state's MD5 as its digest where the digest is stale (under the lock)
    #[arg(long)]
    pub fix: bool,

    /// Every state under --prefix of the bucket, and every digest there (no --key needed)
    #[arg(long)]
    pub all: bool,

    /// With --all: only states whose key starts with PREFIX [default: the whole bucket]
    #[arg(long, requires = "all", value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// With --fix: how long to wait for each state's lock
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: Duration,
}
