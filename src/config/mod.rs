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
use crate::store::local::{LocalLayout, WORKSPACE_STATE_NAME};

/// azurerm's `keyEnvPrefix`.
pub const AZURE_ENV_PREFIX: &str = "env:";
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
    pub access_key: String,
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
    /// Where the workspaces' states are: the s3 backend's layout, or the oss
    /// backend's (a `backend "oss"` block).
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
    if prefix.is_empty() {
        format!("{workspace}{}", keys::STATE_SUFFIX)
    } else {
        format!("{prefix}/{workspace}{}", keys::STATE_SUFFIX)
    }
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
            let mut c = Self::local_like(opts, r, Target::Azure(azure), key, workspace)?;
            c.workspace_key_prefix = String::new();
            return Ok(c);
        }
        if let target::Store::Gcs(gcs, prefix) = store {
            // `key` is the default workspace's state, `<prefix>/default.tfstate`.
            let mut c = Self::local_like(opts, r, Target::Gcs(gcs), key, workspace)?;
            c.workspace_key_prefix = prefix;
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

    /// The file name of a non-default workspace's state: the backend key
    /// for s3 (`<prefix>/W/<key>`), always `terraform.tfstate` for the
    /// local backend (`<workspace_dir>/W/terraform.tfstate`).
    pub fn workspace_state_name(&self) -> &str {
        match &self.target {
            Target::Local(_) => WORKSPACE_STATE_NAME,
            _ => &self.key,
        }
    }

    /// The key of the state of `workspace`, in the backend's layout (the
    /// local backend's workspaces are `<workspace_dir>/W/terraform.tfstate`).
    pub fn state_key_of(&self, workspace: &str) -> String {
        if let Target::Local(_) = &self.target {
            if workspace == keys::DEFAULT_WORKSPACE {
                return self.key.clone();
            }
            return keys::state_key(WORKSPACE_STATE_NAME, workspace, &self.workspace_key_prefix);
        }
        if let Target::Gcs(_) = self.target {
            // gcs: `path.Join(prefix, W + ".tfstate")`.
            return gcs_state_key(&self.workspace_key_prefix, workspace);
        }
        if let Target::Azure(_) = self.target {
            if workspace == keys::DEFAULT_WORKSPACE {
                return self.key.clone();
            }
            // azurerm: `<key>env:<W>` (`keyEnvPrefix`).
            return format!("{}{AZURE_ENV_PREFIX}{workspace}", self.key);
        }
        keys::state_key_in(
            self.layout,
            &self.key,
            workspace,
            &self.workspace_key_prefix,
        )
    }

    /// The prefix to list to find the other workspaces.
    pub fn workspace_list_prefix(&self) -> String {
        match self.target {
            Target::Azure(_) => format!("{}{AZURE_ENV_PREFIX}", self.key),
            Target::Gcs(_) if self.workspace_key_prefix.is_empty() => String::new(),
            Target::Gcs(_) => format!("{}/", self.workspace_key_prefix),
            _ => crate::tfstate::workspaces::list_prefix(&self.workspace_key_prefix),
        }
    }

    /// The workspace names found in a listing of
    /// [`Config::workspace_list_prefix`]: `default` first, then sorted.
    pub fn workspace_names<'a>(
        &self,
        object_keys: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        match self.target {
            Target::Gcs(_) => {
                // Terraform's `Workspaces`: a listing with delimiter `/`,
                // the base names ending in `.tfstate`.
                let prefix = self.workspace_list_prefix();
                let mut found: Vec<String> = object_keys
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(prefix.as_str()))
                    .filter(|rest| !rest.contains('/'))
                    .filter_map(|rest| rest.strip_suffix(keys::STATE_SUFFIX))
                    .filter(|w| {
                        keys::validate_workspace(w).is_ok() && *w != keys::DEFAULT_WORKSPACE
                    })
                    .map(str::to_string)
                    .collect();
                found.sort();
                found.dedup();
                let mut out = vec![keys::DEFAULT_WORKSPACE.to_string()];
                out.extend(found);
                out
            }
            Target::Azure(_) => {
                let prefix = self.workspace_list_prefix();
                let mut found: Vec<String> = object_keys
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(prefix.as_str()))
                    .filter(|w| {
                        keys::validate_workspace(w).is_ok() && *w != keys::DEFAULT_WORKSPACE
                    })
                    .map(str::to_string)
                    .collect();
                found.sort();
                found.dedup();
                let mut out = vec![keys::DEFAULT_WORKSPACE.to_string()];
                out.extend(found);
                out
            }
            _ => crate::tfstate::workspaces::names(
                object_keys,
                self.workspace_state_name(),
                &self.workspace_key_prefix,
            ),
        }
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
