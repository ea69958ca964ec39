//! From parsed options to one validated `Config`.
//!
//! Precedence, first that has it wins: command-line flag; the `backend "s3"`
//! block in the `*.tf` files of the working directory (or `--chdir`), then
//! the backend settings `terraform init` recorded in
//! `.terraform/terraform.tfstate`; an OpenMCF manifest (`-f`); environment
//! variables (`TFSYNC_*`, then the standard AWS ones); an interactive prompt
//! for what is still missing, when stdin is a terminal; defaults.
//!
//! That order and every setting's sources are one table (`table.rs`); the
//! sub-resolvers ask it for their settings and build the runtime options:
//! `target.rs` (the settings files, the store, key, workspace, provider
//! preset, S3 connection), `write.rs` (encryption, ACL), `transport.rs`
//! (retries, rate limit, CA bundle), `lock_table.rs` (the DynamoDB table of
//! lock items and digests). What the table resolved, with each
//! source, is what `tfsync config` prints.

mod lock_table;
mod provider;
mod source;
mod sources;
mod table;
mod target;
mod transport;
mod write;

pub use provider::Provider;
pub use source::{Resolved, Source};
pub use sources::Engine;

use crate::cli::{GlobalOpts, OutputFormat};
use crate::error::Error;
use crate::store::dynamo::LockTableOptions;
use crate::store::local::LocalLayout;
use crate::store::s3::{S3Options, TransportOptions, WriteOptions};
use crate::tfstate::keys;
use std::path::{Path, PathBuf};

/// Where the states live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    S3(S3Options),
    Dir(PathBuf),
    /// Terraform's local backend (`store::local`).
    Local(LocalTarget),
    /// Terraform's azurerm backend (`store::azure`).
    Azure(AzureTarget),
    /// Terraform's gcs backend (`store::gcs`).
    Gcs(crate::store::gcs::GcsOptions),
}

/// An Azure storage container, with the account key.
#[derive(Clone, PartialEq, Eq)]
pub struct AzureTarget {
    pub endpoint: String,
    pub account: String,
    pub container: String,
    pub credential: AzureCredential,
}

/// How an Azure side authenticates, in Terraform's order: the account key
/// (`access_key` / `ARM_ACCESS_KEY`), else a SAS token (`sas_token` /
/// `ARM_SAS_TOKEN`).
#[derive(Clone, PartialEq, Eq)]
pub enum AzureCredential {
    AccessKey(String),
    SasToken(String),
}

impl std::fmt::Debug for AzureTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(
            f,
            "AzureTarget({}/{} at {})",
            self.account, self.container, self.endpoint
        )
    }
}

/// Azure's blob endpoint of `account` in the cloud `environment`
/// (Terraform's `environment` / `ARM_ENVIRONMENT`: `public`, the default,
/// `usgovernment` or `china`).
pub fn azure_default_endpoint(account: &str, environment: Option<&str>) -> Result<String, Error> {
    let suffix = match environment
        .map(|e| e.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "public") => "core.windows.net",
        Some("usgovernment") => "core.usgovcloudapi.net",
        Some("china") => "core.chinacloudapi.cn",
        Some(other) => {
            return Err(Error::Config(format!(
                "the azurerm environment {other:?} (environment / ARM_ENVIRONMENT) is not one tfsync knows: use public, usgovernment or china, or give the blob endpoint in TFSYNC_AZURE_ENDPOINT"
            )));
        }
    };
    Ok(format!("https://{account}.blob.{suffix}"))
}

/// An Azure side of a backup, restore or migration
/// (`az://account/container/prefix`), with its credentials from where the
/// azurerm backend takes them: the configured azurerm backend's when it is
/// the same storage account, else the environment (`ARM_ACCESS_KEY`, then
/// `ARM_SAS_TOKEN`). The
/// endpoint: the side's `--to-endpoint` / `--from-endpoint`, else the
/// configured backend's for the same account, else `TFSYNC_AZURE_ENDPOINT`,
/// else Azure's (in the cloud of `ARM_ENVIRONMENT`).
pub fn azure_side(
    account: &str,
    container: &str,
    endpoint: Option<&str>,
    source: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AzureTarget, Error> {
    let same = match &source.target {
        Target::Azure(a) if a.account == account => Some(a),
        _ => None,
    };
    let from_env = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
    };
    let endpoint = endpoint
        .map(str::to_string)
        .or_else(|| same.map(|a| a.endpoint.clone()))
        .or_else(|| from_env(table::AZ_ENDPOINT.env));
    let endpoint = match endpoint {
        Some(e) => e,
        None => azure_default_endpoint(account, from_env(table::AZ_ENVIRONMENT.env).as_deref())?,
    };
    let credential = same
        .map(|a| a.credential.clone())
        .or_else(|| from_env(table::AZ_ACCESS_KEY.env).map(AzureCredential::AccessKey))
        .or_else(|| from_env(table::AZ_SAS_TOKEN.env).map(AzureCredential::SasToken))
        .ok_or_else(|| {
            Error::Config(format!(
                "az://{account}/{container}: no credentials for the storage account {account}: set {} (its account key) or {} (a SAS token)",
                table::AZ_ACCESS_KEY.env.join(" or "),
                table::AZ_SAS_TOKEN.env.join(" or ")
            ))
        })?;
    Ok(AzureTarget {
        endpoint,
        account: account.to_string(),
        container: container.to_string(),
        credential,
    })
}

/// Terraform's local backend: a root directory and, beneath it, the
/// layout's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    /// The deepest directory holding both the state and the workspace
    /// directory (the working directory, unless `path` or `workspace_dir`
    /// leave it).
    pub root: PathBuf,
    pub layout: LocalLayout,
}

impl LocalTarget {
    /// `path` and `workspace_dir` as Terraform reads them: relative to the
    /// working directory `workdir`, or absolute.
    pub fn new(workdir: &Path, path: &str, workspace_dir: &str) -> Result<Self, String> {
        let base = std::path::absolute(workdir)
            .map_err(|e| format!("cannot resolve the working directory: {e}"))?;
        let abs = |p: &str| -> Result<Vec<String>, String> {
            let mut out: Vec<String> = Vec::new();
            for c in base.join(p).components() {
                use std::path::Component as C;
                match c {
                    C::RootDir | C::Prefix(_) => out.clear(),
                    C::CurDir => {}
                    C::ParentDir => {
                        out.pop();
                    }
                    C::Normal(n) => out.push(
                        n.to_str()
                            .ok_or_else(|| format!("{p:?} is not valid UTF-8"))?
                            .to_string(),
                    ),
                }
            }
            Ok(out)
        };
        let state = abs(path)?;
        let wsdir = abs(workspace_dir)?;
        if state.is_empty() || wsdir.is_empty() {
            return Err(format!(
                "the local backend's path {path:?} / workspace_dir {workspace_dir:?} name the root directory"
            ));
        }
        let common = state[..state.len() - 1]
            .iter()
            .zip(&wsdir)
            .take_while(|(a, b)| a == b)
            .count();
        let root: PathBuf = std::iter::once("/".to_string())
            .chain(state[..common].iter().cloned())
            .collect();
        let layout = LocalLayout {
            path: state[common..].join("/"),
            workspace_dir: wsdir[common..].join("/"),
        };
        if layout.workspace_dir.is_empty() {
            return Err(format!(
                "the local backend's workspace_dir {workspace_dir:?} contains its state path {path:?}: Terraform keeps them apart"
            ));
        }
        Ok(LocalTarget { root, layout })
    }
}

/// What a command needs configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A bucket (or directory) and a state key.
    State,
    /// A bucket (or directory) only.
    Bucket,
    /// Neither (`backup verify` reads only its `--from` location): the
    /// bucket and key are empty unless configured; the endpoint, region and
    /// profile are still resolved, for locations that inherit them.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub key: String,
    pub workspace: String,
    pub workspace_key_prefix: String,
    /// Where the workspaces' states are: the s3 backend's layout, the oss
    /// backend's (a `backend "oss"` block), the local or the azurerm one
    /// (see [`Config::states`]).
    pub layout: keys::Layout,
    pub output: OutputFormat,
    pub quiet: bool,
    pub verbose: bool,
    /// Warnings found while resolving (printed by the caller).
    pub warnings: Vec<String>,
    /// Every setting that has a value, and where it came from.
    pub sources: Vec<Resolved>,
    /// Encryption and ACL of everything written (S3 only).
    pub write: WriteOptions,
    /// Retry waits and request pacing (S3 only).
    pub transport: TransportOptions,
    /// The DynamoDB table of lock items and digests (S3 only).
    pub lock_table: Option<LockTableOptions>,
    /// `--max-state-size`: the largest state read from a file (or from a
    /// directory store), in bytes.
    pub max_state_size: u64,
}

/// The gcs backend's state of `workspace` under `prefix` (no leading or
/// trailing `/`): `path.Join(prefix, W + ".tfstate")`.
pub fn gcs_state_key(prefix: &str, workspace: &str) -> String {
    keys::StateLayout::new(keys::Layout::Gcs, "", prefix).state_key(workspace)
}

/// Asks for a missing setting (`name`, `hint`); `None` leaves it missing.
pub type Prompt<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

impl Config {
    /// Resolve `opts` with `env` as the process environment.
    pub fn resolve(
        opts: &GlobalOpts,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        Self::resolve_for(opts, env, Needs::State)
    }

    /// Like [`Config::resolve`], for a command that needs only `needs`: a
    /// bucket-wide command (`locks`, `force-unlock --all`) has no state key,
    /// and then `key` is empty.
    pub fn resolve_for(
        opts: &GlobalOpts,
        env: &dyn Fn(&str) -> Option<String>,
        needs: Needs,
    ) -> Result<Config, Error> {
        Self::resolve_with(opts, env, needs, None)
    }

    /// The single entry point: every source, and `prompt` (when stdin is a
    /// terminal) for the bucket and key no other source has.
    pub fn resolve_with(
        opts: &GlobalOpts,
        env: &dyn Fn(&str) -> Option<String>,
        needs: Needs,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Config, Error> {
        target::refuse_empty_flags(opts)?;
        let (dir, mut r) = target::sources(opts, env, prompt)?;
        let layout = target::layout(&r);
        let (store, key) = target::store_and_key(&mut r, opts, needs, layout, &dir)?;
        let workspace = target::workspace(&mut r, opts, &dir)?;
        if let target::Store::Local(local) = store {
            return Self::local(opts, r, local, key, workspace);
        }
        if let target::Store::Azure(azure) = store {
            // The CA bundle (for an https endpoint) and the other transport
            // settings, as for S3.
            let transport = transport::resolve(&mut r, opts)?;
            let mut c = Self::local_like(opts, r, Target::Azure(azure), key, workspace)?;
            c.transport = transport;
            c.workspace_key_prefix = String::new();
            c.layout = keys::Layout::Azure;
            return Ok(c);
        }
        if let target::Store::Gcs(gcs, prefix) = store {
            // `key` is the default workspace's state, `<prefix>/default.tfstate`.
            let mut c = Self::local_like(opts, r, Target::Gcs(gcs), key, workspace)?;
            c.workspace_key_prefix = prefix;
            c.layout = keys::Layout::Gcs;
            return Ok(c);
        }
        let provider = target::provider(&mut r, opts, layout)?;
        let workspace_key_prefix = target::workspace_key_prefix(&mut r, opts)?;
        let mut warnings = Vec::new();
        let (target, create_only_header) = match store {
            target::Store::Dir(d) => (Target::Dir(d), None),
            target::Store::Local(_) | target::Store::Azure(_) | target::Store::Gcs(..) => {
                unreachable!("returned above")
            }
            target::Store::Bucket(bucket) => {
                let (s3, header) = target::s3(&mut r, opts, bucket, provider, &mut warnings)?;
                (Target::S3(s3), header)
            }
        };
        let write = write::resolve(&mut r, opts, create_only_header, &mut warnings)?;
        let transport = transport::resolve(&mut r, opts)?;
        let max_state_size = transport::max_state_size(&mut r, opts)?;
        let lock_table = lock_table::resolve(&mut r, opts, &target, &mut warnings)?;
        target::backend_notes(&mut r, lock_table.is_some(), layout, &mut warnings)?;
        if matches!(target, Target::Dir(_)) && write != WriteOptions::default() {
            warnings.push(
                "encryption and ACL settings do not apply to a directory store (--dir)".into(),
            );
        }
        Ok(Config {
            target,
            key,
            workspace,
            workspace_key_prefix,
            layout,
            output: opts.output,
            quiet: opts.quiet,
            verbose: opts.verbose,
            warnings,
            sources: r.into_resolved(),
            write,
            transport,
            lock_table,
            max_state_size,
        })
    }

    /// The local backend's config: no S3, write or transport settings (a
    /// flag of those given anyway is only not used).
    fn local(
        opts: &GlobalOpts,
        r: table::Resolver<'_>,
        local: LocalTarget,
        key: String,
        workspace: String,
    ) -> Result<Config, Error> {
        let workspace_key_prefix = local.layout.workspace_dir.clone();
        let mut c = Self::local_like(opts, r, Target::Local(local), key, workspace)?;
        c.workspace_key_prefix = workspace_key_prefix;
        c.layout = keys::Layout::Local;
        Ok(c)
    }

    /// A config without S3, write or transport settings.
    fn local_like(
        opts: &GlobalOpts,
        mut r: table::Resolver<'_>,
        target: Target,
        key: String,
        workspace: String,
    ) -> Result<Config, Error> {
        let workspace_key_prefix = String::new();
        let max_state_size = transport::max_state_size(&mut r, opts)?;
        Ok(Config {
            target,
            key,
            workspace,
            workspace_key_prefix,
            layout: keys::Layout::S3,
            output: opts.output,
            quiet: opts.quiet,
            verbose: opts.verbose,
            warnings: Vec::new(),
            sources: r.into_resolved(),
            write: WriteOptions::default(),
            transport: TransportOptions::default(),
            lock_table: None,
            max_state_size,
        })
    }

    /// How the configured backend lays out its workspaces' states.
    pub fn states(&self) -> keys::StateLayout {
        keys::StateLayout::new(self.layout, &self.key, &self.workspace_key_prefix)
    }

    /// The key of the state of `workspace`, in the backend's layout.
    pub fn state_key_of(&self, workspace: &str) -> String {
        self.states().state_key(workspace)
    }

    /// The prefix to list to find the other workspaces.
    pub fn workspace_list_prefix(&self) -> String {
        self.states().list_prefix()
    }

    /// The workspace names found in a listing of
    /// [`Config::workspace_list_prefix`]: `default` first, then sorted.
    pub fn workspace_names<'a>(
        &self,
        object_keys: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        self.states().names(object_keys)
    }

    /// Attempts per request (`--max-attempts`), on every side of a command.
    pub fn max_attempts(&self) -> u32 {
        self.transport.max_attempts.max(1)
    }

    /// The key of the state of the configured workspace.
    pub fn state_key(&self) -> String {
        self.state_key_of(&self.workspace)
    }
}

#[cfg(test)]
mod tests;
