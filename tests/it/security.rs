//! Secrets never leave: every command, with --verbose, in text and JSON,
//! on success and on error; nothing it prints or writes (local files, lock
//! objects, states) contains the secret key or the session token.

use crate::support;
use crate::support::tls::{TlsServer, self_signed};
use crate::support::{Server, run, state};
use tfsync::store::ObjectStore;

const SECRET: &str = "tfsyncCanarySecret0xDEADBEEF";
const TOKEN: &str = "tfsyncCanaryToken0xFEEDFACE";
const KEY: &str = "sec/terraform.tfstate";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET),
        "{what} contains the secret key:\n{text}"
    );
    assert!(
        !text.contains(TOKEN),
        "{what} contains the session token:\n{text}"
    );
    assert!(
        !text.contains("tfsyncCanary"),
        "{what} contains a canary:\n{text}"
    );
}

/// moto accepts any secret: the canary secret and token are used for real
/// signed requests.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_printed_or_written() {
    let Some(server) = support::server("moto") else {
        return;
    };
    let store = server.new_bucket("sec").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.tfstate");
    std::fs::write(&file, state("S", 1, 1)).expect("write");
    let file = file.to_string_lossy().into_owned();
    let pulled = dir
        .path()
        .join("out.tfstate")
        .to_string_lossy()
        .into_owned();
    let bad = dir.path().join("bad.tfstate");
    std::fs::write(&bad, b"{not json").expect("write");
    let bad = bad.to_string_lossy().into_owned();

    let tfsync = |args: &[String]| {
        let r = run(server
            .tfsync(store.bucket(), KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN)
            // Environment values must not reach a lock's Who either.
            .env("USER", "tfsyncCanaryUser")
            .env("LOGNAME", "tfsyncCanaryUser")
            .env("HOSTNAME", "tfsyncCanaryHost")
            .args(args));
        assert_clean(
            &format!("output of {args:?}"),
            &format!("{}{}", r.stdout, r.stderr),
        );
        r
    };
    let mut ran = 0;
    for output in ["text", "json"] {
        let g = |a: &[&str]| -> Vec<String> {
            ["--verbose", "--output", output]
                .iter()
                .chain(a)
                .map(|s| s.to_string())
                .collect()
        };
        let r = tfsync(&g(&["push", &file]));
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("PUT s3://"),
            "--verbose shows requests: {r:?}"
        );
        tfsync(&g(&["status"]));
        tfsync(&g(&["pull"]));
        tfsync(&g(&["pull", "-o", &pulled]));
        let id = if output == "json" {
            let r = tfsync(&g(&["lock", "--info", "maintenance"]));
            let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
            v["ID"].as_str().expect("id").to_string()
        } else {
            tfsync(&g(&["lock", "--info", "maintenance"]))
                .stdout
                .trim()
                .to_string()
        };
        let lock = store
            .get(&format!("{KEY}.tflock"))
            .await
            .expect("lock")
            .bytes;
        let lock = String::from_utf8_lossy(&lock).into_owned();
        assert_clean("the lock object", &lock);
        tfsync(&g(&["status"]));
        assert_eq!(tfsync(&g(&["lock"])).code, 3);
        assert_eq!(tfsync(&g(&["push", &file])).code, 3);
        assert_eq!(tfsync(&g(&["unlock", "wrong-id"])).code, 3);
        assert_eq!(tfsync(&g(&["force-unlock", &id])).code, 2);
        assert_eq!(tfsync(&g(&["force-unlock", "--yes", &id])).code, 0);
        assert_eq!(tfsync(&g(&["unlock", &id])).code, 5);
        assert_eq!(tfsync(&g(&["push", &bad])).code, 1);
        assert_eq!(tfsync(&g(&["--key", "", "status"])).code, 2);
        assert_eq!(
            tfsync(&g(&["--bucket", "tfsync-missing-sec", "status"])).code,
            5
        );
        ran += 13;
    }
    assert_clean(
        "the pulled file",
        &String::from_utf8_lossy(&std::fs::read(&pulled).expect("read")),
    );
    for m in store.list("").await.expect("list") {
        let body = store.get(&m.key).await.expect("get").bytes;
        assert_clean(&m.key, &String::from_utf8_lossy(&body));
    }
    eprintln!("security: {ran} command runs checked");
}

/// A server that refuses the signature: the error names the problem, never
/// the secret.
async fn wrong_secret_not_echoed(server: Server) {
    let store = server.new_bucket("secerr").await;
    let r = run(server
        .tfsync(store.bucket(), KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .args(["--verbose", "status"]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("access denied"), "{r:?}");
    assert_clean("error output", &format!("{}{}", r.stdout, r.stderr));
}

on_each_server!([ceph, seaweedfs] wrong_secret_not_echoed);

/// Plain http to a host that is not loopback is warned about; loopback and
/// https are not.
#[tokio::test(flavor = "multi_thread")]
async fn plain_http_off_loopback_warns() {
    let Some(server) = support::server("moto") else {
        return;
    };
    let store = server.new_bucket("warn").await;
    let port = server
        .endpoint()
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    // 0.0.0.0 reaches this machine but is not a loopback address.
    let r = run(server.tfsync(store.bucket(), KEY).args([
        "--endpoint",
        &format!("http://0.0.0.0:{port}"),
        "status",
    ]));
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("unencrypted"),
        "{r:?}"
    );
    let r = run(server.tfsync(store.bucket(), KEY).args(["status"]));
    assert!(!r.stderr.contains("warning:"), "{r:?}");
}

/// TLS certificates are verified: a server with a self-signed certificate
/// is refused, with a message that says so.
#[test]
fn tls_certificates_are_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    self_signed(
        dir.path(),
        "/CN=127.0.0.1",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
        "key.pem",
        "cert.pem",
    );
    let server = TlsServer::start(&dir.path().join("cert.pem"), &dir.path().join("key.pem"));
    let r = run(std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"))
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .args([
            "--bucket",
            "b",
            "--key",
            "k",
            "--max-attempts",
            "1",
            "--endpoint",
            &server.endpoint,
            "status",
        ]));
    drop(server);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("certificate"), "says why: {r:?}");
    assert_clean("TLS error", &r.stderr);
}
