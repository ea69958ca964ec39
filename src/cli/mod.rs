//! Command-line definitions (clap) and nothing else: values are validated and
//! resolved into a `Config` by `config/`.
//!
//! Imports go one way: this file declares the global options and the
//! command enum, and uses the argument structs of its submodules (grouped by
//! what the commands work on); the submodules never import this file.

mod backup;
mod bucket;
mod state;

pub use backup::{
    BackupAction, BackupArgs, FromSide, MigrateArgs, RestoreArgs, ToSide, VerifyArgs,
};
pub use bucket::{DoctorArgs, LocksArgs, PruneLocksArgs};
pub use state::{
    DigestArgs, ForceUnlockArgs, HistoryArgs, LockArgs, OutputsArgs, PullArgs, PushArgs, UnlockArgs,
};

use crate::config::{Engine, Provider};
use crate::duration::parse_duration;
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
  tfsync --workspace staging pull

  # In a Terraform directory: settings come from its backend \"s3\" block
  tfsync config
  tfsync list

  # Every lock older than 2 hours in the bucket, then break them
  tfsync locks --older-than 2h
  tfsync force-unlock --all --older-than 2h --yes

  # Is locking safe on this provider? (exit 6 if not)
  tfsync doctor

  # Outputs, like terraform output
  tfsync outputs vpc_id --raw";

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

/// Attempts per request when `--max-attempts` is not given.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// The clap command: [`Opts`], with each subcommand's short help (`-h`)
/// pointing at its long help (`--help`: examples, every global option).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    fn hint(cmd: clap::Command, path: &str) -> clap::Command {
        let path = format!("{path} {}", cmd.get_name());
        let cmd = cmd.mut_subcommands(|sub| hint(sub, &path));
        let text = format!("Run `{path} --help` for examples and every global option.");
        cmd.after_help(text)
    }
    Opts::command().mut_subcommands(|sub| hint(sub, "tfsync"))
}

/// Parse the process's arguments (exits with clap's message on an error,
/// or after printing help / the version).
pub fn parse() -> Opts {
    use clap::FromArgMatches;
    let matches = command().get_matches();
    Opts::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn long_help() -> String {
    format!("{EXAMPLES}\n\n{}", crate::exit::HELP)
}

/// The help headings of the global options: after each command's own.
pub const GLOBAL: &str = "Global options";
pub const CONNECTION: &str = "Global connection options";
pub const ENCRYPTION: &str = "Global encryption options";

/// Where the state is and how to talk to its store. Every option can also be
/// given in the environment.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalOpts {
    /// Bucket that holds the state [env: TFSYNC_BUCKET]
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub bucket: Option<String>,

    /// Key of the state in the bucket (the backend's `key`) [env: TFSYNC_KEY]
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub key: Option<String>,

    /// Region [env: TFSYNC_REGION, AWS_REGION, AWS_DEFAULT_REGION; default: the profile's; us-east-1 for custom endpoints]
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub region: Option<String>,

    /// S3-compatible endpoint URL [env: TFSYNC_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; default: AWS]
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub endpoint: Option<String>,

    /// Terraform workspace [env: TFSYNC_WORKSPACE, TF_WORKSPACE; default: .terraform/environment, else default]
    #[arg(long, short = 'w', global = true, help_heading = GLOBAL)]
    pub workspace: Option<String>,

    /// Prefix of non-default workspaces' states [env: TFSYNC_WORKSPACE_KEY_PREFIX; default: env:]
    #[arg(long, global = true, help_heading = GLOBAL, hide_short_help = true)]
    pub workspace_key_prefix: Option<String>,

    /// Read the `backend "s3"` block of DIR/*.tf and DIR/.terraform/ instead of the current directory's
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL, hide_short_help = true)]
    pub chdir: Option<PathBuf>,

    /// OpenMCF manifest whose backend labels give bucket, key, region, endpoint (its openmcf.org/provisioner picks terraform.openmcf.org/* or tofu.openmcf.org/*)
    #[arg(long = "manifest", short = 'f', global = true, value_name = "FILE", help_heading = GLOBAL, hide_short_help = true)]
    pub manifest: Option<PathBuf>,

    /// Whose manifest labels are read, overriding the manifest's openmcf.org/provisioner (tofu: tofu.openmcf.org/*, then terraform.openmcf.org/*) [env: TFSYNC_ENGINE]
    #[arg(long, global = true, value_enum, help_heading = GLOBAL, hide_short_help = true)]
    pub engine: Option<Engine>,

    /// AWS shared-config profile [default: AWS_PROFILE]
    #[arg(long, global = true, hide_env_values = true, help_heading = CONNECTION)]
    pub profile: Option<String>,

    /// Path-style addressing (always on for custom endpoints)
    #[arg(long, global = true, help_heading = CONNECTION, hide_short_help = true)]
    pub path_style: bool,

    /// Fill in what this provider needs: endpoint, signing region, addressing, create-only header [env: TFSYNC_PROVIDER]
    #[arg(long, global = true, value_enum, help_heading = CONNECTION, hide_short_help = true)]
    pub provider: Option<Provider>,

    /// Server-side encryption of the lock and the state: AES256, aws:kms or aws:kms:dsse (tfsync's encrypt = true; with a customer key AES256 is SSE-C) [env: TFSYNC_SSE; backend: encrypt]
    #[arg(long, global = true, value_name = "ALGORITHM", help_heading = ENCRYPTION, hide_short_help = true)]
    pub sse: Option<String>,

    /// KMS key of the lock and the state, applied only with --sse or encrypt = true, as in Terraform [env: TFSYNC_KMS_KEY_ID; backend: kms_key_id]
    #[arg(long, global = true, value_name = "KEY_ID", help_heading = ENCRYPTION, hide_short_help = true)]
    pub kms_key_id: Option<String>,

    /// Canned ACL of the lock and the state, e.g. bucket-owner-full-control [env: TFSYNC_ACL; backend: acl]
    #[arg(long, global = true, help_heading = ENCRYPTION, hide_short_help = true)]
    pub acl: Option<String>,

    /// DynamoDB table of the backend's lock items and state digests (Terraform's dynamodb_table): every lock is then the .tflock and the item, every state write stores its digest [env: TFSYNC_DYNAMODB_TABLE; backend: dynamodb_table]
    #[arg(long, global = true, value_name = "TABLE", help_heading = CONNECTION, hide_short_help = true)]
    pub dynamodb_table: Option<String>,

    /// DynamoDB endpoint URL [env: AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL; backend: endpoints.dynamodb, dynamodb_endpoint; default: AWS]
    #[arg(long, global = true, value_name = "URL", help_heading = CONNECTION, hide_short_help = true)]
    pub dynamodb_endpoint: Option<String>,

    /// Use a local directory as the store instead of a bucket [env: TFSYNC_DIR]
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "endpoint", help_heading = GLOBAL, hide_short_help = true)]
    pub dir: Option<PathBuf>,

    /// Attempts per request, retried with backoff on throttling and 5xx
    #[arg(long, global = true, default_value_t = DEFAULT_MAX_ATTEMPTS, value_name = "N", help_heading = CONNECTION, hide_short_help = true)]
    pub max_attempts: u32,

    /// First wait between retries (e.g. 200ms, 1s) [env: TFSYNC_RETRY_MIN_WAIT; default: 100ms]
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION", help_heading = CONNECTION, hide_short_help = true)]
    pub retry_min_wait: Option<Duration>,

    /// Longest wait between retries [env: TFSYNC_RETRY_MAX_WAIT; default: 5s]
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION", help_heading = CONNECTION, hide_short_help = true)]
    pub retry_max_wait: Option<Duration>,

    /// At most N requests per second to the store (client-side) [env: TFSYNC_RATE_LIMIT]
    #[arg(long, global = true, value_name = "N", help_heading = CONNECTION, hide_short_help = true)]
    pub rate_limit: Option<u32>,

    /// Requests allowed at once above --rate-limit [env: TFSYNC_RATE_BURST; default: 1]
    #[arg(long, global = true, value_name = "N", requires = "rate_limit", help_heading = CONNECTION, hide_short_help = true)]
    pub rate_burst: Option<u32>,

    /// Also trust the PEM certificates in FILE (a private CA) [env: TFSYNC_CA_BUNDLE, AWS_CA_BUNDLE]
    #[arg(long, global = true, value_name = "FILE", help_heading = CONNECTION, hide_short_help = true)]
    pub ca_bundle: Option<PathBuf>,

    /// Refuse a state (input file or directory-store object) larger than SIZE, e.g. 512MiB, 2GiB [env: TFSYNC_MAX_STATE_SIZE; default: 512MiB]
    #[arg(long, global = true, value_parser = crate::localfile::parse_size, value_name = "SIZE", help_heading = GLOBAL, hide_short_help = true)]
    pub max_state_size: Option<u64>,

    /// Output format (prometheus: `locks`, `backup`, `backup verify` only)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, env = "TFSYNC_OUTPUT", help_heading = GLOBAL)]
    pub output: OutputFormat,

    /// Print nothing on success except requested data
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,

    /// Print each request made to the store on stderr
    #[arg(long, short = 'v', global = true, help_heading = GLOBAL)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    /// Prometheus text format (node_exporter textfile collector): `locks`, `backup` and `backup verify` only
    Prometheus,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download the state exactly as stored (to stdout or a file)
    #[command(
        after_long_help = "Examples:\n  tfsync pull > backup.tfstate\n  tfsync pull -o backup.tfstate   # created 0600, written atomically"
    )]
    Pull(PullArgs),

    /// Upload a state under the lock, with `terraform state push` checks
    #[command(
        after_long_help = "Examples:\n  tfsync push network.tfstate\n  tfsync push --lock-timeout 2m network.tfstate\n  tfsync push --force restored.tfstate   # skip lineage/serial checks\n  tfsync push --lock-id \"$id\" edited.tfstate   # under a lock taken with `tfsync lock`"
    )]
    Push(PushArgs),

    /// Take the state lock and print its ID
    #[command(
        after_long_help = "Examples:\n  id=$(tfsync lock --operation maintenance --info 'rotating keys')\n  tfsync lock --wait 10m --output json"
    )]
    Lock(LockArgs),

    /// Release a lock you hold, by its ID
    #[command(after_long_help = "Example:\n  tfsync unlock 59fef1d5-d094-c52e-6aa5-e30279394a88")]
    Unlock(UnlockArgs),

    /// Break someone else's lock, after showing who holds it
    #[command(
        after_long_help = "Examples:\n  tfsync force-unlock 59fef1d5-d094-c52e-6aa5-e30279394a88\n  tfsync force-unlock --yes 59fef1d5-d094-c52e-6aa5-e30279394a88   # no terminal\n  tfsync force-unlock --older-than 2h 59fef1d5-d094-c52e-6aa5-e30279394a88   # only if stale\n  tfsync force-unlock --all --older-than 6h --prefix prod/ --yes   # every stale lock under prod/\n\nWith --older-than, each lock is read again right before it is deleted, and left in place\nif its ID changed or it is younger than the bound."
    )]
    ForceUnlock(ForceUnlockArgs),

    /// List the workspaces of the state key, with their lock and state
    #[command(
        after_long_help = "Lists workspaces as `terraform workspace list` finds them: `default`, then every W\nwhose state is exactly <workspace_key_prefix>/W/<key>, sorted.\n\nExamples:\n  tfsync list\n  tfsync list --output json | jq -r '.workspaces[] | select(.locked) | .name'"
    )]
    List,

    /// Show the state's root outputs, like `terraform output`
    #[command(
        after_long_help = "Sensitive values are masked (as <sensitive>, or null in JSON) unless --show-sensitive.\n\nExamples:\n  tfsync outputs\n  tfsync outputs --output json          # terraform output -json shape\n  tfsync outputs vpc_id --raw           # the bare string, no newline\n  tfsync outputs db_password --raw --show-sensitive"
    )]
    Outputs(OutputsArgs),

    /// Probe the bucket's provider: is locking safe there?
    #[command(
        after_long_help = "Writes scratch objects under <PREFIX>/<random uuid>/ and removes them afterwards, with\nevery version and delete marker. Needs only the bucket (no --key). Exit code 6 when locking\nis unsafe (a create-only PUT is not refused, or not after a delete).\n\nExamples:\n  tfsync doctor\n  tfsync doctor --output json | jq '.safe, .reasons'\n  tfsync --bucket tf-states --endpoint https://fra1.digitaloceanspaces.com doctor"
    )]
    Doctor(DoctorArgs),

    /// Print the resolved configuration and where each value came from
    #[command(
        after_long_help = "Sources, first that has a value wins: flag; backend \"s3\" block in *.tf of the current\ndirectory (or --chdir); .terraform/terraform.tfstate (terraform init); -f manifest labels;\nenvironment; the prompt (on a terminal); default. Credentials are never printed.\n\nExamples:\n  tfsync config\n  tfsync --chdir infra/prod config --output json\n  tfsync -f manifest.yaml --engine tofu config"
    )]
    Config,

    /// List every lock (`*.tflock`) under a prefix of the bucket
    #[command(
        after_long_help = "Needs only the bucket (no --key). Pages through any number of objects.\n\nExamples:\n  tfsync locks\n  tfsync locks --prefix env:/ --older-than 2h\n  tfsync locks --output json | jq -r '.locks[].state_key'"
    )]
    Locks(LocksArgs),

    /// Show the lock holder and a summary of the state
    #[command(
        after_long_help = "Examples:\n  tfsync status\n  tfsync status --output json | jq .lock"
    )]
    Status,

    /// Compare states with the MD5 digests Terraform keeps in its DynamoDB table; --fix repairs
    #[command(after_long_help = state::DIGEST_HELP)]
    Digest(DigestArgs),

    /// Copy every state under a prefix into a timestamped snapshot (incremental; never locks)
    #[command(after_long_help = backup::BACKUP_HELP)]
    Backup(BackupArgs),

    /// Put states from a backup snapshot back, under the lock, with the push rules
    #[command(after_long_help = backup::RESTORE_HELP)]
    Restore(RestoreArgs),

    /// Move a state and its workspaces to another bucket, prefix or provider, under both locks
    #[command(after_long_help = backup::MIGRATE_HELP)]
    Migrate(MigrateArgs),

    /// List the bucket versions of the state (versioned buckets)
    #[command(after_long_help = state::HISTORY_HELP)]
    History(HistoryArgs),

    /// Remove the noncurrent versions of `.tflock` objects in a versioned bucket
    #[command(after_long_help = bucket::PRUNE_LOCKS_HELP)]
    PruneLocks(PruneLocksArgs),

    /// Print a shell completion script on stdout (bash, zsh, fish, powershell, elvish)
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),

    /// Print the man page (roff) on stdout, or write one page per command into --dir
    #[command(after_long_help = MAN_HELP)]
    Man(ManArgs),
}

const COMPLETIONS_HELP: &str = "\
Examples:
  # bash (bash-completion 2 loads it on demand)
  tfsync completions bash > ~/.local/share/bash-completion/completions/tfsync

  # zsh: a directory on $fpath, then restart the shell (compinit)
  tfsync completions zsh > ~/.zfunc/_tfsync     # with fpath=(~/.zfunc $fpath) in ~/.zshrc

  # fish
  tfsync completions fish > ~/.config/fish/completions/tfsync.fish

  # PowerShell: add to $PROFILE
  tfsync completions powershell | Out-String | Invoke-Expression";

const MAN_HELP: &str = "\
Examples:
  tfsync man | man -l -                               # read it now
  tfsync man > ~/.local/share/man/man1/tfsync.1       # man tfsync
  sudo tfsync man --dir /usr/local/share/man/man1     # tfsync.1, tfsync-migrate.1, ...";

/// `tfsync completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `tfsync man [--dir DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write tfsync.1 and one page per command (tfsync-migrate.1...) into DIR instead
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Opts::command().debug_assert();
        command().debug_assert();
    }

    /// Every command (and nested command) has examples in its long help,
    /// and a short help that is shorter and points at it.
    #[test]
    fn every_command_has_examples_in_long_help() {
        fn walk(cmd: &mut clap::Command, path: &str, seen: &mut Vec<String>) {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            for name in names {
                if name == "help" {
                    continue;
                }
                let Some(sub) = cmd.find_subcommand_mut(&name) else {
                    continue;
                };
                let path = format!("{path} {name}");
                let long = sub.render_long_help().to_string();
                let short = sub.render_help().to_string();
                assert!(
                    long.contains("Example"),
                    "{path} --help has no example:\n{long}"
                );
                assert!(short.len() < long.len(), "{path}: -h is not shorter");
                assert!(short.contains("--help"), "{path} -h: {short}");
                seen.push(path.clone());
                walk(sub, &path, seen);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut seen = Vec::new();
        walk(&mut cmd, "tfsync", &mut seen);
        assert!(seen.len() > 15, "{seen:?}");
    }
}
