//! From parsed options to one validated `Config`.
//!
//! Precedence, first that has it wins: command-line flag; the `backend "s3"`
//! block in the `*.tf` files of the working directory (or `--chdir`), then
//! the backend settings `terraform init` recorded in
//! `.terraform/terraform.tfstate`; an OpenMCF manifest (`-f`); environment
//! variables (`TFSYNC_*`, then the standard AWS ones); an interactive prompt
//! for what is still missing, when stdin is a terminal; defaults.

mod provider;
mod sources;

pub use provider::Provider;

use crate::cli::{EngineArg, GlobalOpts, OutputFormat};
use crate::error::{Error, MissingSetting};
use crate::store::s3::{S3Options, TransportOptions, WriteOptions};
use crate::tfstate::keys;
use serde::Serialize;
use sources::{Engine, Layer};
use std::fmt;
use std::path::PathBuf;

/// Where the states live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    S3(S3Options),
    Dir(PathBuf),
}

/// What a command needs configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A bucket (or directory) and a state key.
    State,
    /// A bucket (or directory) only.
    Bucket,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    /// A `backend "s3"` block in this `.tf` file.
    BackendBlock(PathBuf),
    /// What `terraform init` recorded in `.terraform/`.
    TerraformInit(PathBuf),
    /// An OpenMCF manifest's label.
    Manifest(PathBuf, String),
    Env(&'static str),
    Prompt,
    Default(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag --{flag}"),
            Source::BackendBlock(p) => write!(f, "backend \"s3\" block in {}", p.display()),
            Source::TerraformInit(p) => write!(f, "terraform init: {}", p.display()),
            Source::Manifest(p, label) => write!(f, "manifest {}: label {label}", p.display()),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::Prompt => write!(f, "prompt"),
            Source::Default(why) => write!(f, "default ({why})"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// One resolved setting, for `tfsync config`. Never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub name: &'static str,
    pub value: String,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub key: String,
    pub workspace: String,
    pub workspace_key_prefix: String,
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
}

/// Asks for a missing setting (`name`, `hint`); `None` leaves it missing.
pub type Prompt<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

/// One setting and every place it can come from.
struct Spec {
    name: &'static str,
    flag: &'static str,
    /// Backend block / `terraform init` attribute names, first wins.
    backend: &'static [&'static str],
    /// OpenMCF setting (`bucket` -> label `.../backend.bucket`).
    manifest: Option<&'static str>,
    env: &'static [&'static str],
    /// May the value be empty (the workspace key prefix may)?
    empty_ok: bool,
}

const BUCKET: Spec = Spec {
    name: "bucket",
    flag: "bucket",
    backend: &["bucket"],
    manifest: Some("bucket"),
    env: &["TFSYNC_BUCKET"],
    empty_ok: false,
};
const KEY: Spec = Spec {
    name: "key",
    flag: "key",
    backend: &["key"],
    manifest: Some("key"),
    env: &["TFSYNC_KEY"],
    empty_ok: false,
};
const REGION: Spec = Spec {
    name: "region",
    flag: "region",
    backend: &["region"],
    manifest: Some("region"),
    env: &["TFSYNC_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"],
    empty_ok: false,
};
const ENDPOINT: Spec = Spec {
    name: "endpoint",
    flag: "endpoint",
    backend: &["endpoints.s3", "endpoint"],
    manifest: Some("endpoint"),
    env: &["TFSYNC_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
    empty_ok: false,
};
const WORKSPACE: Spec = Spec {
    name: "workspace",
    flag: "workspace",
    backend: &[],
    manifest: None,
    env: &["TFSYNC_WORKSPACE", "TF_WORKSPACE"],
    empty_ok: false,
};
const PREFIX: Spec = Spec {
    name: "workspace_key_prefix",
    flag: "workspace-key-prefix",
    backend: &["workspace_key_prefix"],
    manifest: None,
    env: &["TFSYNC_WORKSPACE_KEY_PREFIX"],
    empty_ok: true,
};
const PROFILE: Spec = Spec {
    name: "profile",
    flag: "profile",
    backend: &["profile"],
    manifest: None,
    env: &["AWS_PROFILE"],
    empty_ok: false,
};
const KMS: Spec = Spec {
    name: "kms_key_id",
    flag: "kms-key-id",
    backend: &["kms_key_id"],
    manifest: None,
    env: &["TFSYNC_KMS_KEY_ID"],
    empty_ok: false,
};
const ACL: Spec = Spec {
    name: "acl",
    flag: "acl",
    backend: &["acl"],
    manifest: None,
    env: &["TFSYNC_ACL"],
    empty_ok: false,
};
const DIR: Spec = Spec {
    name: "dir",
    flag: "dir",
    backend: &[],
    manifest: None,
    env: &["TFSYNC_DIR"],
    empty_ok: false,
};

/// Backend attributes shown by `tfsync config` but not (yet) acted on.
const BACKEND_INFO: &[&str] = &[
    "use_lockfile",
    "dynamodb_table",
    "skip_credentials_validation",
    "skip_region_validation",
    "skip_requesting_account_id",
    "skip_metadata_api_check",
    "skip_s3_checksum",
];

struct Layers<'a> {
    block: Option<Layer>,
    init: Option<Layer>,
    manifest: Option<Layer>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Layers<'_> {
    /// The first source after the flag that has `spec`.
    fn lookup(&self, spec: &Spec) -> Option<(String, Source)> {
        let ok = |v: &str| spec.empty_ok || !v.trim().is_empty();
        for (layer, wrap) in [
            (&self.block, Source::BackendBlock as fn(PathBuf) -> Source),
            (&self.init, Source::TerraformInit as fn(PathBuf) -> Source),
        ] {
            if let Some(l) = layer
                && let Some(v) = spec.backend.iter().find_map(|n| l.get(n).filter(|v| ok(v)))
            {
                return Some((v.to_string(), wrap(l.file.clone())));
            }
        }
        if let (Some(l), Some(m)) = (&self.manifest, spec.manifest)
            && let Some(v) = l.get(m).filter(|v| ok(v))
        {
            let label = l.get(&format!("label:{m}")).unwrap_or(m).to_string();
            return Some((v.to_string(), Source::Manifest(l.file.clone(), label)));
        }
        spec.env.iter().find_map(|name| {
            (self.env)(name)
                .filter(|v| ok(v))
                .map(|v| (v, Source::Env(name)))
        })
    }

    /// A backend attribute from the block, else from `terraform init`.
    fn backend(&self, name: &str) -> Option<(String, Source)> {
        for (layer, wrap) in [
            (&self.block, Source::BackendBlock as fn(PathBuf) -> Source),
            (&self.init, Source::TerraformInit as fn(PathBuf) -> Source),
        ] {
            if let Some(l) = layer
                && let Some(v) = l.get(name)
            {
                return Some((v.to_string(), wrap(l.file.clone())));
            }
        }
        None
    }
}

/// The flag for a transport setting's variable name.
fn fix_flag(source: &Source) -> Source {
    match source {
        Source::Flag(var) => Source::Flag(match *var {
            "TFSYNC_RETRY_MIN_WAIT" => "retry-min-wait",
            "TFSYNC_RETRY_MAX_WAIT" => "retry-max-wait",
            "TFSYNC_RATE_LIMIT" => "rate-limit",
            _ => "rate-burst",
        }),
        other => other.clone(),
    }
}

fn missing(spec: &Spec, name: &'static str) -> MissingSetting {
    MissingSetting {
        name,
        flag: spec.flag,
        env: spec.env[0],
        backend: spec.backend.first().copied(),
        label: match spec.manifest {
            Some("bucket") => Some("terraform.openmcf.org/backend.bucket"),
            Some("key") => Some("terraform.openmcf.org/backend.key"),
            _ => None,
        },
    }
}

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
        let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();
        let mut resolved: Vec<Resolved> = Vec::new();

        // A flag given empty is a mistake, not a reason to look further.
        for (flag, v) in [
            ("bucket", &opts.bucket),
            ("key", &opts.key),
            ("region", &opts.region),
            ("endpoint", &opts.endpoint),
            ("workspace", &opts.workspace),
            ("profile", &opts.profile),
        ] {
            if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(Error::Config(format!(
                    "--{flag} is empty: give it a value, or leave it out to use the other sources"
                )));
            }
        }
        let dir = opts.chdir.clone().unwrap_or_else(|| PathBuf::from("."));
        if opts.chdir.as_ref().is_some_and(|d| !d.is_dir()) {
            return Err(Error::Config(format!(
                "--chdir {}: no such directory",
                dir.display()
            )));
        }
        let engine = match opts.engine {
            Some(EngineArg::Tofu) => Engine::Tofu,
            Some(EngineArg::Terraform) => Engine::Terraform,
            None if env("TFSYNC_ENGINE").is_some_and(|e| e.trim() == "tofu") => Engine::Tofu,
            None => Engine::Terraform,
        };
        let layers = Layers {
            block: sources::tf_backend_block(&dir).map_err(Error::Config)?,
            init: sources::tf_init_state(&dir).map_err(Error::Config)?,
            manifest: opts
                .manifest
                .as_deref()
                .map(|f| sources::openmcf_manifest(f, engine))
                .transpose()
                .map_err(Error::Config)?,
            env,
        };

        // Flag first, then the other sources.
        let pick = |spec: &Spec, flag: &Option<String>| -> Option<(String, Source)> {
            let flag = if spec.empty_ok {
                flag.clone()
            } else {
                nonempty(flag)
            };
            match flag {
                Some(v) => Some((v, Source::Flag(spec.flag))),
                None => layers.lookup(spec),
            }
        };
        let take = |resolved: &mut Vec<Resolved>, spec: &Spec, found: Option<(String, Source)>| {
            let (value, source) = found?;
            resolved.push(Resolved {
                name: spec.name,
                value: value.clone(),
                source,
            });
            Some(value)
        };
        macro_rules! get {
            ($spec:expr, $flag:expr) => {
                take(&mut resolved, &$spec, pick(&$spec, $flag))
            };
        }

        let dir_store = get!(DIR, &opts.dir.as_ref().map(|d| d.display().to_string()));
        let mut bucket = get!(BUCKET, &opts.bucket);
        let mut key = get!(KEY, &opts.key);
        // On a terminal, ask for what no source has.
        if let Some(ask) = prompt {
            if bucket.is_none() && dir_store.is_none() {
                bucket = ask("bucket", "the bucket that holds the state")
                    .filter(|v| !v.trim().is_empty());
                if let Some(b) = &bucket {
                    resolved.push(Resolved {
                        name: "bucket",
                        value: b.clone(),
                        source: Source::Prompt,
                    });
                }
            }
            if key.is_none() && needs == Needs::State {
                key = ask(
                    "key",
                    "the state's key in the bucket, e.g. prod/terraform.tfstate",
                )
                .filter(|v| !v.trim().is_empty());
                if let Some(k) = &key {
                    resolved.push(Resolved {
                        name: "key",
                        value: k.clone(),
                        source: Source::Prompt,
                    });
                }
            }
        }
        let mut missing_list = Vec::new();
        if bucket.is_none() && dir_store.is_none() {
            missing_list.push(missing(&BUCKET, "bucket"));
        }
        let key = match (needs, key) {
            (_, Some(k)) => Some(k),
            (Needs::Bucket, None) => Some(String::new()),
            (Needs::State, None) => None,
        };
        if key.is_none() {
            missing_list.push(missing(&KEY, "state key"));
        }
        let (Some(key), true) = (key, missing_list.is_empty()) else {
            return Err(Error::MissingSettings(missing_list));
        };
        if needs == Needs::State || !key.is_empty() {
            keys::validate_key(&key).map_err(Error::Config)?;
        }

        let workspace = match get!(WORKSPACE, &opts.workspace) {
            Some(w) => w,
            None => match sources::tf_selected_workspace(&dir) {
                Some((w, file)) => {
                    resolved.push(Resolved {
                        name: "workspace",
                        value: w.clone(),
                        source: Source::TerraformInit(file),
                    });
                    w
                }
                None => {
                    resolved.push(Resolved {
                        name: "workspace",
                        value: keys::DEFAULT_WORKSPACE.into(),
                        source: Source::Default("Terraform's"),
                    });
                    keys::DEFAULT_WORKSPACE.into()
                }
            },
        };
        keys::validate_workspace(&workspace).map_err(Error::Config)?;
        // An empty prefix is meaningful (states at `W/<key>`), so only an unset one defaults.
        let provider = match (&opts.provider, env("TFSYNC_PROVIDER")) {
            (Some(p), _) => Some((p.clone(), Source::Flag("provider"))),
            (None, Some(p)) if !p.trim().is_empty() => Some((p, Source::Env("TFSYNC_PROVIDER"))),
            _ => None,
        };
        let provider = match provider {
            Some((name, source)) => {
                let p = Provider::parse(&name).ok_or_else(|| {
                    Error::Config(format!(
                        "unknown provider {name:?} ({source}): use aws, spaces, r2, minio, ceph, oss or gcs"
                    ))
                })?;
                resolved.push(Resolved {
                    name: "provider",
                    value: p.name().into(),
                    source,
                });
                Some(p)
            }
            None => None,
        };
        let preset_prefix = match provider {
            Some(p) => provider::apply(p, Some("https://x".into()), Some("x".into()), env)
                .ok()
                .and_then(|a| a.workspace_key_prefix),
            None => None,
        };
        let workspace_key_prefix = match get!(PREFIX, &opts.workspace_key_prefix) {
            Some(p) => p,
            None if preset_prefix.is_some() => {
                let p = preset_prefix.unwrap_or_default();
                resolved.push(Resolved {
                    name: "workspace_key_prefix",
                    value: p.into(),
                    source: Source::Default("--provider preset"),
                });
                p.into()
            }
            None => {
                resolved.push(Resolved {
                    name: "workspace_key_prefix",
                    value: keys::DEFAULT_WORKSPACE_KEY_PREFIX.into(),
                    source: Source::Default("Terraform's"),
                });
                keys::DEFAULT_WORKSPACE_KEY_PREFIX.into()
            }
        };
        keys::validate_prefix(&workspace_key_prefix).map_err(Error::Config)?;

        let mut create_only_header = None;
        let target = match (dir_store, bucket) {
            (Some(d), _) => Target::Dir(PathBuf::from(d)),
            (None, Some(bucket)) => {
                let mut endpoint = get!(ENDPOINT, &opts.endpoint);
                let mut region = get!(REGION, &opts.region);
                let mut preset_path_style = None;
                let mut credentials = None;
                if let Some(p) = provider {
                    let a = provider::apply(p, endpoint.clone(), region.clone(), env)
                        .map_err(Error::Config)?;
                    for (name, before, after) in [
                        ("endpoint", &endpoint, &a.endpoint),
                        ("region", &region, &a.region),
                    ] {
                        if before != after
                            && let Some(v) = after
                        {
                            resolved.retain(|r| r.name != name);
                            resolved.push(Resolved {
                                name: if name == "region" {
                                    "region"
                                } else {
                                    "endpoint"
                                },
                                value: v.clone(),
                                source: Source::Default("--provider preset"),
                            });
                        }
                    }
                    endpoint = a.endpoint;
                    region = a.region;
                    preset_path_style = a.path_style;
                    create_only_header = a.create_only_header;
                    if p == Provider::Oss
                        && let Some(c) = provider::alicloud_credentials(env)
                    {
                        resolved.push(Resolved {
                            name: "credentials",
                            value: "(set; never shown)".into(),
                            source: Source::Env("ALICLOUD_ACCESS_KEY"),
                        });
                        credentials = Some(c);
                    }
                }
                if let Some(ep) = &endpoint {
                    check_endpoint(ep, &mut warnings)?;
                }
                let profile = get!(PROFILE, &opts.profile);
                // S3-compatible servers are addressed path-style: virtual hosts
                // rarely resolve for them (and never for an IP address).
                let backend_path_style = ["use_path_style", "force_path_style"]
                    .iter()
                    .find_map(|n| layers.backend(n).filter(|(v, _)| v == "true"));
                let (path_style, source) = if opts.path_style {
                    (true, Some(Source::Flag("path-style")))
                } else if let Some((_, s)) = backend_path_style {
                    (true, Some(s))
                } else if let Some(v) = preset_path_style {
                    (v, Some(Source::Default("--provider preset")))
                } else if endpoint.is_some() {
                    (true, Some(Source::Default("custom endpoint")))
                } else {
                    (false, None)
                };
                if let Some(source) = source {
                    resolved.push(Resolved {
                        name: "path_style",
                        value: path_style.to_string(),
                        source,
                    });
                }
                Target::S3(S3Options {
                    bucket,
                    endpoint,
                    region,
                    profile,
                    path_style,
                    verbose: opts.verbose,
                    credentials,
                })
            }
            (None, None) => return Err(Error::MissingSettings(vec![missing(&BUCKET, "bucket")])),
        };

        // Backend attributes tfsync shows but does not act on.
        for name in BACKEND_INFO {
            if let Some((value, source)) = layers.backend(name) {
                resolved.push(Resolved {
                    name,
                    value,
                    source,
                });
            }
        }
        if layers.block.is_some() || layers.init.is_some() {
            match layers.backend("use_lockfile") {
                Some((v, _)) if v == "true" => {}
                _ => warnings.push(
                    "the backend \"s3\" configuration does not set use_lockfile = true: Terraform then does not take the .tflock lock, and tfsync's lock does not exclude it (DynamoDB locking is not supported)".into(),
                ),
            }
            if layers.backend("sse_customer_key").is_some() {
                warnings.push(
                    "the backend configuration sets sse_customer_key, which tfsync does not read from files: set AWS_SSE_CUSTOMER_KEY".into(),
                );
            }
        }

        // Encryption and ACL of the lock and the state, as Terraform applies them.
        let kms_key_id = get!(KMS, &opts.kms_key_id);
        let acl = get!(ACL, &opts.acl);
        let sse = match nonempty(&opts.sse) {
            Some(v) => Some((v, Source::Flag("sse"))),
            None => match layers.backend("encrypt") {
                Some((v, source)) if v == "true" => Some((
                    if kms_key_id.is_some() {
                        "aws:kms"
                    } else {
                        "AES256"
                    }
                    .to_string(),
                    source,
                )),
                _ => env("TFSYNC_SSE")
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v, Source::Env("TFSYNC_SSE")))
                    .or_else(|| {
                        kms_key_id
                            .as_ref()
                            .map(|_| ("aws:kms".to_string(), Source::Default("kms_key_id is set")))
                    }),
            },
        };
        if let Some((v, source)) = &sse {
            if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&v.as_str()) {
                return Err(Error::Config(format!(
                    "server-side encryption {v:?} ({source}) is not one of AES256, aws:kms, aws:kms:dsse"
                )));
            }
            if v == "AES256" && kms_key_id.is_some() {
                return Err(Error::Config(
                    "a KMS key was given with server-side encryption AES256: use aws:kms, or drop the key".into(),
                ));
            }
            resolved.push(Resolved {
                name: "sse",
                value: v.clone(),
                source: source.clone(),
            });
        }
        let sse_customer_key = env("AWS_SSE_CUSTOMER_KEY").filter(|v| !v.trim().is_empty());
        if let Some(k) = &sse_customer_key {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .unwrap_or_default();
            if raw.len() != 32 {
                return Err(Error::Config(
                    "AWS_SSE_CUSTOMER_KEY must be the base64 of a 256-bit (32-byte) key; its value is not shown".into(),
                ));
            }
            if sse.is_some() {
                return Err(Error::Config(
                    "AWS_SSE_CUSTOMER_KEY (SSE-C) cannot be combined with --sse / kms_key_id / encrypt".into(),
                ));
            }
            resolved.push(Resolved {
                name: "sse_customer_key",
                value: "(set; never shown)".into(),
                source: Source::Env("AWS_SSE_CUSTOMER_KEY"),
            });
        }
        let write = WriteOptions {
            sse: sse.map(|(v, _)| v),
            kms_key_id,
            acl,
            sse_customer_key: sse_customer_key.map(|k| k.trim().to_string()),
            create_only_header,
        };
        // Transport: flag, then environment, then the SDK's defaults.
        let dur = |flag: Option<std::time::Duration>,
                   var: &'static str|
         -> Result<Option<(std::time::Duration, Source)>, Error> {
            if let Some(d) = flag {
                return Ok(Some((d, Source::Flag(var))));
            }
            match env(var).filter(|v| !v.trim().is_empty()) {
                Some(v) => crate::cli::parse_duration(&v)
                    .map(|d| Some((d, Source::Env(var))))
                    .map_err(|e| Error::Config(format!("{var}: {e}"))),
                None => Ok(None),
            }
        };
        let num = |flag: Option<u32>, var: &'static str| -> Result<Option<(u32, Source)>, Error> {
            if let Some(n) = flag {
                return Ok(Some((n, Source::Flag(var))));
            }
            match env(var).filter(|v| !v.trim().is_empty()) {
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(|n| Some((n, Source::Env(var))))
                    .map_err(|_| Error::Config(format!("{var}={v:?} is not a whole number"))),
                None => Ok(None),
            }
        };
        let min_wait = dur(opts.retry_min_wait, "TFSYNC_RETRY_MIN_WAIT")?;
        let max_wait = dur(opts.retry_max_wait, "TFSYNC_RETRY_MAX_WAIT")?;
        let rate = num(opts.rate_limit, "TFSYNC_RATE_LIMIT")?;
        let burst = num(opts.rate_burst, "TFSYNC_RATE_BURST")?;
        if let (Some((a, _)), Some((b, _))) = (&min_wait, &max_wait)
            && a > b
        {
            return Err(Error::Config(
                "the retry min wait is longer than the max wait".into(),
            ));
        }
        if rate.as_ref().is_some_and(|(r, _)| *r == 0)
            || burst.as_ref().is_some_and(|(b, _)| *b == 0)
        {
            return Err(Error::Config(
                "the rate limit and burst must be at least 1".into(),
            ));
        }
        for (name, v) in [("retry_min_wait", &min_wait), ("retry_max_wait", &max_wait)] {
            if let Some((d, source)) = v {
                resolved.push(Resolved {
                    name,
                    value: format!("{d:?}"),
                    source: fix_flag(source),
                });
            }
        }
        for (name, v) in [("rate_limit", &rate), ("rate_burst", &burst)] {
            if let Some((n, source)) = v {
                resolved.push(Resolved {
                    name,
                    value: n.to_string(),
                    source: fix_flag(source),
                });
            }
        }
        let ca = match &opts.ca_bundle {
            Some(f) => Some((f.clone(), Source::Flag("ca-bundle"))),
            None => ["TFSYNC_CA_BUNDLE", "AWS_CA_BUNDLE"].iter().find_map(|v| {
                env(v)
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| (PathBuf::from(p), Source::Env(v)))
            }),
        };
        let ca_bundle = match ca {
            Some((file, source)) => {
                let pem = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(Error::Config(format!(
                        "the CA bundle {} ({source}) holds no PEM certificate",
                        file.display()
                    )));
                }
                resolved.push(Resolved {
                    name: "ca_bundle",
                    value: file.display().to_string(),
                    source,
                });
                Some(pem)
            }
            None => None,
        };
        let transport = TransportOptions {
            max_attempts: opts.max_attempts.max(1),
            retry_min_wait: min_wait.map(|(d, _)| d),
            retry_max_wait: max_wait.map(|(d, _)| d),
            rate_limit: rate.map(|(r, _)| (r, burst.map_or(1, |(b, _)| b))),
            ca_bundle,
        };
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
            output: opts.output,
            quiet: opts.quiet,
            verbose: opts.verbose,
            warnings,
            sources: resolved,
            write,
            transport,
        })
    }

    /// Attempts per request (`--max-attempts`), on every side of a command.
    pub fn max_attempts(&self) -> u32 {
        self.transport.max_attempts.max(1)
    }

    /// The key of the state of the configured workspace.
    pub fn state_key(&self) -> String {
        keys::state_key(&self.key, &self.workspace, &self.workspace_key_prefix)
    }
}

fn check_endpoint(ep: &str, warnings: &mut Vec<String>) -> Result<(), Error> {
    let rest = ep
        .strip_prefix("https://")
        .or_else(|| ep.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::Config(format!(
                "endpoint {ep:?} must start with http:// or https://"
            ))
        })?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() {
        return Err(Error::Config(format!("endpoint {ep:?} has no host")));
    }
    let hostname = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let loopback = hostname == "localhost"
        || hostname
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if ep.starts_with("http://") && !loopback {
        warnings.push(format!(
            "endpoint {ep} is plain http on a non-loopback host: requests and state contents travel unencrypted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(opts: GlobalOpts, env: &[(&str, &str)]) -> Result<Config, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve(&opts, &move |k| env.get(k).cloned())
    }

    fn base() -> GlobalOpts {
        GlobalOpts {
            bucket: Some("b".into()),
            key: Some("k.tfstate".into()),
            max_attempts: 4,
            ..Default::default()
        }
    }

    fn s3(c: &Config) -> &S3Options {
        match &c.target {
            Target::S3(o) => o,
            Target::Dir(_) => panic!("expected S3"),
        }
    }

    #[test]
    fn missing_values_are_named_together() {
        let err = resolve(GlobalOpts::default(), &[]).expect_err("error");
        let msg = err.to_string();
        assert!(msg.contains("--bucket or TFSYNC_BUCKET"), "{msg}");
        assert!(msg.contains("--key or TFSYNC_KEY"), "{msg}");
        assert_eq!(crate::exit::code(&err), crate::exit::USAGE);
    }

    #[test]
    fn endpoint_precedence() {
        let env = [
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:2"),
        ];
        let mut o = base();
        o.endpoint = Some("http://127.0.0.1:3".into());
        assert_eq!(
            s3(&resolve(o, &env).expect("ok")).endpoint.as_deref(),
            Some("http://127.0.0.1:3")
        );
        assert_eq!(
            s3(&resolve(base(), &env).expect("ok")).endpoint.as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            s3(&resolve(base(), &env[1..]).expect("ok"))
                .endpoint
                .as_deref(),
            Some("http://127.0.0.1:2")
        );
        let aws = resolve(base(), &[]).expect("ok");
        assert_eq!(s3(&aws).endpoint, None);
        assert!(
            !s3(&aws).path_style,
            "AWS keeps virtual-host addressing unless asked"
        );
        assert!(
            s3(&resolve(base(), &env).expect("ok")).path_style,
            "custom endpoints are path-style"
        );
    }

    #[test]
    fn region_and_profile_precedence() {
        let env = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-2"),
            ("AWS_PROFILE", "ops"),
        ];
        let mut o = base();
        o.region = Some("us-west-2".into());
        assert_eq!(
            s3(&resolve(o, &env).expect("ok")).region.as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            s3(&resolve(base(), &env).expect("ok")).region.as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            s3(&resolve(base(), &env[1..]).expect("ok"))
                .region
                .as_deref(),
            Some("eu-west-2")
        );
        assert_eq!(
            s3(&resolve(base(), &env).expect("ok")).profile.as_deref(),
            Some("ops")
        );
        let mut o = base();
        o.profile = Some("admin".into());
        assert_eq!(
            s3(&resolve(o, &env).expect("ok")).profile.as_deref(),
            Some("admin")
        );
    }

    #[test]
    fn workspace_keys() {
        let mut o = base();
        o.workspace = Some("dev".into());
        assert_eq!(
            resolve(o.clone(), &[]).expect("ok").state_key(),
            "env:/dev/k.tfstate"
        );
        o.workspace_key_prefix = Some("".into());
        assert_eq!(
            resolve(o.clone(), &[]).expect("ok").state_key(),
            "dev/k.tfstate"
        );
        o.workspace = Some("a/b".into());
        assert!(resolve(o, &[]).is_err());
    }

    #[test]
    fn endpoints_are_checked() {
        let mut o = base();
        o.endpoint = Some("ftp://x".into());
        assert!(resolve(o.clone(), &[]).is_err());
        o.endpoint = Some("http://s3.example.com".into());
        assert_eq!(resolve(o.clone(), &[]).expect("ok").warnings.len(), 1);
        o.endpoint = Some("http://[::1]:9000".into());
        assert!(resolve(o.clone(), &[]).expect("ok").warnings.is_empty());
        o.endpoint = Some("https://s3.example.com".into());
        assert!(resolve(o, &[]).expect("ok").warnings.is_empty());
    }

    /// A directory with every file source.
    fn project() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(
            d.path().join("main.tf"),
            r#"
terraform {
  required_version = ">= 1.11"
  backend "s3" {
    bucket               = "block-bucket"
    key                  = "block/terraform.tfstate"
    endpoints            = { s3 = "http://127.0.0.1:9000" }
    use_path_style       = true
    workspace_key_prefix = "ws"
    use_lockfile         = true
    skip_region_validation = true
  }
}
resource "null_resource" "x" {}
"#,
        )
        .expect("tf");
        std::fs::write(d.path().join("vars.tf"), "variable \"x\" {}\n").expect("tf");
        std::fs::create_dir(d.path().join(".terraform")).expect("dir");
        std::fs::write(
            d.path().join(".terraform/terraform.tfstate"),
            r#"{"version":3,"backend":{"type":"s3","config":{"bucket":"init-bucket","key":"init/terraform.tfstate","region":"eu-north-1","profile":"initprof","endpoints":null,"use_lockfile":true},"hash":1}}"#,
        )
        .expect("init");
        std::fs::write(d.path().join(".terraform/environment"), "staging\n").expect("env");
        d
    }

    fn manifest(dir: &std::path::Path) -> PathBuf {
        let f = dir.join("manifest.yaml");
        std::fs::write(
            &f,
            r#"apiVersion: aws.openmcf.org/v1
kind: AwsVpc
metadata:
  name: prod-vpc
  labels:
    terraform.openmcf.org/backend.type: s3
    terraform.openmcf.org/backend.bucket: mcf-bucket
    terraform.openmcf.org/backend.object: mcf/legacy.tfstate
    terraform.openmcf.org/backend.region: ap-south-1
    tofu.openmcf.org/backend.bucket: tofu-bucket
    tofu.openmcf.org/backend.endpoint: http://127.0.0.1:9100
spec: {}
"#,
        )
        .expect("manifest");
        f
    }

    fn source_of<'a>(c: &'a Config, name: &str) -> &'a Source {
        &c.sources
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} not resolved: {:?}", c.sources))
            .source
    }

    fn in_dir(d: &std::path::Path) -> GlobalOpts {
        GlobalOpts {
            chdir: Some(d.to_path_buf()),
            max_attempts: 4,
            ..Default::default()
        }
    }

    #[test]
    fn precedence_across_every_source() {
        let d = project();
        let env = [
            ("TFSYNC_BUCKET", "env-bucket"),
            ("AWS_REGION", "us-west-1"),
            ("TF_WORKSPACE", "fromenv"),
        ];
        // The backend block beats terraform init, the manifest and the environment.
        let mut o = in_dir(d.path());
        o.manifest = Some(manifest(d.path()));
        let c = resolve(o.clone(), &env).expect("ok");
        let s = s3(&c);
        assert_eq!(s.bucket, "block-bucket");
        assert!(
            matches!(source_of(&c, "bucket"), Source::BackendBlock(p) if p.ends_with("main.tf"))
        );
        assert_eq!(c.key, "block/terraform.tfstate");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s.path_style);
        assert!(matches!(
            source_of(&c, "path_style"),
            Source::BackendBlock(_)
        ));
        assert_eq!(c.workspace_key_prefix, "ws");
        // Not in the block: terraform init's record.
        assert_eq!(s.region.as_deref(), Some("eu-north-1"));
        assert!(matches!(source_of(&c, "region"), Source::TerraformInit(_)));
        assert_eq!(s.profile.as_deref(), Some("initprof"));
        // The workspace: the environment (as Terraform's TF_WORKSPACE) beats .terraform/environment.
        assert_eq!(c.workspace, "fromenv");
        assert_eq!(*source_of(&c, "workspace"), Source::Env("TF_WORKSPACE"));
        let c = resolve(o.clone(), &env[..2]).expect("ok");
        assert_eq!(c.workspace, "staging");
        assert!(matches!(
            source_of(&c, "workspace"),
            Source::TerraformInit(_)
        ));
        assert_eq!(c.state_key(), "ws/staging/block/terraform.tfstate");
        // Shown, not acted on.
        assert!(c.sources.iter().any(|r| r.name == "skip_region_validation"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        // Flags beat everything.
        let mut f = o.clone();
        f.bucket = Some("flag-bucket".into());
        f.region = Some("sa-east-1".into());
        let c = resolve(f, &env).expect("ok");
        assert_eq!(s3(&c).bucket, "flag-bucket");
        assert_eq!(*source_of(&c, "bucket"), Source::Flag("bucket"));
        assert_eq!(s3(&c).region.as_deref(), Some("sa-east-1"));

        // Without the block, terraform init's record is next.
        std::fs::remove_file(d.path().join("main.tf")).expect("rm");
        let c = resolve(o.clone(), &env).expect("ok");
        assert_eq!(s3(&c).bucket, "init-bucket");
        assert_eq!(c.key, "init/terraform.tfstate");
        assert_eq!(c.workspace_key_prefix, "env:", "default");
        assert!(matches!(
            source_of(&c, "workspace_key_prefix"),
            Source::Default(_)
        ));

        // Without .terraform either: the manifest, then the environment.
        std::fs::remove_dir_all(d.path().join(".terraform")).expect("rm");
        let c = resolve(o.clone(), &env).expect("ok");
        assert_eq!(s3(&c).bucket, "mcf-bucket");
        assert!(
            matches!(source_of(&c, "bucket"), Source::Manifest(_, l) if l == "terraform.openmcf.org/backend.bucket")
        );
        assert_eq!(
            c.key, "mcf/legacy.tfstate",
            "backend.object is a synonym of backend.key"
        );
        assert_eq!(s3(&c).region.as_deref(), Some("ap-south-1"));
        assert_eq!(
            s3(&c).endpoint,
            None,
            "the tofu. endpoint label is not read for Terraform"
        );
        // OpenTofu: tofu.* labels first, terraform.* as fallback.
        let mut t = o.clone();
        t.engine = Some(EngineArg::Tofu);
        let c = resolve(t, &env).expect("ok");
        assert_eq!(s3(&c).bucket, "tofu-bucket");
        assert_eq!(s3(&c).endpoint.as_deref(), Some("http://127.0.0.1:9100"));
        assert_eq!(c.key, "mcf/legacy.tfstate");
        let c = resolve(o.clone(), &[("TFSYNC_ENGINE", "tofu")]).expect("ok");
        assert_eq!(s3(&c).bucket, "tofu-bucket");

        // No manifest: the environment, then defaults.
        let mut e = in_dir(d.path());
        e.key = Some("k.tfstate".into());
        let c = resolve(e.clone(), &env).expect("ok");
        assert_eq!(s3(&c).bucket, "env-bucket");
        assert_eq!(*source_of(&c, "bucket"), Source::Env("TFSYNC_BUCKET"));
        assert_eq!(*source_of(&c, "region"), Source::Env("AWS_REGION"));
        let c = resolve(e, &[("TFSYNC_BUCKET", "b")]).expect("ok");
        assert!(matches!(source_of(&c, "workspace"), Source::Default(_)));
    }

    #[test]
    fn prompt_fills_only_what_is_missing() {
        let d = tempfile::tempdir().expect("tmp");
        let asked = std::cell::RefCell::new(Vec::new());
        let ask = |name: &str, _hint: &str| -> Option<String> {
            asked.borrow_mut().push(name.to_string());
            Some(format!("typed-{name}"))
        };
        let mut o = in_dir(d.path());
        o.key = Some("k.tfstate".into());
        let c = Config::resolve_with(&o, &|_| None, Needs::State, Some(&ask)).expect("ok");
        assert_eq!(s3(&c).bucket, "typed-bucket");
        assert_eq!(*source_of(&c, "bucket"), Source::Prompt);
        assert_eq!(*asked.borrow(), ["bucket"], "the key had a flag");
        // The environment beats the prompt.
        asked.borrow_mut().clear();
        let c = Config::resolve_with(
            &o,
            &|k| (k == "TFSYNC_BUCKET").then(|| "e".to_string()),
            Needs::State,
            Some(&ask),
        )
        .expect("ok");
        assert_eq!(s3(&c).bucket, "e");
        assert!(asked.borrow().is_empty());
    }

    #[test]
    fn non_interactive_missing_values_name_flag_label_and_variable() {
        let d = tempfile::tempdir().expect("tmp");
        let err = resolve(in_dir(d.path()), &[]).expect_err("missing");
        let msg = err.to_string();
        for needle in [
            "--bucket or TFSYNC_BUCKET",
            "terraform.openmcf.org/backend.bucket",
            "`bucket` in a backend \"s3\" block",
            "--key or TFSYNC_KEY",
            "terraform.openmcf.org/backend.key",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
        assert_eq!(crate::exit::code(&err), crate::exit::USAGE);
    }

    #[test]
    fn bad_sources_are_errors() {
        let d = tempfile::tempdir().expect("tmp");
        let f = d.path().join("m.yaml");
        std::fs::write(
            &f,
            "metadata:\n  labels:\n    terraform.openmcf.org/backend.type: gcs\n",
        )
        .expect("w");
        let mut o = in_dir(d.path());
        o.manifest = Some(f);
        assert!(
            resolve(o, &[])
                .expect_err("gcs")
                .to_string()
                .contains("gcs")
        );
        std::fs::write(
            d.path().join("a.tf"),
            "terraform {\n backend \"s3\" { bucket = \"a\" }\n}\n",
        )
        .expect("w");
        std::fs::write(
            d.path().join("b.tf"),
            "terraform {\n backend \"s3\" { bucket = \"b\" }\n}\n",
        )
        .expect("w");
        assert!(
            resolve(in_dir(d.path()), &[])
                .expect_err("two")
                .to_string()
                .contains("two backend")
        );
        std::fs::write(d.path().join("b.tf"), "terraform {\n").expect("w");
        assert!(
            resolve(in_dir(d.path()), &[])
                .expect_err("hcl")
                .to_string()
                .contains("not valid HCL")
        );
        // A block without use_lockfile: loud.
        std::fs::write(d.path().join("b.tf"), "# nothing\n").expect("w");
        let mut o = in_dir(d.path());
        o.key = Some("k".into());
        let c = resolve(o, &[]).expect("ok");
        assert!(
            c.warnings.iter().any(|w| w.contains("use_lockfile")),
            "{:?}",
            c.warnings
        );
    }
}
