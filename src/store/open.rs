//! The one place a store is built.
//!
//! A resolved [`Config`] (the configured target) or a backup / migration
//! [`Location`] (with its `--to-*` / `--from-*` settings and the source's
//! config) becomes a [`Store`] with every option applied: credentials,
//! endpoint, region, addressing, provider preset, SSE / KMS / SSE-C / ACL,
//! CA bundle, retry attempts and waits, rate limit. Nothing else in the
//! crate builds an `S3Store` or an `FsStore`, so no command can drop a
//! setting by building its own.
//!
//! # What each side inherits
//!
//! The configured target gets everything the config says. Another side of a
//! command (the destination of `backup` and `migrate`, the backup location
//! `restore` and `backup verify` read) gets:
//!
//! - **transport options, always** (`--max-attempts`, `--retry-min-wait`,
//!   `--retry-max-wait`, `--rate-limit`/`--rate-burst`, `--ca-bundle`): they
//!   describe the client and the network it runs on, not a server. Each side
//!   has its own rate limiter at the same rate (the limit is per server).
//! - **write options (SSE, KMS key id, SSE-C key, ACL, the provider's
//!   create-only header) only on the source's own server**: an S3 side with
//!   the source's endpoint, region and profile (what it gets when it names
//!   none of them: no `--to-*`/`--from-*` flag, no remote) is the source's
//!   server and account, and gets the source's write options whole. So a
//!   backup or a migration there writes its objects encrypted as the states
//!   are (an SSE-C state does not become a plain snapshot), `restore` and
//!   `backup verify` read such a snapshot with the same SSE-C key, and a
//!   server-side copy reads its source and writes its copy with the one
//!   key. A side on another endpoint, region or profile starts afresh: a
//!   KMS key id, an ACL and a create-only header belong to an account and a
//!   provider, and an SSE-C key sent to a server that never saw it (or that
//!   refuses SSE-C, as Ceph RGW does over plain http) only makes its reads
//!   fail. Objects written there get the bucket's default encryption.
//! - **the DynamoDB lock table (`--dynamodb-table`) only on the source's
//!   own server**, as the write options: a migration to another bucket there
//!   takes the destination's lock item too and stores its digest (the
//!   LockIDs name the bucket, so one table serves many buckets, as in
//!   Terraform). A side elsewhere has no table.
//! - a directory (`file:///dir`) has no write or transport options.
//!
//! With a directory source (`--dir`) there is no source server: an S3 side
//! then gets transport options only (the config already warns that
//! encryption settings do not apply to `--dir`).

use super::ObjectStore;
use super::fs::FsStore;
use super::local::{LocalLayout, LocalStore};
use super::s3::{S3Builder, S3Store, WriteOptions};
use crate::config::{Config, Target};
use crate::error::Error;
use crate::location::{self, Location, SideSettings, join};
use std::path::PathBuf;

/// A built store, typed: commands that need S3-only requests (versions,
/// the doctor's probe) use [`Store::as_s3`] instead of connecting again.
#[derive(Debug)]
pub enum Store {
    S3(S3Store),
    Dir(FsStore),
    /// Terraform's local backend.
    Local(LocalStore),
    /// Terraform's azurerm backend (boxed: its TLS client is large).
    Azure(Box<super::azure::AzureStore>),
    /// Terraform's gcs backend (boxed: its client is large).
    Gcs(Box<super::gcs::GcsStore>),
}

impl Store {
    /// The store behind the common trait.
    #[allow(clippy::should_implement_trait)]
    pub fn as_ref(&self) -> &(dyn ObjectStore + 'static) {
        match self {
            Store::S3(s) => s,
            Store::Dir(d) => d,
            Store::Local(l) => l,
            Store::Azure(a) => a.as_ref(),
            Store::Gcs(g) => g.as_ref(),
        }
    }

    /// The S3 store, or `None` for a directory.
    pub fn as_s3(&self) -> Option<&S3Store> {
        match self {
            Store::S3(s) => Some(s),
            Store::Dir(_) | Store::Local(_) | Store::Azure(_) | Store::Gcs(_) => None,
        }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn ObjectStore;

    fn deref(&self) -> &Self::Target {
        self.as_ref()
    }
}

impl AsRef<dyn ObjectStore> for Store {
    fn as_ref(&self) -> &(dyn ObjectStore + 'static) {
        Store::as_ref(self)
    }
}

/// What to build: an S3 bucket with all its options, or a directory.
#[derive(Debug, Clone)]
pub enum StoreBuilder {
    S3(Box<S3Builder>),
    Dir {
        root: PathBuf,
        /// Bulk writes, made durable by `flush` (see [`FsStore::batched`]).
        batched: bool,
        /// The largest object read (`--max-state-size`).
        max_object_size: u64,
    },
    /// Terraform's azurerm backend, and the CA bundle of its client.
    Azure {
        target: crate::config::AzureTarget,
        ca_bundle: Option<Vec<u8>>,
    },
    /// Terraform's gcs backend.
    Gcs(super::gcs::GcsOptions),
    /// Terraform's local backend: `root` must exist.
    Local {
        root: PathBuf,
        layout: LocalLayout,
        max_object_size: u64,
    },
}

impl StoreBuilder {
    /// The configured target with every option of `config`.
    pub fn from_config(config: &Config) -> Self {
        match &config.target {
            Target::S3(o) => StoreBuilder::S3(Box::new(
                S3Builder::new(o.clone())
                    .with_write_options(config.write.clone())
                    .with_transport(config.transport.clone())
                    .with_lock_table(config.lock_table.clone()),
            )),
            Target::Dir(d) => StoreBuilder::Dir {
                root: d.clone(),
                batched: false,
                max_object_size: config.max_state_size,
            },
            Target::Azure(a) => StoreBuilder::Azure {
                target: a.clone(),
                ca_bundle: config.transport.ca_bundle.clone(),
            },
            Target::Gcs(g) => StoreBuilder::Gcs(g.clone()),
            Target::Local(l) => StoreBuilder::Local {
                root: l.root.clone(),
                layout: l.layout.clone(),
                max_object_size: config.max_state_size,
            },
        }
    }

    /// Make the store (no request is sent).
    pub async fn build(self) -> Result<Store, super::StoreError> {
        Ok(match self {
            StoreBuilder::S3(b) => Store::S3((*b).build().await?),
            StoreBuilder::Dir {
                root,
                batched,
                max_object_size,
            } => {
                // The root must exist: only a backup or migration
                // destination is created, explicitly, by its command.
                let store = FsStore::open(root)?.with_max_object_size(max_object_size);
                Store::Dir(if batched { store.batched() } else { store })
            }
            StoreBuilder::Azure {
                target: a,
                ca_bundle,
            } => {
                use super::azure::BlobClient;
                use crate::config::AzureCredential;
                let client = match &a.credential {
                    AzureCredential::AccessKey(k) => {
                        BlobClient::new(&a.endpoint, &a.account, k, &a.container)?
                    }
                    AzureCredential::SasToken(t) => {
                        BlobClient::with_sas(&a.endpoint, &a.account, t, &a.container)?
                    }
                };
                let client = match &ca_bundle {
                    Some(pem) => client.with_ca_bundle(pem)?,
                    None => client,
                };
                Store::Azure(Box::new(super::azure::AzureStore::new(client)))
            }
            StoreBuilder::Gcs(g) => Store::Gcs(Box::new(super::gcs::GcsStore::new(&g)?)),
            StoreBuilder::Local {
                root,
                layout,
                max_object_size,
            } => Store::Local(LocalStore::new(
                FsStore::open(root)?.with_max_object_size(max_object_size),
                layout,
            )),
        })
    }
}

/// The configured target of `config`, every option applied.
pub async fn open(config: &Config) -> Result<Store, Error> {
    Ok(StoreBuilder::from_config(config).build().await?)
}

/// A connected location: its store and the key prefix in it.
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    pub prefix: String,
    /// On the same S3 server, with the same credentials, as the source: a
    /// server-side copy from the source bucket works.
    pub same_server: bool,
    /// `s3://bucket/prefix` or `file:///dir`, for messages.
    pub display: String,
}

/// What `loc` is built with: the side's own settings, then its remote,
/// then what it inherits from `source` (the rule in the module doc).
/// Returns the builder, the key prefix and whether it is on the source's
/// server with the source's credentials.
pub fn location_builder(
    loc: &Location,
    side: &SideSettings,
    source: &Config,
    batched: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(StoreBuilder, String, bool), Error> {
    match loc {
        Location::Dir(dir) => Ok((
            StoreBuilder::Dir {
                root: dir.clone(),
                batched,
                max_object_size: source.max_state_size,
            },
            String::new(),
            false,
        )),
        Location::Gcs { bucket, prefix } => Ok((
            StoreBuilder::Gcs(gcs_side(bucket, side, source, env)),
            prefix.clone(),
            false,
        )),
        Location::Azure {
            account,
            container,
            prefix,
        } => Ok((
            StoreBuilder::Azure {
                target: crate::config::azure_side(
                    account,
                    container,
                    side.endpoint.as_deref(),
                    source,
                    env,
                )?,
                // Transport options go to every side (the module doc).
                ca_bundle: source.transport.ca_bundle.clone(),
            },
            prefix.clone(),
            false,
        )),
        Location::S3 {
            bucket,
            prefix,
            remote,
        } => {
            let remote = location::find_remote(remote.as_deref(), env)?;
            let opts = location::s3_options(
                bucket,
                remote.as_ref(),
                side,
                &source.target,
                source.verbose,
            );
            let same_server = match &source.target {
                Target::S3(s) => {
                    s.endpoint == opts.endpoint
                        && s.region == opts.region
                        && s.profile == opts.profile
                }
                Target::Dir(_) | Target::Local(_) | Target::Azure(_) | Target::Gcs(_) => false,
            };
            let (write, lock_table) = if same_server {
                (source.write.clone(), source.lock_table.clone())
            } else {
                (WriteOptions::default(), None)
            };
            let builder = S3Builder::new(opts)
                .with_write_options(write)
                .with_transport(source.transport.clone())
                .with_lock_table(lock_table);
            Ok((
                StoreBuilder::S3(Box::new(builder)),
                prefix.clone(),
                same_server,
            ))
        }
    }
}

/// A `gs://` side: `--to-endpoint` / `--from-endpoint`, else the source's
/// endpoint when the source is gcs (and then its credentials and, on that
/// same endpoint, its encryption keys, as for S3 sides), else
/// `TFSYNC_GCS_ENDPOINT` / `GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT` /
/// `GOOGLE_STORAGE_CUSTOM_ENDPOINT`, else GCS itself. Without the source's
/// credentials: none over plain http, else Application Default Credentials.
fn gcs_side(
    bucket: &str,
    side: &SideSettings,
    source: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> super::gcs::GcsOptions {
    use super::gcs::{DEFAULT_ENDPOINT, GcsAuth, GcsOptions};
    let src = match &source.target {
        Target::Gcs(g) => Some(g),
        _ => None,
    };
    let endpoint = side
        .endpoint
        .clone()
        .or_else(|| src.map(|g| g.endpoint.clone()))
        .or_else(|| {
            [
                "TFSYNC_GCS_ENDPOINT",
                "GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT",
                "GOOGLE_STORAGE_CUSTOM_ENDPOINT",
            ]
            .iter()
            .find_map(|k| env(k).filter(|v| !v.is_empty()))
        })
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let same = src.filter(|g| g.endpoint == endpoint);
    let auth = match same {
        Some(g) => g.auth.clone(),
        None if endpoint.starts_with("http://") => GcsAuth::Anonymous,
        None => GcsAuth::Default,
    };
    GcsOptions {
        bucket: bucket.to_string(),
        endpoint,
        auth,
        encryption_key: same.and_then(|g| g.encryption_key.clone()),
        kms_key: same.and_then(|g| g.kms_key.clone()),
        verbose: source.verbose,
    }
}

/// Connect to `loc`, a side of a backup, restore or migration whose source
/// is configured by `source` (see the module doc for what it inherits). A
/// directory is opened for bulk writes when `batched`: the caller must
/// `flush` before relying on them.
pub async fn open_location(
    loc: &Location,
    side: &SideSettings,
    source: &Config,
    batched: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Opened, Error> {
    let (builder, prefix, same_server) = location_builder(loc, side, source, batched, env)?;
    let display = match loc {
        Location::Dir(dir) => format!("file://{}", dir.display()),
        Location::S3 { bucket, .. } if prefix.is_empty() => format!("s3://{bucket}"),
        Location::S3 { bucket, .. } => format!("s3://{bucket}/{prefix}"),
        Location::Gcs { bucket, .. } if prefix.is_empty() => format!("gs://{bucket}"),
        Location::Gcs { bucket, .. } => format!("gs://{bucket}/{prefix}"),
        Location::Azure {
            account, container, ..
        } => format!("az://{account}/{}", join(container, &prefix)),
    };
    Ok(Opened {
        store: builder.build().await?,
        prefix,
        same_server,
        display,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::s3::{S3Options, TransportOptions};

    fn config(target: Target) -> Config {
        Config {
            target,
            key: "k".into(),
            workspace: "default".into(),
            workspace_key_prefix: "env:".into(),
            layout: Default::default(),
            output: crate::cli::OutputFormat::Text,
            quiet: false,
            verbose: false,
            warnings: vec![],
            sources: vec![],
            max_state_size: crate::store::fs::DEFAULT_MAX_OBJECT_SIZE,
            write: WriteOptions {
                sse: Some("aws:kms".into()),
                kms_key_id: Some("alias/k".into()),
                acl: Some("private".into()),
                sse_customer_key: None,
                create_only_header: Some(("x-oss-forbid-overwrite".into(), "true".into())),
            },
            transport: TransportOptions {
                max_attempts: 7,
                retry_min_wait: Some(std::time::Duration::from_millis(5)),
                retry_max_wait: None,
                rate_limit: Some((9, 2)),
                ca_bundle: Some(b"pem".to_vec()),
            },
            lock_table: Some(crate::store::dynamo::LockTableOptions {
                table: "locks".into(),
                endpoint: Some("http://127.0.0.1:2".into()),
            }),
        }
    }

    fn s3_source() -> Config {
        config(Target::S3(S3Options {
            bucket: "src".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("r1".into()),
            path_style: true,
            ..Default::default()
        }))
    }

    fn built(b: &StoreBuilder) -> &S3Builder {
        match b {
            StoreBuilder::S3(s) => s,
            StoreBuilder::Dir { .. }
            | StoreBuilder::Local { .. }
            | StoreBuilder::Azure { .. }
            | StoreBuilder::Gcs(_) => {
                panic!("expected S3")
            }
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_target_gets_every_option() {
        let c = s3_source();
        let b = StoreBuilder::from_config(&c);
        let s3 = built(&b);
        assert_eq!(s3.write_options(), &c.write);
        assert_eq!(s3.transport(), &c.transport);
        assert_eq!(s3.lock_table(), c.lock_table.as_ref());
        assert_eq!(s3.options().bucket, "src");
    }

    #[test]
    fn same_server_side_inherits_write_and_transport() {
        let c = s3_source();
        let loc = Location::parse("s3://dest/p").expect("loc");
        let (b, prefix, same) =
            location_builder(&loc, &SideSettings::default(), &c, false, &no_env).expect("b");
        let s3 = built(&b);
        assert_eq!(prefix, "p");
        assert!(same);
        assert_eq!(s3.options().bucket, "dest");
        assert_eq!(s3.options().endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(s3.write_options(), &c.write, "same server: write options");
        assert_eq!(s3.lock_table(), c.lock_table.as_ref(), "and the lock table");
        assert_eq!(s3.transport(), &c.transport);
    }

    #[test]
    fn other_server_side_inherits_transport_only() {
        let c = s3_source();
        let loc = Location::parse("s3://dest").expect("loc");
        let side = SideSettings {
            endpoint: Some("https://other.example".into()),
            ..Default::default()
        };
        let (b, _, same) = location_builder(&loc, &side, &c, false, &no_env).expect("b");
        let s3 = built(&b);
        assert!(!same);
        assert_eq!(s3.write_options(), &WriteOptions::default());
        assert_eq!(s3.lock_table(), None, "no lock table elsewhere");
        assert_eq!(s3.transport(), &c.transport, "transport on every side");
        assert_eq!(s3.transport().max_attempts, 7);
    }

    #[test]
    fn another_region_or_profile_is_another_account() {
        let c = s3_source();
        let loc = Location::parse("s3://dest").expect("loc");
        for side in [
            SideSettings {
                region: Some("r2".into()),
                ..Default::default()
            },
            SideSettings {
                profile: Some("other".into()),
                ..Default::default()
            },
        ] {
            let (b, _, same) = location_builder(&loc, &side, &c, false, &no_env).expect("b");
            assert!(!same, "{side:?}");
            assert_eq!(built(&b).write_options(), &WriteOptions::default());
            assert_eq!(built(&b).transport(), &c.transport);
        }
    }

    #[test]
    fn dir_source_gives_s3_side_its_transport() {
        let c = config(Target::Dir("/tmp/x".into()));
        let loc = Location::parse("s3://dest").expect("loc");
        let (b, _, same) =
            location_builder(&loc, &SideSettings::default(), &c, false, &no_env).expect("b");
        let s3 = built(&b);
        assert!(!same);
        assert_eq!(s3.transport().max_attempts, 7, "--max-attempts with --dir");
        assert_eq!(s3.write_options(), &WriteOptions::default());
        let loc = Location::parse("file:///tmp/y").expect("loc");
        let (b, _, _) =
            location_builder(&loc, &SideSettings::default(), &c, true, &no_env).expect("b");
        assert!(matches!(b, StoreBuilder::Dir { batched: true, .. }));
    }
}

#[cfg(test)]
mod gcs_side_tests {
    use super::*;
    use crate::store::gcs::{GcsAuth, GcsOptions};

    fn gcs_source() -> Config {
        let mut c = crate::config::Config::resolve(
            &crate::cli::GlobalOpts {
                bucket: Some("x".into()),
                key: Some("k".into()),
                max_attempts: 1,
                ..Default::default()
            },
            &|_| None,
        )
        .expect("config");
        c.target = Target::Gcs(GcsOptions {
            bucket: "src".into(),
            endpoint: "https://storage.googleapis.com".into(),
            auth: GcsAuth::Token("t".into()),
            encryption_key: Some("k".into()),
            kms_key: None,
            verbose: false,
        });
        c
    }

    #[test]
    fn a_gs_side_inherits_the_gcs_source_on_its_endpoint_only() {
        let c = gcs_source();
        let loc = Location::parse("gs://snaps/nightly").expect("loc");
        let (b, prefix, same) =
            location_builder(&loc, &SideSettings::default(), &c, false, &|_| None).expect("b");
        let StoreBuilder::Gcs(g) = b else {
            panic!("expected gcs")
        };
        assert_eq!(
            (g.bucket.as_str(), prefix.as_str(), same),
            ("snaps", "nightly", false)
        );
        assert_eq!(
            g.auth,
            GcsAuth::Token(String::new()),
            "the source's credentials"
        );
        assert_eq!(g.encryption_key.as_deref(), Some("k"), "and its CSEK");
        let side = SideSettings {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let (b, _, _) = location_builder(&loc, &side, &c, false, &|_| None).expect("b");
        let StoreBuilder::Gcs(g) = b else {
            panic!("expected gcs")
        };
        assert_eq!(
            g.auth,
            GcsAuth::Anonymous,
            "another endpoint: no credentials"
        );
        assert_eq!(g.encryption_key, None);
    }
}
