//! Transport settings: the client-side rate limit paces real requests, and
//! the retry waits reach the SDK's retry configuration.

use crate::support;
use crate::support::run;
use crate::support::tls::{TlsServer, private_ca};
use std::time::{Duration, Instant};
use tfsync::store::s3::{S3Builder, TransportOptions};
use tfsync::store::{ObjectStore, PutMode};

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_paces_requests() {
    let Some(server) = support::server("moto") else {
        return;
    };
    let store = server.new_bucket("rate").await;
    let bucket = store.bucket().to_string();
    for i in 0..6 {
        let body = format!(
            r#"{{"ID":"id-{i}","Operation":"x","Info":"","Who":"a@b","Version":"1","Created":"2026-01-01T00:00:00Z","Path":"{bucket}/s{i}"}}"#
        );
        store
            .put(&format!("s{i}.tflock"), body.into_bytes(), PutMode::Create)
            .await
            .expect("lock");
    }
    // 1 LIST + 6 GETs = 7 requests.
    let time = |extra: &[&str]| {
        let mut cmd = server.tfsync(&bucket, "unused");
        cmd.env_remove("TFSYNC_KEY")
            .args(extra)
            .args(["--output", "json", "locks"]);
        let start = Instant::now();
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
        assert_eq!(v["locks"].as_array().expect("locks").len(), 6);
        start.elapsed()
    };
    let free = time(&[]);
    // 5 per second, burst 1: the 7th request waits until ~1.2 s.
    let paced = time(&["--rate-limit", "5"]);
    assert!(
        paced >= Duration::from_millis(1100),
        "paced run took {paced:?}"
    );
    assert!(paced > free, "free {free:?}, paced {paced:?}");
    // A burst of 7 lets them all through at once.
    let burst = time(&["--rate-limit", "5", "--rate-burst", "7"]);
    assert!(burst < paced, "burst {burst:?}, paced {paced:?}");
    eprintln!("locks: unlimited {free:?}, 5/s {paced:?}, 5/s burst 7 {burst:?}");
}

#[tokio::test]
async fn retry_waits_reach_the_sdk() {
    let opts = tfsync::store::s3::S3Options {
        bucket: "b".into(),
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        path_style: true,
        ..Default::default()
    };
    let store = S3Builder::new(opts)
        .with_transport(TransportOptions {
            max_attempts: 3,
            retry_min_wait: Some(Duration::from_millis(250)),
            retry_max_wait: Some(Duration::from_secs(9)),
            rate_limit: None,
            ca_bundle: None,
        })
        .build()
        .await
        .expect("connect");
    let rc = store
        .client()
        .config()
        .retry_config()
        .expect("retry config");
    assert_eq!(rc.initial_backoff(), Duration::from_millis(250));
    assert_eq!(rc.max_backoff(), Duration::from_secs(9));
    assert_eq!(rc.max_attempts(), 3, "--max-attempts kept");
}

/// `--ca-bundle`: a server with a certificate from a private CA is refused
/// without the bundle and reached with it.
#[test]
fn ca_bundle_trusts_a_private_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A private CA, and a server certificate it signs.
    let (ca, cert, key) = private_ca(dir.path());
    let server = TlsServer::start(&cert, &key);
    let status = |extra: &[&str]| {
        run(std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"))
            .env_clear()
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .args(["--bucket", "b", "--key", "k", "--max-attempts", "1"])
            .args(["--endpoint", &server.endpoint])
            .args(extra)
            .arg("status"))
    };
    let refused = status(&[]);
    let trusted = status(&["--ca-bundle", &ca.to_string_lossy()]);
    drop(server);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("certificate"), "{refused:?}");
    // Past TLS: the toy server answers 501 to every S3 request.
    assert_eq!(trusted.code, 1, "{trusted:?}");
    assert!(
        trusted.stderr.contains("501") && !trusted.stderr.contains("certificate"),
        "{trusted:?}"
    );
}
