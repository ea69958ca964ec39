//! Every store a command builds gets every option (`store::open`): the
//! SSE-C key, `--ca-bundle` and `--max-attempts` reach `history`,
//! `pull --version-id`, `restore --version-id` and every side of `backup`,
//! `restore --from` and `migrate`, not only the configured store.

use crate::support;

use std::path::Path;
use std::process::Command;
use support::proxy::{Fault, Proxy, Rule};
use support::tls::{TlsServer, private_ca};
use support::{Run, Server, run, state};
use tfsync::store::ObjectStore;

const KEY: &str = "opts/terraform.tfstate";

fn customer_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// SeaweedFS enforces SSE-C (an object written with the key cannot be read
/// without it): `history`, `pull --version-id`, `restore --version-id` and
/// `backup` must send the key on every read, and a backup on the same
/// server writes its snapshot with it.
async fn sse_c_state_read_by_every_command(server: Server) {
    let store = server.new_versioned_bucket("ssec-opts").await;
    let bucket = store.bucket().to_string();
    let ssec = customer_key();
    let with_key = |args: &[&str]| {
        let mut c = server.tfsync(&bucket, KEY);
        // `--sse AES256` is tfsync's `encrypt = true`: the key applies only with it.
        c.env("AWS_SSE_CUSTOMER_KEY", &ssec)
            .env("TFSYNC_SSE", "AES256")
            .args(args);
        run(&mut c)
    };
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.tfstate");
    for serial in [1, 2] {
        std::fs::write(&f, state("ssec-opts", serial, 1)).expect("write");
        let r = with_key(&["push", &f.to_string_lossy()]);
        assert_eq!(r.code, 0, "push {serial}: {r:?}");
    }
    let r = run(server.tfsync(&bucket, KEY).arg("pull"));
    assert_ne!(
        r.code, 0,
        "the state must be SSE-C (unreadable without the key): {r:?}"
    );

    // history reads each version's serial: only with the key.
    let r = with_key(&["--output", "json", "history"]);
    assert_eq!(r.code, 0, "history: {r:?}");
    let v = json(&r);
    let versions = v["versions"].as_array().expect("versions");
    let serials: Vec<_> = versions.iter().map(|v| v["serial"].clone()).collect();
    assert_eq!(serials, [2, 1], "{v}");
    let first = versions[1]["version_id"]
        .as_str()
        .expect("version id")
        .to_string();

    // pull --version-id: the bytes of serial 1.
    let r = with_key(&["pull", "--version-id", &first]);
    assert_eq!(r.code, 0, "pull --version-id: {r:?}");
    assert_eq!(r.stdout.as_bytes(), state("ssec-opts", 1, 1), "{r:?}");

    // restore --version-id: serial 1 back as serial 3, written with the key.
    let r = with_key(&["restore", "--version-id", &first]);
    assert_eq!(r.code, 0, "restore --version-id: {r:?}");
    let r = with_key(&["pull"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"serial\": 3"), "{r:?}");

    // backup, on the same server: the source read and the snapshot written
    // with the key (server-side copy), so it verifies with it only.
    let to = format!("s3://{bucket}/backups");
    let r = with_key(&["--output", "json", "backup", "--to", &to]);
    assert_eq!(r.code, 0, "backup: {r:?}");
    let v = json(&r);
    assert_eq!(
        (v["copied"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    let r = with_key(&["backup", "verify", "--from", &to]);
    assert_eq!(r.code, 0, "verify with the key: {r:?}");
    let r = run(server
        .tfsync(&bucket, KEY)
        .args(["backup", "verify", "--from", &to]));
    assert_ne!(r.code, 0, "the snapshot must be SSE-C too: {r:?}");
    assert!(r.stderr.contains("customer"), "{r:?}");

    // backup streamed to a directory: every state read with the key.
    let out = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", out.path().display());
    let r = with_key(&["--output", "json", "backup", "--to", &to]);
    assert_eq!(r.code, 0, "backup to a directory: {r:?}");
    let v = json(&r);
    assert_eq!(v["failed"].as_u64(), Some(0), "{v}");
    assert!(v["copied"].as_u64() >= Some(1), "{v}");
}

on_each_server!([seaweedfs] sse_c_state_read_by_every_command);

/// tfsync with nothing but `args`, test credentials and no AWS settings
/// from this machine (no `AWS_CA_BUNDLE`, no profile, no IMDS).
fn tfsync(args: &[&str]) -> Run {
    run(Command::new(env!("CARGO_BIN_EXE_tfsync"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir().join("tfsync-test-home"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "tfsynctestkey")
        .env("AWS_SECRET_ACCESS_KEY", "tfsynctestsecret0123456789")
        .args(args))
}

/// A directory store holding one state at [`KEY`].
fn dir_with_state() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    let path = d.path().join(KEY);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, state("opts", 1, 1)).expect("write");
    d
}

fn dir_arg(d: &Path) -> String {
    d.to_string_lossy().into_owned()
}

/// `--ca-bundle` reaches the stores `history` and every side of `backup`,
/// `migrate` and `restore --from` build: with it the TLS handshake with a
/// server whose certificate a private CA signed succeeds (the toy server
/// then answers 501), without it the certificate is refused.
#[test]
fn ca_bundle_reaches_every_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = private_ca(dir.path());
    let server = TlsServer::start(&cert, &key);
    let ep = server.endpoint.clone();
    let ca = ca.to_string_lossy().into_owned();
    let src = dir_with_state();
    let src = dir_arg(src.path());
    let empty = tempfile::tempdir().expect("tmp");
    let empty = dir_arg(empty.path());
    let common = ["--max-attempts", "1", "--key", KEY];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "history",
            vec!["--bucket", "b", "--endpoint", &ep, "history"],
        ),
        (
            "backup destination",
            vec![
                "--dir",
                &src,
                "backup",
                "--to",
                "s3://b/p",
                "--to-endpoint",
                &ep,
            ],
        ),
        (
            "migrate destination",
            vec![
                "--dir",
                &src,
                "migrate",
                "--to",
                "s3://b/p",
                "--to-endpoint",
                &ep,
            ],
        ),
        (
            "restore source",
            vec![
                "--dir",
                &empty,
                "restore",
                "--from",
                "s3://b/p",
                "--from-endpoint",
                &ep,
            ],
        ),
    ];
    for (what, args) in &cases {
        let refused = tfsync(&[&common[..], args].concat());
        assert_ne!(refused.code, 0, "{what} without the bundle: {refused:?}");
        assert!(
            refused.stderr.contains("certificate"),
            "{what} without the bundle: {refused:?}"
        );
        let trusted = tfsync(&[&common[..], &["--ca-bundle", &ca], args].concat());
        assert_ne!(
            trusted.code, 0,
            "{what}: the toy server answers 501: {trusted:?}"
        );
        assert!(
            trusted.stderr.contains("501") && !trusted.stderr.contains("certificate"),
            "{what} with --ca-bundle must get past TLS: {trusted:?}"
        );
    }
    drop(server);
}

/// `--max-attempts` reaches every side: through a proxy that answers 503
/// twice, one attempt fails at once and three get through, whether the
/// store behind the proxy is the source, a backup or migration destination,
/// or the snapshot a restore reads (the configured store a directory).
async fn max_attempts_reach_every_side(server: Server) {
    let store = server.new_bucket("attempts").await;
    let bucket = store.bucket().to_string();
    let upstream = server.endpoint().trim_start_matches("http://").to_string();
    let proxy = Proxy::start(upstream).await;
    let ep = proxy.endpoint();
    let src = dir_with_state();
    let src = dir_arg(src.path());
    let backups = format!("s3://{bucket}/backups");
    let waits = ["--retry-min-wait", "10ms", "--retry-max-wait", "20ms"];
    let local = tempfile::tempdir().expect("tmp");
    let local = format!("file://{}", local.path().display());
    // Run `args` with N attempts while the proxy answers 503 to the first
    // two `method` requests; returns the result and the requests it faulted.
    let attempt = |n: &str, method: &'static str, args: Vec<String>| {
        proxy.clear();
        proxy.add(Rule {
            method,
            path_ends: String::new(),
            times: 2,
            fault: Fault::Respond(503),
        });
        let mut all: Vec<String> = ["--max-attempts", n, "--key", KEY]
            .iter()
            .chain(&waits)
            .map(|s| s.to_string())
            .collect();
        all.extend(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let r = tfsync(&all);
        let faulted = proxy
            .seen()
            .iter()
            .filter(|s| s.method == method && s.status == Some(503))
            .count();
        (r, faulted)
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let sides: Vec<(&str, &'static str, Vec<String>)> = vec![
        (
            "backup destination",
            "PUT",
            s(&[
                "--dir",
                &src,
                "backup",
                "--to",
                &backups,
                "--to-endpoint",
                &ep,
            ]),
        ),
        (
            "migrate destination",
            "PUT",
            s(&[
                "--dir",
                &src,
                "migrate",
                "--to",
                &format!("s3://{bucket}/migrated"),
                "--to-endpoint",
                &ep,
            ]),
        ),
        (
            "source",
            "GET",
            s(&[
                "--bucket",
                &bucket,
                "--endpoint",
                &ep,
                "backup",
                "--to",
                &local,
            ]),
        ),
    ];
    for (what, method, args) in sides {
        let (r, faulted) = attempt("1", method, args.clone());
        assert_ne!(r.code, 0, "{what}, 1 attempt: must fail at once: {r:?}");
        assert_eq!(faulted, 1, "{what}, 1 attempt: no retry: {r:?}");
        let (r, faulted) = attempt("3", method, args);
        assert_eq!(r.code, 0, "{what}, 3 attempts: {r:?}");
        assert_eq!(faulted, 2, "{what}, 3 attempts: {r:?}");
    }
    // The snapshot the backups above wrote, read by a restore into a
    // directory through the proxy.
    let target = tempfile::tempdir().expect("tmp");
    let restore = s(&[
        "--dir",
        &dir_arg(target.path()),
        "restore",
        "--from",
        &backups,
        "--from-endpoint",
        &ep,
    ]);
    let (r, faulted) = attempt("1", "GET", restore.clone());
    assert_ne!(r.code, 0, "restore source, 1 attempt: {r:?}");
    assert_eq!(faulted, 1, "restore source, 1 attempt: {r:?}");
    let (r, faulted) = attempt("3", "GET", restore);
    assert_eq!(r.code, 0, "restore source, 3 attempts: {r:?}");
    assert_eq!(faulted, 2, "restore source, 3 attempts: {r:?}");
    assert_eq!(
        std::fs::read(target.path().join(KEY)).expect("restored state"),
        state("opts", 1, 1)
    );
}

on_each_server!([moto] max_attempts_reach_every_side);
