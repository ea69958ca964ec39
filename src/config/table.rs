//! THE precedence table: every setting tfsync resolves, every place each can
//! come from, and the one order those places are tried in.
//!
//! Each sub-resolver (`target`, `write`, `transport`) asks the [`Resolver`]
//! for a setting of this table; the resolver walks the levels in [`LEVELS`]
//! order, keeps the first value found, and records it with its source. That
//! record is what `tfsync config` prints, so a setting cannot be resolved
//! without being shown.

use super::Prompt;
use super::source::{Resolved, Source};
use super::sources::Layer;
use crate::error::{Error, MissingSetting};

/// Where a value can come from, in precedence order (README, Configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The command-line flag.
    Flag,
    /// The `backend "s3"` block in the `*.tf` files.
    BackendBlock,
    /// What `terraform init` recorded in `.terraform/terraform.tfstate`.
    TerraformInit,
    /// An OpenMCF manifest's labels (`-f`).
    Manifest,
    /// Environment variables, in the order listed.
    Env,
    /// A question on the terminal (bucket and key only).
    Prompt,
    /// A default (Terraform's, tfsync's, a provider preset's, or derived
    /// from another setting).
    Default,
}

/// The order [`Lookup::get`] tries the levels in: first that has a value wins.
pub const LEVELS: [Level; 7] = [
    Level::Flag,
    Level::BackendBlock,
    Level::TerraformInit,
    Level::Manifest,
    Level::Env,
    Level::Prompt,
    Level::Default,
];

/// One setting and every place it can come from.
#[derive(Debug)]
pub struct Setting {
    /// Its name in `tfsync config`.
    pub name: &'static str,
    /// Its long flag, without the dashes.
    pub flag: Option<&'static str>,
    /// Backend block / `terraform init` attribute names, first wins.
    pub backend: &'static [&'static str],
    /// OpenMCF setting (`bucket` -> label `terraform.openmcf.org/backend.bucket`).
    pub label: Option<&'static str>,
    /// Environment variables, first wins.
    pub env: &'static [&'static str],
    /// May the value be empty (the workspace key prefix may)?
    pub empty_ok: bool,
    /// Shown as `(set; never shown)`.
    pub secret: bool,
}

impl Setting {
    const fn new(name: &'static str) -> Setting {
        Setting {
            name,
            flag: None,
            backend: &[],
            label: None,
            env: &[],
            empty_ok: false,
            secret: false,
        }
    }

    /// Does this setting come from `level` at all?
    pub fn has(&self, level: Level) -> bool {
        match level {
            Level::Flag => self.flag.is_some(),
            Level::BackendBlock | Level::TerraformInit => !self.backend.is_empty(),
            Level::Manifest => self.label.is_some(),
            Level::Env => !self.env.is_empty(),
            // Asked only where the sub-resolver says so (bucket and key).
            Level::Prompt => true,
            Level::Default => true,
        }
    }

    /// How the "missing configuration" error names this setting.
    pub fn missing(&self, name: &'static str) -> MissingSetting {
        MissingSetting {
            name,
            flag: self.flag.unwrap_or(self.name),
            env: self.env.first().copied().unwrap_or(""),
            backend: self.backend.first().copied(),
            label: match self.label {
                Some("bucket") => Some("terraform.openmcf.org/backend.bucket"),
                Some("key") => Some("terraform.openmcf.org/backend.key"),
                _ => None,
            },
        }
    }

    /// [`Setting::missing`], naming the label prefixes the manifest's engine
    /// reads (`tofu.openmcf.org/` first for OpenTofu).
    pub fn missing_in(&self, name: &'static str, r: &Resolver<'_>) -> MissingSetting {
        let mut m = self.missing(name);
        if r.manifest.as_ref().and_then(|l| l.get("engine")) == Some("tofu") {
            m.label = match self.label {
                Some("bucket") => Some(
                    "tofu.openmcf.org/backend.bucket (or terraform.openmcf.org/backend.bucket)",
                ),
                Some("key") => {
                    Some("tofu.openmcf.org/backend.key (or terraform.openmcf.org/backend.key)")
                }
                _ => m.label,
            };
        }
        m
    }
}

// ---- The table. One entry per setting, in `tfsync config` order. ----

pub const DIR: Setting = Setting {
    flag: Some("dir"),
    env: &["TFSYNC_DIR"],
    ..Setting::new("dir")
};
pub const BUCKET: Setting = Setting {
    flag: Some("bucket"),
    backend: &["bucket"],
    label: Some("bucket"),
    env: &["TFSYNC_BUCKET"],
    ..Setting::new("bucket")
};
pub const KEY: Setting = Setting {
    flag: Some("key"),
    backend: &["key"],
    label: Some("key"),
    env: &["TFSYNC_KEY"],
    ..Setting::new("key")
};
/// Default: `.terraform/environment` (what `terraform workspace select`
/// recorded), else `default`. So, as in Terraform, `TF_WORKSPACE` beats
/// `.terraform/environment`.
pub const WORKSPACE: Setting = Setting {
    flag: Some("workspace"),
    env: &["TFSYNC_WORKSPACE", "TF_WORKSPACE"],
    ..Setting::new("workspace")
};
pub const PROVIDER: Setting = Setting {
    flag: Some("provider"),
    env: &["TFSYNC_PROVIDER"],
    ..Setting::new("provider")
};
pub const WORKSPACE_KEY_PREFIX: Setting = Setting {
    flag: Some("workspace-key-prefix"),
    // An oss block's `prefix` is read under this name (sources.rs).
    backend: &["workspace_key_prefix"],
    env: &["TFSYNC_WORKSPACE_KEY_PREFIX"],
    empty_ok: true,
    ..Setting::new("workspace_key_prefix")
};
/// A provider preset may fill in or dictate it (`--provider`).
pub const ENDPOINT: Setting = Setting {
    flag: Some("endpoint"),
    backend: &["endpoints.s3", "endpoint"],
    label: Some("endpoint"),
    env: &["TFSYNC_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
    ..Setting::new("endpoint")
};
/// A provider preset may fill in or dictate it (`--provider`).
pub const REGION: Setting = Setting {
    flag: Some("region"),
    backend: &["region"],
    label: Some("region"),
    env: &["TFSYNC_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"],
    ..Setting::new("region")
};
/// OSS's `ALICLOUD_ACCESS_KEY` / `ALICLOUD_SECRET_KEY` (with `--provider oss`).
pub const CREDENTIALS: Setting = Setting {
    env: &["ALICLOUD_ACCESS_KEY"],
    secret: true,
    ..Setting::new("credentials")
};
pub const PROFILE: Setting = Setting {
    flag: Some("profile"),
    backend: &["profile"],
    env: &["AWS_PROFILE"],
    ..Setting::new("profile")
};
pub const PATH_STYLE: Setting = Setting {
    flag: Some("path-style"),
    backend: &["use_path_style", "force_path_style"],
    ..Setting::new("path_style")
};
pub const MAX_ATTEMPTS: Setting = Setting {
    flag: Some("max-attempts"),
    ..Setting::new("max_attempts")
};
/// A backend attribute shown by `tfsync config` but not (yet) acted on.
macro_rules! info {
    ($name:literal) => {
        Setting {
            backend: &[$name],
            ..Setting::new($name)
        }
    };
}
pub const BACKEND_INFO: &[Setting] = &[
    info!("use_lockfile"),
    info!("skip_credentials_validation"),
    info!("skip_region_validation"),
    info!("skip_requesting_account_id"),
    info!("skip_metadata_api_check"),
    info!("skip_s3_checksum"),
    // backend "oss": its lock table (tfsync cannot take that lock).
    info!("tablestore_endpoint"),
    info!("tablestore_table"),
];
pub const KMS_KEY_ID: Setting = Setting {
    flag: Some("kms-key-id"),
    backend: &["kms_key_id"],
    env: &["TFSYNC_KMS_KEY_ID"],
    ..Setting::new("kms_key_id")
};
pub const ACL: Setting = Setting {
    flag: Some("acl"),
    backend: &["acl"],
    env: &["TFSYNC_ACL"],
    ..Setting::new("acl")
};
/// Backend `encrypt = true`: aws:kms with a KMS key, SSE-C with a customer
/// key, else AES256; without it neither key is applied (as in Terraform).
pub const SSE: Setting = Setting {
    flag: Some("sse"),
    backend: &["encrypt"],
    env: &["TFSYNC_SSE"],
    ..Setting::new("sse")
};
/// Applied only with `encrypt` / `--sse` (as in Terraform).
pub const SSE_CUSTOMER_KEY: Setting = Setting {
    backend: &["sse_customer_key"],
    env: &["AWS_SSE_CUSTOMER_KEY"],
    secret: true,
    ..Setting::new("sse_customer_key")
};
pub const RETRY_MIN_WAIT: Setting = Setting {
    flag: Some("retry-min-wait"),
    env: &["TFSYNC_RETRY_MIN_WAIT"],
    ..Setting::new("retry_min_wait")
};
pub const RETRY_MAX_WAIT: Setting = Setting {
    flag: Some("retry-max-wait"),
    env: &["TFSYNC_RETRY_MAX_WAIT"],
    ..Setting::new("retry_max_wait")
};
pub const RATE_LIMIT: Setting = Setting {
    flag: Some("rate-limit"),
    env: &["TFSYNC_RATE_LIMIT"],
    ..Setting::new("rate_limit")
};
pub const RATE_BURST: Setting = Setting {
    flag: Some("rate-burst"),
    env: &["TFSYNC_RATE_BURST"],
    ..Setting::new("rate_burst")
};
pub const CA_BUNDLE: Setting = Setting {
    flag: Some("ca-bundle"),
    env: &["TFSYNC_CA_BUNDLE", "AWS_CA_BUNDLE"],
    ..Setting::new("ca_bundle")
};
/// Terraform's `dynamodb_table`: the lock items and state digests.
pub const DYNAMODB_TABLE: Setting = Setting {
    flag: Some("dynamodb-table"),
    backend: &["dynamodb_table"],
    env: &["TFSYNC_DYNAMODB_TABLE"],
    ..Setting::new("dynamodb_table")
};
/// Only with a table.
pub const DYNAMODB_ENDPOINT: Setting = Setting {
    flag: Some("dynamodb-endpoint"),
    backend: &["endpoints.dynamodb", "dynamodb_endpoint"],
    env: &["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"],
    ..Setting::new("dynamodb_endpoint")
};
pub const MAX_STATE_SIZE: Setting = Setting {
    flag: Some("max-state-size"),
    env: &["TFSYNC_MAX_STATE_SIZE"],
    ..Setting::new("max_state_size")
};
/// Read only with a manifest (it says whose labels come first): the flag,
/// the manifest's `openmcf.org/provisioner` label, the environment.
pub const ENGINE: Setting = Setting {
    flag: Some("engine"),
    label: Some("provisioner"),
    env: &["TFSYNC_ENGINE"],
    ..Setting::new("engine")
};
/// The manifest label prefixes read, from the engine (shown with the
/// engine's source).
pub const MANIFEST_LABELS: Setting = Setting::new("manifest_labels");

/// Every setting of the table (the backend attributes shown as information
/// are in [`BACKEND_INFO`]).
#[cfg(test)]
pub const ALL: &[&Setting] = &[
    &DIR,
    &BUCKET,
    &KEY,
    &WORKSPACE,
    &PROVIDER,
    &WORKSPACE_KEY_PREFIX,
    &ENDPOINT,
    &REGION,
    &CREDENTIALS,
    &PROFILE,
    &PATH_STYLE,
    &MAX_ATTEMPTS,
    &KMS_KEY_ID,
    &ACL,
    &SSE,
    &SSE_CUSTOMER_KEY,
    &RETRY_MIN_WAIT,
    &RETRY_MAX_WAIT,
    &RATE_LIMIT,
    &RATE_BURST,
    &CA_BUNDLE,
    &DYNAMODB_TABLE,
    &DYNAMODB_ENDPOINT,
    &MAX_STATE_SIZE,
    &ENGINE,
    &MANIFEST_LABELS,
];

/// The backend type, when a block, `terraform init` or a manifest names one
/// other than s3 (resolved only then, so an s3 configuration shows no row).
pub const BACKEND: Setting = Setting {
    backend: &["type"],
    label: Some("type"),
    ..Setting::new("backend")
};
/// `backend "local"`: the default workspace's state.
pub const LOCAL_PATH: Setting = Setting {
    backend: &["path"],
    ..Setting::new("path")
};
/// `backend "local"`: the directory of the other workspaces' states.
pub const LOCAL_WORKSPACE_DIR: Setting = Setting {
    backend: &["workspace_dir"],
    ..Setting::new("workspace_dir")
};

/// `backend "azurerm"`: the storage account.
/// OpenMCF's labels have no account: a manifest's account comes from
/// `AZURE_STORAGE_ACCOUNT` (the Azure CLI's variable; Terraform's backend
/// reads none).
pub const AZ_ACCOUNT: Setting = Setting {
    backend: &["storage_account_name"],
    env: &["AZURE_STORAGE_ACCOUNT"],
    ..Setting::new("storage_account_name")
};
/// `backend "azurerm"`: the container.
/// In an OpenMCF manifest, `backend.bucket` (OpenMCF's `--backend-bucket`
/// is the "bucket/container name").
pub const AZ_CONTAINER: Setting = Setting {
    backend: &["container_name"],
    label: Some("bucket"),
    ..Setting::new("container_name")
};
/// `backend "azurerm"`: the account key (never shown).
pub const AZ_ACCESS_KEY: Setting = Setting {
    backend: &["access_key"],
    env: &["ARM_ACCESS_KEY"],
    secret: true,
    ..Setting::new("access_key")
};
/// `backend "azurerm"`: a SAS token (never shown), used when no account
/// key is given (Terraform's order).
pub const AZ_SAS_TOKEN: Setting = Setting {
    backend: &["sas_token"],
    env: &["ARM_SAS_TOKEN"],
    secret: true,
    ..Setting::new("sas_token")
};
/// `backend "azurerm"`: the cloud (`public`, `usgovernment`, `china`),
/// which names the default blob endpoint's suffix.
pub const AZ_ENVIRONMENT: Setting = Setting {
    backend: &["environment"],
    env: &["ARM_ENVIRONMENT"],
    ..Setting::new("environment")
};
/// The blob endpoint (tfsync's: Azurite); default
/// `https://<account>.blob.core.windows.net`.
pub const AZ_ENDPOINT: Setting = Setting {
    env: &["TFSYNC_AZURE_ENDPOINT"],
    ..Setting::new("azure_endpoint")
};

/// `backend "gcs"`: the directory of the states in the bucket (`prefix`;
/// an OpenMCF manifest's `backend.key`).
pub const GCS_PREFIX: Setting = Setting {
    backend: &["prefix"],
    label: Some("key"),
    env: &["TFSYNC_GCS_PREFIX"],
    empty_ok: true,
    ..Setting::new("prefix")
};
/// `backend "gcs"`: `storage_custom_endpoint` (tfsync's TFSYNC_GCS_ENDPOINT
/// first: the emulator); default `https://storage.googleapis.com`.
pub const GCS_ENDPOINT: Setting = Setting {
    backend: &["storage_custom_endpoint"],
    env: &[
        "TFSYNC_GCS_ENDPOINT",
        "GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT",
        "GOOGLE_STORAGE_CUSTOM_ENDPOINT",
    ],
    ..Setting::new("storage_custom_endpoint")
};
/// `backend "gcs"`: a static OAuth 2 access token (never shown).
pub const GCS_ACCESS_TOKEN: Setting = Setting {
    backend: &["access_token"],
    env: &["GOOGLE_OAUTH_ACCESS_TOKEN"],
    secret: true,
    ..Setting::new("access_token")
};
/// `backend "gcs"`: a service account key, a path or the JSON (never shown).
pub const GCS_CREDENTIALS: Setting = Setting {
    backend: &["credentials"],
    env: &["GOOGLE_BACKEND_CREDENTIALS", "GOOGLE_CREDENTIALS"],
    secret: true,
    ..Setting::new("gcs_credentials")
};
/// `backend "gcs"`: the customer-supplied encryption key (never shown).
pub const GCS_ENCRYPTION_KEY: Setting = Setting {
    backend: &["encryption_key"],
    env: &["GOOGLE_ENCRYPTION_KEY"],
    secret: true,
    ..Setting::new("encryption_key")
};
/// `backend "gcs"`: the Cloud KMS key of state writes.
pub const GCS_KMS_KEY: Setting = Setting {
    backend: &["kms_encryption_key"],
    env: &["GOOGLE_KMS_ENCRYPTION_KEY"],
    ..Setting::new("kms_encryption_key")
};

/// The process environment (or a test's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A flag's text, unless it is empty (then the other levels are asked).
pub fn given(flag: &Option<String>) -> Option<String> {
    flag.clone().filter(|v| !v.trim().is_empty())
}

/// The sources other than flags, and the record of what was resolved.
pub struct Resolver<'a> {
    block: Option<Layer>,
    init: Option<Layer>,
    manifest: Option<Layer>,
    pub env: Env<'a>,
    prompt: Option<Prompt<'a>>,
    resolved: Vec<Resolved>,
}

impl<'a> Resolver<'a> {
    /// A resolver with flags, the environment, the prompt and defaults
    /// only; [`Resolver::read_files`] adds the files.
    pub fn new(env: Env<'a>, prompt: Option<Prompt<'a>>) -> Self {
        Resolver {
            block: None,
            init: None,
            manifest: None,
            env,
            prompt,
            resolved: Vec::new(),
        }
    }

    /// The backend block, `terraform init`'s record and the manifest.
    pub fn read_files(
        &mut self,
        block: Option<Layer>,
        init: Option<Layer>,
        manifest: Option<Layer>,
    ) {
        self.block = block;
        self.init = init;
        self.manifest = manifest;
    }

    /// Look up a text setting.
    pub fn text<'r>(&'r mut self, setting: &'static Setting) -> Lookup<'r, 'a, String> {
        self.typed(setting, &text_value, &String::clone)
    }

    /// Look up a setting whose text (from a file, the environment or the
    /// prompt) `parse` turns into a `T`; `show` is how `tfsync config`
    /// prints it.
    pub fn typed<'r, T>(
        &'r mut self,
        setting: &'static Setting,
        parse: Parse<'r, T>,
        show: &'r dyn Fn(&T) -> String,
    ) -> Lookup<'r, 'a, T> {
        Lookup {
            r: self,
            setting,
            flag: None,
            parse,
            backend: None,
            show,
            prompt: None,
            default: None,
        }
    }

    /// A value decided after the lookup by a provider preset, which the
    /// provider leaves no choice about or fills in (shown as
    /// `default (--provider preset)`, after what was resolved so far).
    pub fn preset(&mut self, setting: &Setting, value: &str) {
        self.resolved.retain(|x| x.name != setting.name);
        self.resolved.push(Resolved {
            name: setting.name,
            value: value.to_string(),
            source: Source::Default("--provider preset"),
        });
    }

    /// The backend type the files name, first that has one: the block,
    /// `terraform init`'s record, the manifest (`None`: s3, or none named).
    pub fn backend_type(&self) -> Option<&str> {
        [&self.block, &self.init, &self.manifest]
            .into_iter()
            .flatten()
            .find_map(|l| l.get("type"))
            .filter(|t| *t != "s3")
    }

    /// Was an OpenMCF manifest given (`-f`)?
    pub fn has_manifest(&self) -> bool {
        self.manifest.is_some()
    }

    /// Is there a backend configuration (a block or `terraform init`'s)?
    pub fn has_backend(&self) -> bool {
        self.block.is_some() || self.init.is_some()
    }

    /// A backend attribute, from the block, else from `terraform init`
    /// (for warnings about attributes that are no setting).
    pub fn backend_attr(&self, name: &str) -> Option<&str> {
        [&self.block, &self.init]
            .into_iter()
            .flatten()
            .find_map(|l| l.get(name))
    }

    /// What was resolved, in resolution order.
    pub fn into_resolved(self) -> Vec<Resolved> {
        self.resolved
    }

    fn record(&mut self, setting: &Setting, value: String, source: Source) {
        let value = if setting.secret {
            "(set; never shown)".to_string()
        } else {
            value
        };
        self.resolved.push(Resolved {
            name: setting.name,
            value,
            source,
        });
    }
}

fn text_value(v: &str, _: &Source) -> Result<String, Error> {
    Ok(v.to_string())
}

/// Reads a setting's text from a file, the environment or the prompt; the
/// source is for messages.
pub type Parse<'r, T> = &'r dyn Fn(&str, &Source) -> Result<T, Error>;

/// Reads a backend attribute; `None`: the attribute turns the setting off.
pub type ReadBackend<'r, T> = &'r dyn Fn(&str) -> Option<T>;

/// One setting being looked up: what its flag says, how its text reads, and
/// its prompt and default. [`Lookup::get`] tries the levels in order.
#[must_use = "a lookup does nothing until `get`"]
pub struct Lookup<'r, 'a, T> {
    r: &'r mut Resolver<'a>,
    setting: &'static Setting,
    flag: Option<T>,
    parse: Parse<'r, T>,
    backend: Option<ReadBackend<'r, T>>,
    show: &'r dyn Fn(&T) -> String,
    prompt: Option<&'static str>,
    default: Option<(T, Source)>,
}

impl<'r, T> Lookup<'r, '_, T> {
    /// The flag's value, if given.
    pub fn flag(mut self, value: Option<T>) -> Self {
        self.flag = value;
        self
    }

    /// How a backend attribute reads, when not as [`Resolver::typed`]'s
    /// `parse`; `None` means the attribute turns the setting off (e.g.
    /// `encrypt = false`): the next backend source is not asked.
    pub fn backend(mut self, read: ReadBackend<'r, T>) -> Self {
        self.backend = Some(read);
        self
    }

    /// Ask on the terminal (when there is one and `ask`), with `hint`.
    pub fn prompt(mut self, ask: bool, hint: &'static str) -> Self {
        if ask {
            self.prompt = Some(hint);
        }
        self
    }

    /// The value when no source has one.
    pub fn default(mut self, value: Option<T>, source: Source) -> Self {
        self.default = value.map(|v| (v, source));
        self
    }

    /// The first level that has a value, recorded with its source.
    pub fn get(self) -> Result<Option<T>, Error> {
        Ok(self.get_sourced()?.map(|(v, _)| v))
    }

    /// [`Lookup::get`], with the source (for messages about the value).
    pub fn get_sourced(mut self) -> Result<Option<(T, Source)>, Error> {
        // A backend source that turns the setting off (`encrypt = false`)
        // hides the next backend source, not the levels after them.
        let mut backend_off = false;
        for level in LEVELS {
            if !self.setting.has(level) || (backend_off && level == Level::TerraformInit) {
                continue;
            }
            match self.at(level)? {
                Step::Found(v, source) => {
                    self.r.record(self.setting, (self.show)(&v), source.clone());
                    return Ok(Some((v, source)));
                }
                Step::Off => backend_off = true,
                Step::Nothing => {}
            }
        }
        Ok(None)
    }

    /// What `level` says.
    fn at(&mut self, level: Level) -> Result<Step<T>, Error> {
        let s = self.setting;
        let usable = |v: &&str| s.empty_ok || !v.trim().is_empty();
        let text = |text: &str, source: Source| -> Result<Step<T>, Error> {
            Ok(Step::Found((self.parse)(text, &source)?, source))
        };
        match level {
            Level::Flag => Ok(match self.flag.take() {
                Some(v) => Step::Found(v, Source::Flag(s.flag.unwrap_or(s.name))),
                None => Step::Nothing,
            }),
            Level::BackendBlock | Level::TerraformInit => {
                let layer = if level == Level::BackendBlock {
                    &self.r.block
                } else {
                    &self.r.init
                };
                let Some(l) = layer else {
                    return Ok(Step::Nothing);
                };
                // Named after the block's backend type (`s3` when unsaid).
                let kind = l.get("type").unwrap_or("s3").to_string();
                let wrap = |file: std::path::PathBuf| match (level, kind.as_str()) {
                    (Level::TerraformInit, _) => Source::TerraformInit(file),
                    (_, "s3") => Source::BackendBlock(file),
                    (_, "local") => Source::LocalBlock(file),
                    (_, other) => Source::OtherBlock(other.to_string(), file),
                };
                let mut step = Step::Nothing;
                for v in s.backend.iter().filter_map(|n| l.get(n).filter(usable)) {
                    let source = wrap(l.file.clone());
                    match self.backend {
                        None => return text(v, source),
                        Some(read) => match read(v) {
                            Some(v) => return Ok(Step::Found(v, source)),
                            None => step = Step::Off,
                        },
                    }
                }
                Ok(step)
            }
            Level::Manifest => {
                let (Some(l), Some(m)) = (&self.r.manifest, s.label) else {
                    return Ok(Step::Nothing);
                };
                match l.get(m).filter(usable) {
                    Some(v) => {
                        let label = l.get(&format!("label:{m}")).unwrap_or(m).to_string();
                        text(v, Source::Manifest(l.file.clone(), label))
                    }
                    None => Ok(Step::Nothing),
                }
            }
            Level::Env => {
                for name in s.env {
                    if let Some(v) = (self.r.env)(name).filter(|v| usable(&v.as_str())) {
                        return text(&v, Source::Env(name));
                    }
                }
                Ok(Step::Nothing)
            }
            Level::Prompt => {
                let (Some(hint), Some(ask)) = (self.prompt, self.r.prompt) else {
                    return Ok(Step::Nothing);
                };
                match ask(s.name, hint).filter(|v| !v.trim().is_empty()) {
                    Some(v) => text(&v, Source::Prompt),
                    None => Ok(Step::Nothing),
                }
            }
            Level::Default => Ok(match self.default.take() {
                Some((v, source)) => Step::Found(v, source),
                None => Step::Nothing,
            }),
        }
    }
}

/// What one level says about a setting.
enum Step<T> {
    Found(T, Source),
    /// A backend attribute that turns the setting off.
    Off,
    Nothing,
}
