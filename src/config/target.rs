//! Where the states are: the settings files (`--chdir`, `-f`), the store (a
//! directory or a bucket), the state key, the workspace and its key prefix,
//! the provider preset and the S3 connection settings.

use super::provider::{self, Provider};
use super::sources::{self, Engine};
use super::table::{self, Resolver, given};
use super::{Needs, Prompt, Source};
use crate::cli::GlobalOpts;
use crate::error::Error;
use crate::store::s3::S3Options;
use crate::tfstate::keys;
use clap::ValueEnum;
use std::path::{Path, PathBuf};

/// A flag given empty is a mistake, not a reason to look further.
pub(super) fn refuse_empty_flags(opts: &GlobalOpts) -> Result<(), Error> {
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
    Ok(())
}

/// The resolver over every source: the directory's backend block and
/// `terraform init` record, and the manifest (read for `--engine`).
/// Returns the directory too (for `.terraform/environment`).
pub(super) fn sources<'a>(
    opts: &GlobalOpts,
    env: table::Env<'a>,
    prompt: Option<Prompt<'a>>,
) -> Result<(PathBuf, Resolver<'a>), Error> {
    let dir = opts.chdir.clone().unwrap_or_else(|| PathBuf::from("."));
    if opts.chdir.as_ref().is_some_and(|d| !d.is_dir()) {
        return Err(Error::Config(format!(
            "--chdir {}: no such directory",
            dir.display()
        )));
    }
    let mut r = Resolver::new(env, prompt);
    let manifest = match &opts.manifest {
        Some(file) => {
            // The manifest's provisioner label picks whose labels are read
            // (`--engine` / TFSYNC_ENGINE override it, as in the table).
            let m = sources::read_manifest(file).map_err(Error::Config)?;
            r.read_files(None, None, Some(m.provisioner_layer()));
            let (engine, why) = r
                .typed(&table::ENGINE, &engine_value, &|e| name_of(*e))
                .flag(opts.engine)
                .default(Some(Engine::Terraform), Source::Default("tfsync's"))
                .get_sourced()?
                .unwrap_or((Engine::Terraform, Source::Default("tfsync's")));
            let prefixes: Vec<String> = engine
                .label_prefixes()
                .iter()
                .map(|p| format!("{p}/backend.*"))
                .collect();
            r.text(&table::MANIFEST_LABELS)
                .default(Some(prefixes.join(", then ")), why)
                .get()?;
            Some(m.backend(engine).map_err(Error::Config)?)
        }
        None => None,
    };
    r.read_files(
        sources::tf_backend_block(&dir).map_err(Error::Config)?,
        sources::tf_init_state(&dir).map_err(Error::Config)?,
        manifest,
    );
    Ok((dir, r))
}

/// `TFSYNC_ENGINE`: `tofu`, anything else is Terraform. The manifest's
/// `openmcf.org/provisioner`: `terraform` or `tofu` (any case), else an error.
fn engine_value(v: &str, source: &Source) -> Result<Engine, Error> {
    if let Source::Manifest(file, _) = source {
        return Engine::from_provisioner(v, file).map_err(Error::Config);
    }
    Ok(if v.trim() == "tofu" {
        Engine::Tofu
    } else {
        Engine::Terraform
    })
}

fn name_of(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// The store before it is complete: a directory, or a bucket (empty when
/// the command needs none, `Needs::Nothing`).
pub(super) enum Store {
    Dir(PathBuf),
    Bucket(String),
    Local(super::LocalTarget),
    Azure(super::AzureTarget),
    /// The gcs store and the prefix (no leading or trailing `/`).
    Gcs(crate::store::gcs::GcsOptions, String),
}

/// A `credentials` / `encryption_key` value: a file's contents when it
/// names a file, else the value itself (Terraform's `readPathOrContents`).
fn path_or_contents(v: &str, what: &str) -> Result<String, Error> {
    let p = v.trim();
    let expanded = match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| std::path::Path::new(&h).join(rest))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => PathBuf::from(p),
    };
    if !p.starts_with('{') && p.len() < 4096 && expanded.is_file() {
        return std::fs::read_to_string(&expanded).map_err(|e| {
            Error::Config(format!(
                "cannot read the {what} file {}: {e}",
                expanded.display()
            ))
        });
    }
    Ok(v.to_string())
}

/// Terraform's gcs backend, when a `backend "gcs"` block (or `terraform
/// init`'s record, or a manifest with `backend.type: gcs`) names it and no
/// `--bucket` or `--dir` flag says otherwise. Returns the store's options,
/// the prefix and the default workspace's state key.
fn gcs_target(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
) -> Result<Option<(crate::store::gcs::GcsOptions, String, String)>, Error> {
    use crate::store::gcs::{DEFAULT_ENDPOINT, GcsAuth, GcsOptions};
    if opts.bucket.is_some() || opts.dir.is_some() || r.backend_type() != Some("gcs") {
        return Ok(None);
    }
    r.text(&table::BACKEND).get()?;
    let Some(bucket) = r.text(&table::BUCKET).get()? else {
        return Err(Error::MissingSettings(vec![
            table::BUCKET.missing_in("bucket", r),
        ]));
    };
    // Terraform: `strings.TrimLeft(prefix, "/")`, then one trailing `/`.
    let prefix = r
        .text(&table::GCS_PREFIX)
        .get()?
        .unwrap_or_default()
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    keys::validate_prefix(&prefix).map_err(Error::Config)?;
    let endpoint = r
        .text(&table::GCS_ENDPOINT)
        .default(Some(DEFAULT_ENDPOINT.into()), Source::Default("Google's"))
        .get()?
        .unwrap_or_default();
    crate::store::gcs::origin_of(&endpoint).map_err(Error::Config)?;
    let token = r.text(&table::GCS_ACCESS_TOKEN).get()?;
    let credentials = r.text(&table::GCS_CREDENTIALS).get()?;
    let encryption_key = r.text(&table::GCS_ENCRYPTION_KEY).get()?;
    let kms_key = r.text(&table::GCS_KMS_KEY).get()?;
    if encryption_key.is_some() && kms_key.is_some() {
        return Err(Error::Config(
            "can't set both encryption_key and kms_encryption_key (as Terraform's gcs backend refuses)".into(),
        ));
    }
    let auth = match (token, credentials) {
        (Some(t), _) => GcsAuth::Token(t),
        (None, Some(c)) => GcsAuth::ServiceAccountJson(path_or_contents(&c, "credentials")?),
        (None, None) if endpoint.starts_with("http://") => GcsAuth::Anonymous,
        (None, None) => GcsAuth::Default,
    };
    let encryption_key = match encryption_key {
        Some(k) => Some(path_or_contents(&k, "encryption_key")?.trim().to_string()),
        None => None,
    };
    let key = super::gcs_state_key(&prefix, keys::DEFAULT_WORKSPACE);
    Ok(Some((
        GcsOptions {
            bucket,
            endpoint,
            auth,
            encryption_key,
            kms_key,
            verbose: opts.verbose,
        },
        prefix,
        key,
    )))
}

/// Terraform's azurerm backend, when a `backend "azurerm"` block (or
/// `terraform init`'s record, or a manifest) names it and no `--bucket` or
/// `--dir` flag says otherwise: its account, container and key; the
/// account key from `access_key` or `ARM_ACCESS_KEY`, else a SAS token from
/// `sas_token` or `ARM_SAS_TOKEN` (Azure AD is not supported yet).
fn azure_target(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
) -> Result<Option<super::AzureTarget>, Error> {
    if opts.bucket.is_some() || opts.dir.is_some() || r.backend_type() != Some("azurerm") {
        return Ok(None);
    }
    r.text(&table::BACKEND).get()?;
    let account = r.text(&table::AZ_ACCOUNT).get()?;
    let container = r.text(&table::AZ_CONTAINER).get()?;
    let access_key = r.text(&table::AZ_ACCESS_KEY).get()?;
    // Terraform's order: the key, else the SAS token (asked only then, so
    // `tfsync config` shows the one used).
    let credential = match access_key {
        Some(k) => Some(super::AzureCredential::AccessKey(k)),
        None => r
            .text(&table::AZ_SAS_TOKEN)
            .get()?
            .map(super::AzureCredential::SasToken),
    };
    let (Some(account), Some(container), Some(credential)) = (account, container, credential)
    else {
        return Err(Error::Config(
            "the azurerm backend needs storage_account_name (in its block, or AZURE_STORAGE_ACCOUNT: an OpenMCF manifest has no label for it) and container_name (a manifest's backend.bucket), and the account key in access_key or ARM_ACCESS_KEY, or a SAS token in sas_token or ARM_SAS_TOKEN (Azure AD is not supported yet)".into(),
        ));
    };
    let environment = r.text(&table::AZ_ENVIRONMENT).get()?;
    // An unknown cloud matters only when no endpoint is given.
    let default = super::azure_default_endpoint(&account, environment.as_deref());
    let endpoint = r
        .text(&table::AZ_ENDPOINT)
        .default(default.as_ref().ok().cloned(), Source::Default("Azure's"))
        .get()?;
    let endpoint = match endpoint {
        Some(e) => e,
        None => default?,
    };
    Ok(Some(super::AzureTarget {
        endpoint,
        account,
        container,
        credential,
    }))
}

/// Terraform's local backend, when the configuration says so: a `backend
/// "local"` block (or `terraform init`'s record of one), an OpenMCF
/// manifest's `backend.type: local`, or a working directory with no backend
/// at all (`sources::default_local`), no manifest, and no bucket or
/// directory from the environment. A `--bucket` or `--dir` flag always wins.
fn local_target(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    dir: &Path,
) -> Result<Option<super::LocalTarget>, Error> {
    if opts.bucket.is_some() || opts.dir.is_some() {
        return Ok(None);
    }
    let explicit = r.backend_type() == Some("local");
    let implicit = r.backend_type().is_none()
        && !r.has_backend()
        && !r.has_manifest()
        && (r.env)("TFSYNC_BUCKET").is_none()
        && (r.env)("TFSYNC_DIR").is_none()
        && sources::default_local(dir);
    if !(explicit || implicit) {
        if let Some(t) = r.backend_type()
            && !sources::BACKENDS.contains(&t)
        {
            return Err(Error::Config(format!(
                "backend type {t:?} is not supported by tfsync ({} are)",
                sources::BACKENDS.join(", ")
            )));
        }
        return Ok(None);
    }
    if explicit {
        r.text(&table::BACKEND).get()?;
    } else {
        r.text(&table::BACKEND)
            .default(
                Some("local".into()),
                Source::Default("Terraform's: no backend block"),
            )
            .get()?;
    }
    let path = r
        .text(&table::LOCAL_PATH)
        .default(
            Some(crate::store::local::WORKSPACE_STATE_NAME.into()),
            Source::Default("Terraform's"),
        )
        .get()?
        .unwrap_or_default();
    let workspace_dir = r
        .text(&table::LOCAL_WORKSPACE_DIR)
        .default(
            Some(crate::store::local::DEFAULT_WORKSPACE_DIR.into()),
            Source::Default("Terraform's"),
        )
        .get()?
        .unwrap_or_default();
    super::LocalTarget::new(dir, &path, &workspace_dir)
        .map(Some)
        .map_err(Error::Config)
}

/// The oss layout when the backend configuration is a `backend "oss"`
/// block (or what `terraform init` recorded for one).
pub(super) fn layout(r: &Resolver<'_>) -> keys::Layout {
    if r.backend_attr("type") == Some("oss") {
        keys::Layout::Oss
    } else {
        keys::Layout::S3
    }
}

/// The store and the state key (empty when the command needs none).
pub(super) fn store_and_key(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    needs: Needs,
    layout: keys::Layout,
    workdir: &Path,
) -> Result<(Store, String), Error> {
    if let Some((gcs, prefix, key)) = gcs_target(r, opts)? {
        return Ok((Store::Gcs(gcs, prefix), key));
    }
    if let Some(azure) = azure_target(r, opts)? {
        let key = r
            .text(&table::KEY)
            .flag(given(&opts.key))
            .get()?
            .ok_or_else(|| Error::MissingSettings(vec![table::KEY.missing("state key")]))?;
        keys::validate_key(&key).map_err(Error::Config)?;
        return Ok((Store::Azure(azure), key));
    }
    if let Some(local) = local_target(r, opts, workdir)? {
        let key = local.layout.path.clone();
        return Ok((Store::Local(local), key));
    }
    let oss = layout == keys::Layout::Oss;
    let dir = r
        .text(&table::DIR)
        .flag(opts.dir.as_ref().map(|d| d.display().to_string()))
        .get()?;
    // On a terminal, ask for what no source has.
    let bucket = r
        .text(&table::BUCKET)
        .flag(given(&opts.bucket))
        .prompt(
            dir.is_none() && needs != Needs::Nothing,
            "the bucket that holds the state",
        )
        .get()?;
    let key = r
        .text(&table::KEY)
        .flag(given(&opts.key))
        .prompt(
            needs == Needs::State && !oss,
            "the state's key in the bucket, e.g. prod/terraform.tfstate",
        )
        .default(
            oss.then(|| "terraform.tfstate".to_string()),
            Source::Default("Terraform's oss backend"),
        )
        .get()?;
    let mut missing = Vec::new();
    if bucket.is_none() && dir.is_none() && needs != Needs::Nothing {
        missing.push(table::BUCKET.missing_in("bucket", r));
    }
    let key = match (needs, key) {
        (_, Some(k)) => Some(k),
        (Needs::Bucket | Needs::Nothing, None) => Some(String::new()),
        (Needs::State, None) => None,
    };
    if key.is_none() {
        missing.push(table::KEY.missing_in("state key", r));
    }
    let (Some(key), true) = (key, missing.is_empty()) else {
        return Err(Error::MissingSettings(missing));
    };
    if needs == Needs::State || !key.is_empty() {
        keys::validate_key(&key).map_err(Error::Config)?;
    }
    let store = match dir {
        Some(d) => Store::Dir(PathBuf::from(d)),
        None => Store::Bucket(bucket.unwrap_or_default()),
    };
    Ok((store, key))
}

/// The workspace; its default is what `terraform workspace select` recorded
/// in `.terraform/environment`, else `default`.
pub(super) fn workspace(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    dir: &Path,
) -> Result<String, Error> {
    let (default, source) = match sources::tf_selected_workspace(dir) {
        Some((w, file)) => (w, Source::TerraformInit(file)),
        None => (
            keys::DEFAULT_WORKSPACE.to_string(),
            Source::Default("Terraform's"),
        ),
    };
    let workspace = r
        .text(&table::WORKSPACE)
        .flag(given(&opts.workspace))
        .default(Some(default), source)
        .get()?
        .unwrap_or_default();
    keys::validate_workspace(&workspace).map_err(Error::Config)?;
    Ok(workspace)
}

/// The `--provider` preset, if any; `oss` for a `backend "oss"` block.
pub(super) fn provider(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    layout: keys::Layout,
) -> Result<Option<Provider>, Error> {
    let parse = |v: &str, source: &Source| {
        Provider::parse(v)
            .map_err(|e| Error::Config(format!("unknown provider {v:?} ({source}): {e}")))
    };
    r.typed(&table::PROVIDER, &parse, &|p| p.name())
        .flag(opts.provider)
        .default(
            (layout == keys::Layout::Oss).then_some(Provider::Oss),
            Source::Default("backend \"oss\""),
        )
        .get()
}

/// The workspace key prefix (the oss backend's `prefix`): `env:` unless
/// set, for the s3 and the oss backend alike (and `--provider oss`). An
/// empty prefix is meaningful (states at `W/<key>`), so only an unset one
/// defaults.
pub(super) fn workspace_key_prefix(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
) -> Result<String, Error> {
    let prefix = r
        .text(&table::WORKSPACE_KEY_PREFIX)
        .flag(opts.workspace_key_prefix.clone())
        .default(
            Some(keys::DEFAULT_WORKSPACE_KEY_PREFIX.to_string()),
            Source::Default("Terraform's"),
        )
        .get()?
        .unwrap_or_default();
    keys::validate_prefix(&prefix).map_err(Error::Config)?;
    Ok(prefix)
}

/// The S3 connection settings of `bucket`, and the create-only header the
/// provider needs on the lock, if any.
pub(super) fn s3(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    bucket: String,
    provider: Option<Provider>,
    warnings: &mut Vec<String>,
) -> Result<(S3Options, Option<(String, String)>), Error> {
    let endpoint = r.text(&table::ENDPOINT).flag(given(&opts.endpoint)).get()?;
    let region = r.text(&table::REGION).flag(given(&opts.region)).get()?;
    let mut preset_path_style = None;
    let mut create_only_header = None;
    let mut credentials = None;
    let (endpoint, region) = match provider {
        None => (endpoint, region),
        Some(p) => {
            let a = provider::apply(p, endpoint.clone(), region.clone(), r.env)
                .map_err(Error::Config)?;
            for (setting, before, after) in [
                (&table::ENDPOINT, &endpoint, &a.endpoint),
                (&table::REGION, &region, &a.region),
            ] {
                if before != after
                    && let Some(v) = after
                {
                    r.preset(setting, v);
                }
            }
            preset_path_style = a.path_style;
            create_only_header = a.create_only_header;
            if p == Provider::Oss
                && let Some(c) = provider::alicloud_credentials(r.env)
            {
                credentials = r
                    .typed(&table::CREDENTIALS, &|_, _| Ok(c.clone()), &|_| {
                        String::new()
                    })
                    .get()?;
            }
            (a.endpoint, a.region)
        }
    };
    if let Some(ep) = &endpoint {
        check_endpoint(ep, warnings)?;
    }
    let profile = r.text(&table::PROFILE).flag(given(&opts.profile)).get()?;
    // S3-compatible servers are addressed path-style: virtual hosts rarely
    // resolve for them (and never for an IP address).
    let (default, why) = match preset_path_style {
        Some(v) => (Some(v), "--provider preset"),
        None => (endpoint.is_some().then_some(true), "custom endpoint"),
    };
    let path_style = r
        .typed(
            &table::PATH_STYLE,
            &|v, _| Ok(v == "true"),
            &bool::to_string,
        )
        .flag(opts.path_style.then_some(true))
        .backend(&|v| (v == "true").then_some(true))
        .default(default, Source::Default(why))
        .get()?
        .unwrap_or(false);
    Ok((
        S3Options {
            bucket,
            endpoint,
            region,
            profile,
            path_style,
            verbose: opts.verbose,
            credentials,
        },
        create_only_header,
    ))
}

/// Backend attributes tfsync shows but does not act on, and warnings about
/// the backend configuration.
pub(super) fn backend_notes(
    r: &mut Resolver<'_>,
    lock_table: bool,
    layout: keys::Layout,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    for setting in table::BACKEND_INFO {
        r.text(setting).get()?;
    }
    if layout == keys::Layout::Oss {
        warnings.push(OSS_LOCK_NOTE.into());
    } else if r.has_backend() {
        // With a table, Terraform takes the lock item, and so does tfsync.
        if r.backend_attr("use_lockfile") != Some("true") && !lock_table {
            warnings.push(
                "the backend \"s3\" configuration does not set use_lockfile = true: Terraform then does not take the .tflock lock, and tfsync's lock does not exclude it (with a DynamoDB table, set dynamodb_table or --dynamodb-table: tfsync then takes the lock item too)".into(),
            );
        }
        if r.backend_attr("sse_customer_key").is_some() {
            warnings.push(
                "the backend configuration sets sse_customer_key: a key kept in a file travels with it (version control, backups, .terraform/); set AWS_SSE_CUSTOMER_KEY instead".into(),
            );
        }
    }
    Ok(())
}

/// What tfsync cannot do on a `backend "oss"` layout.
const OSS_LOCK_NOTE: &str = "backend \"oss\": its lock lives in Alibaba TableStore (tablestore_table), which tfsync can neither read nor take: the lock state tfsync shows is not Terraform's, and lock, unlock and state writes are refused (push --lock=false writes without a lock, like terraform -lock=false: only if you are sure no one else writes)";

pub(super) fn check_endpoint(ep: &str, warnings: &mut Vec<String>) -> Result<(), Error> {
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
