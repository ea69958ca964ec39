//! Arguments of the backup, restore and migration commands, and their
//! per-side (`--to-*`, `--from-*`) settings.

use crate::duration::parse_duration;
use clap::{Args, Subcommand};
use std::time::Duration;

pub const BACKUP_HELP: &str = "\
Examples:
  # Every state in the bucket into a local directory, keep 14 snapshots
  tfsync --bucket tf-states backup --to file:///var/backups/tf --keep 14

  # Only production, compressed, to another bucket on the same server (server-side copy)
  tfsync --bucket tf-states backup --prefix prod/ --to s3://tf-backups/nightly --gzip

  # To another provider (a remote named in ~/.config/tfsync/config.toml, or --to-endpoint)
  tfsync --bucket tf-states backup --to spaces:tf-backups/aws
  tfsync --bucket tf-states backup --to s3://tf-backups --to-endpoint https://fra1.digitaloceanspaces.com --to-profile spaces

  # From cron: no terminal, one summary line (or JSON), non-zero exit naming the failed keys
  tfsync --bucket tf-states backup --to file:///var/backups/tf --output json

  # Re-check every snapshot's bytes against its manifest
  tfsync backup verify --from file:///var/backups/tf

A snapshot is <LOCATION>/<time>/<state key> plus <LOCATION>/manifests/<time>.json, written
last: a run that fails leaves no manifest and never looks complete. A state whose ETag is
unchanged since the newest snapshot is not read again; the new manifest points at the object
that already holds its bytes. `.tflock` objects are never copied and no lock is taken.

Summary fields (--output json): snapshot, source, destination, seen, copied, skipped,
failed, bytes, seconds, pruned, failures[{key, error}].";

pub const RESTORE_HELP: &str = "\
Examples:
  # The configured state (--key / TFSYNC_KEY, --workspace) from the newest snapshot
  tfsync --bucket tf-states --key prod/network.tfstate restore --from file:///var/backups/tf

  # From one snapshot
  tfsync --bucket tf-states --key prod/network.tfstate restore --from file:///var/backups/tf/2026-11-22T03-00-00.000Z

  # Every state of a snapshot
  tfsync --bucket tf-states restore --all --from s3://tf-backups/nightly

  # An older bucket version of the state (versioned bucket; see `tfsync history`)
  tfsync --bucket tf-states --key prod/network.tfstate restore --version-id 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY

Each state is written under its lock (Operation `restore from backup`) with the rules of
`terraform state push`: a state with another lineage or an older serial than the current one
is refused (exit 4) unless --force.";

/// Per-side settings of a destination.
#[derive(Debug, Args, Clone, Default)]
pub struct ToSide {
    /// Endpoint of the destination [default: the source's, unless a remote names one]
    #[arg(long, value_name = "URL")]
    pub to_endpoint: Option<String>,
    /// Region of the destination
    #[arg(long, value_name = "REGION")]
    pub to_region: Option<String>,
    /// AWS profile of the destination
    #[arg(long, value_name = "PROFILE")]
    pub to_profile: Option<String>,
}

/// Per-side settings of a backup being read.
#[derive(Debug, Args, Clone, Default)]
pub struct FromSide {
    /// Endpoint of the backup location [default: the configured endpoint]
    #[arg(long, value_name = "URL")]
    pub from_endpoint: Option<String>,
    /// Region of the backup location
    #[arg(long, value_name = "REGION")]
    pub from_region: Option<String>,
    /// AWS profile of the backup location
    #[arg(long, value_name = "PROFILE")]
    pub from_profile: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub action: Option<BackupAction>,

    /// Where snapshots go: s3://bucket/prefix, az://account/container/prefix, file:///dir or REMOTE:bucket/prefix
    #[arg(long, value_name = "LOCATION", required = true)]
    pub to: Option<String>,

    /// Only keys under this prefix of the source
    #[arg(long, value_name = "P", default_value = "")]
    pub prefix: String,

    /// Only keys matching this glob (`*` also crosses `/`), e.g. 'prod/**/*.tfstate'
    #[arg(long = "match", value_name = "GLOB")]
    pub pattern: Option<String>,

    /// After a successful run, keep only the N newest snapshots
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,

    /// Store states gzip-compressed (`<key>.gz`)
    #[arg(long)]
    pub gzip: bool,

    /// States copied at once
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    #[command(flatten)]
    pub side: ToSide,
}

#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Re-read every object of the snapshots and check size and MD5 against the manifests
    #[command(
        after_long_help = "Examples:\n  tfsync backup verify --from file:///var/backups/tf\n  tfsync backup verify --from s3://tf-backups/nightly/2026-11-22T03-00-00.000Z --output json"
    )]
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup location (all its snapshots) or one snapshot (LOCATION/<id>)
    #[arg(long, value_name = "LOCATION")]
    pub from: String,

    /// Objects read at once
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    #[command(flatten)]
    pub side: FromSide,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A snapshot (LOCATION/<id>), or a backup location (its newest snapshot)
    #[arg(long, value_name = "SNAPSHOT", required_unless_present = "version_id")]
    pub from: Option<String>,

    /// Make this bucket version of the state current again (same lineage,
    /// serial = current + 1); see `tfsync history`
    #[arg(long, value_name = "V", conflicts_with_all = ["from", "all"])]
    pub version_id: Option<String>,

    /// Restore every state of the snapshot instead of the configured one
    #[arg(long)]
    pub all: bool,

    /// Skip the lineage and serial checks (still under the lock, compare-and-swap)
    #[arg(long)]
    pub force: bool,

    /// How long to wait for each lock
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// With --version-id, --lock=false: write without taking the lock, like terraform
    /// -lock=false (still compare-and-swap); only if you are sure no one else writes
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub lock: bool,

    #[command(flatten)]
    pub side: FromSide,
}

pub const MIGRATE_HELP: &str = "\
Examples:
  # See what would happen (nothing is changed, no lock is taken)
  tfsync --bucket old-states --key net/terraform.tfstate migrate --to s3://new-states --all-workspaces --dry-run

  # Move the default workspace to another bucket on the same server
  tfsync --bucket old-states --key net/terraform.tfstate migrate --to s3://new-states

  # Move every workspace to another provider, then delete the originals
  tfsync --bucket old-states --key net/terraform.tfstate migrate --all-workspaces --delete-source \\
      --to s3://tf-states/platform --to-endpoint https://fra1.digitaloceanspaces.com --to-profile spaces

  # Rename the state (and its workspaces) within the bucket, as `terraform init -migrate-state`
  # does when `key` changes; the plan shows each source key -> destination key
  tfsync --bucket tf-states --key old/terraform.tfstate migrate --all-workspaces \
      --to s3://tf-states --to-key new/terraform.tfstate --dry-run

  # Move every workspace from an s3 backend to an Azure container (ARM_ACCESS_KEY or ARM_SAS_TOKEN)
  tfsync --bucket tf-states --key net/terraform.tfstate migrate --all-workspaces \
      --to az://tfstates01/tfstate

The destination key is the location's prefix joined with the state key (workspace `W` at
<workspace_key_prefix>/W/<that key>, as Terraform lays it out; in an az:// container, azurerm's
<that key>env:W). Each side keeps its own backend's layout: a local backend's workspaces are
read from <workspace_dir>/W/terraform.tfstate, an azurerm backend's from <key>env:W.
--to-key KEY gives the whole
destination key instead (the location then names no prefix); its workspaces go to
<PREFIX>/W/KEY, PREFIX being --to-workspace-key-prefix, else the remote's
`workspace_key_prefix` (config.toml), else `env:`. Each workspace is moved under
two locks (Operations `migration source state` and `migration destination state`), written
compare-and-swap, and checked by MD5 (on S3 the ETag the server answers the write with, the
MD5 of what it stored; elsewhere read back). A destination that holds a non-empty state
with another lineage or a higher serial is refused (exit 4) unless --force. The sources are
deleted (--delete-source) only after every workspace was copied and verified, so a failure
halfway leaves every source untouched and the message says which workspaces were copied.";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Destination: s3://bucket/prefix, az://account/container/prefix, file:///dir or REMOTE:bucket/prefix
    #[arg(long, value_name = "LOCATION")]
    pub to: String,

    /// The state key at the destination (a rename); workspace W goes to <PREFIX>/W/KEY as Terraform lays it out [default: the location's prefix joined with the state key]
    #[arg(long, value_name = "KEY")]
    pub to_key: Option<String>,

    /// Workspace key prefix at the destination [default: with --to-key, the remote's workspace_key_prefix, else env:; without it, the source's]
    #[arg(long, value_name = "PREFIX")]
    pub to_workspace_key_prefix: Option<String>,

    /// Every workspace of the state (the default one and all under the workspace key prefix)
    #[arg(long)]
    pub all_workspaces: bool,

    /// Print the plan (what goes where, what would be refused) and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Delete the source states once every workspace is copied and verified
    #[arg(long)]
    pub delete_source: bool,

    /// Overwrite a destination state even with another lineage or a higher serial
    #[arg(long)]
    pub force: bool,

    /// How long to wait for each lock
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// Workspaces moved at once
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,

    #[command(flatten)]
    pub side: ToSide,
}
