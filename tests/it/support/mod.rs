//! Test environment: the real S3-compatible servers started by
//! `scripts/test-servers up`, unique buckets, and the tfsync binary with a
//! clean environment.
#![allow(dead_code)]

pub mod azure;
pub mod env;
pub mod proxy;
pub mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use tfsync::store::s3::{S3Builder, S3Options, S3Store, TransportOptions};

pub const SERVERS: [&str; 3] = ["ceph", "seaweedfs", "moto"];

/// One `#[tokio::test(flavor = "multi_thread")]` per server for each async
/// fn taking a [`Server`]: `on_each_server!(a, b)` makes the tests `a::ceph`,
/// `a::seaweedfs`, `a::moto`, `b::ceph`, ...; each calls [`server`] and skips
/// when it returns `None` (a failure with `TFSYNC_REQUIRE_SERVERS=1`).
///
/// Optional, in this order: a list of servers other than the three of
/// [`SERVERS`] (`on_each_server!([moto, seaweedfs] a)`) and extra
/// `tokio::test` arguments (`on_each_server!(worker_threads = 4; a)`).
#[macro_export]
macro_rules! on_each_server {
    (@servers $servers:tt worker_threads = $n:literal; $($f:ident),+ $(,)?) => {
        $($crate::on_each_server!(@mod $servers (flavor = "multi_thread", worker_threads = $n) $f);)+
    };
    (@servers $servers:tt $($f:ident),+ $(,)?) => {
        $($crate::on_each_server!(@mod $servers (flavor = "multi_thread") $f);)+
    };
    (@mod [$($server:ident),+] $args:tt $f:ident) => {
        mod $f {
            $(
                #[tokio::test $args]
                async fn $server() {
                    if let Some(s) = $crate::support::server(stringify!($server)) {
                        super::$f(s).await
                    }
                }
            )+
        }
    };
    ([$($server:ident),+ $(,)?] $($rest:tt)+) => {
        $crate::on_each_server!(@servers [$($server),+] $($rest)+);
    };
    ($($rest:tt)+) => {
        $crate::on_each_server!(@servers [ceph, seaweedfs, moto] $($rest)+);
    };
}

/// One running server, as described by `target/test-servers/<name>.env`.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub env: HashMap<String, String>,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The server `name`, or `None` (with a note) when it is not running. With
/// `TFSYNC_REQUIRE_SERVERS=1` (set by `make test` and CI) a missing server is
/// a failure, not a skip.
pub fn server(name: &str) -> Option<Server> {
    let own = repo_root().join("target/test-servers");
    let dir = std::env::var_os("TFSYNC_TEST_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| own.clone());
    let path = dir.join(format!("{name}.env"));
    // A server started from this checkout counts too when the variable points
    // at another checkout's servers.
    let path = if path.exists() {
        path
    } else {
        own.join(format!("{name}.env"))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let env = text
                .lines()
                .map(|l| l.trim().trim_start_matches("export ").trim())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect();
            Some(Server {
                name: name.to_string(),
                env,
            })
        }
        Err(_) if std::env::var("TFSYNC_REQUIRE_SERVERS").as_deref() == Ok("1") => {
            panic!(
                "server {name} is required but {} is missing: run scripts/test-servers up",
                path.display()
            )
        }
        Err(_) => {
            eprintln!(
                "SKIP: server {name} not running ({} missing; run scripts/test-servers up)",
                path.display()
            );
            None
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A bucket name no other test (or earlier run) uses.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("tfs-{tag}-{}-{n}-{nanos:x}", std::process::id())
        .chars()
        .take(63)
        .collect()
}

impl Server {
    pub fn endpoint(&self) -> String {
        self.env["AWS_ENDPOINT_URL_S3"].clone()
    }

    pub fn options(&self, bucket: &str) -> S3Options {
        S3Options {
            bucket: bucket.to_string(),
            endpoint: Some(self.endpoint()),
            region: Some(
                self.env
                    .get("AWS_REGION")
                    .cloned()
                    .unwrap_or_else(|| "us-east-1".into()),
            ),
            profile: None,
            path_style: true,
            verbose: false,
            credentials: Some(aws_credential_types::Credentials::new(
                self.env["AWS_ACCESS_KEY_ID"].clone(),
                self.env["AWS_SECRET_ACCESS_KEY"].clone(),
                None,
                None,
                "tfsync-tests",
            )),
        }
    }

    /// The builder of a store on `bucket` of this server (3 attempts per
    /// request; add write or transport options before `build`).
    pub fn builder(&self, bucket: &str) -> S3Builder {
        S3Builder::new(self.options(bucket)).with_transport(TransportOptions {
            max_attempts: 3,
            ..Default::default()
        })
    }

    /// A store on a new, empty bucket.
    pub async fn new_bucket(&self, tag: &str) -> S3Store {
        let bucket = unique_name(tag);
        let store = self.builder(&bucket).build().await.expect("connect");
        store
            .create_bucket_if_missing()
            .await
            .expect("create bucket");
        store
    }

    /// A store on a new, empty bucket with versioning enabled.
    pub async fn new_versioned_bucket(&self, tag: &str) -> S3Store {
        let store = self.new_bucket(tag).await;
        enable_versioning(&store).await;
        store
    }

    /// The tfsync binary with only this server's settings in its environment
    /// (no HOME profile, no instance metadata).
    pub fn tfsync(&self, bucket: &str, key: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir().join("tfsync-test-home"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("TFSYNC_BUCKET", bucket)
            .env("TFSYNC_KEY", key);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// A Terraform state (format 4) with `resources` null resources.
pub fn state(lineage: &str, serial: u64, resources: usize) -> Vec<u8> {
    let res: Vec<String> = (0..resources)
        .map(|i| {
            format!(
                r#"{{"mode":"managed","type":"null_resource","name":"r{i}","provider":"provider[\"registry.terraform.io/hashicorp/null\"]","instances":[{{"schema_version":0,"attributes":{{"id":"{i}","triggers":{{"html":"\u003cb\u003e \u0026"}}}}}}]}}"#
            )
        })
        .collect();
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.0\",\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{\"url\": {{\"value\": \"https://x/?a=1\\u0026b=2\", \"type\": \"string\"}}}},\n  \"resources\": [{}],\n  \"check_results\": null\n}}\n",
        res.join(",")
    )
    .into_bytes()
}

/// Output of a finished command, for assertions with context.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut std::process::Command) -> Run {
    let out = cmd.output().expect("run tfsync");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Turn versioning on for the bucket of `store`.
pub async fn enable_versioning(store: &S3Store) {
    use tfsync::store::ObjectStore;
    store
        .client()
        .put_bucket_versioning()
        .bucket(store.bucket())
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
}
