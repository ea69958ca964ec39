//! Arguments of the bucket-wide commands: doctor, locks, prune-locks.

use crate::duration::parse_duration;
use clap::Args;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Reserved prefix for the scratch objects (a random sub-prefix is used under it)
    #[arg(long, value_name = "PREFIX", default_value = ".tfsync-doctor")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct LocksArgs {
    /// Only locks whose key starts with PREFIX [default: the whole bucket]
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,

    /// Only locks older than DURATION (e.g. 2h, 30m)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub older_than: Option<Duration>,
}

pub const PRUNE_LOCKS_HELP: &str = "\
Examples:
  tfsync --bucket tf-states prune-locks --versions --dry-run
  tfsync --bucket tf-states prune-locks --versions --prefix prod/

Every lock taken and released on a versioned bucket leaves a noncurrent version and a delete
marker behind. This deletes those noncurrent versions, then a delete marker that is left alone
at the top of its key. A lock that is held now (the current version) is never touched.";

#[derive(Debug, Args)]
pub struct PruneLocksArgs {
    /// Remove noncurrent versions of `.tflock` objects (required: say what you mean)
    #[arg(long, required = true)]
    pub versions: bool,

    /// Only lock objects under this prefix
    #[arg(long, value_name = "P", default_value = "")]
    pub prefix: String,

    /// List what would be deleted, delete nothing
    #[arg(long)]
    pub dry_run: bool,
}
