//! The bad-input corpus (tests/corpus/) and bad settings, on each real
//! server: every case gives a clear message, the documented exit code, and
//! writes nothing remotely.

use crate::support;
use crate::support::{Server, run, state};
use std::path::{Path, PathBuf};
use tfsync::store::s3::S3Store;
use tfsync::store::{ObjectStore, PutMode};

const KEY: &str = "bad/terraform.tfstate";
const LOCK: &str = "bad/terraform.tfstate.tflock";

fn corpus(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(support::repo_root().join("tests/corpus").join(dir))
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            .collect();
    files.sort();
    files
}

/// Every object in the bucket with its ETag: what "nothing written" compares.
async fn snapshot(store: &S3Store) -> Vec<(String, Option<String>)> {
    let mut all: Vec<_> = store
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|m| (m.key, m.etag))
        .collect();
    all.sort();
    all
}

struct Case<'a> {
    name: String,
    args: Vec<String>,
    env: Vec<(&'a str, String)>,
    code: i32,
    says: &'a str,
}

fn case<'a>(name: impl Into<String>, args: &[&str], code: i32, says: &'a str) -> Case<'a> {
    Case {
        name: name.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        code,
        says,
    }
}

async fn bad_inputs(server: Server) {
    let store = server.new_bucket("bad").await;
    store
        .put(KEY, state("L", 1, 1), PutMode::Create)
        .await
        .expect("seed");
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = tmp.path().join("good.tfstate");
    std::fs::write(&good, state("L", 2, 1)).expect("write");
    let good = good.to_string_lossy().into_owned();
    let mut cases: Vec<Case> = Vec::new();

    // States that are not Terraform states.
    for f in corpus("states") {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        let says = if name.starts_with("encrypted") {
            "--force"
        } else {
            "is not a usable Terraform state"
        };
        cases.push(case(
            format!("state {name}"),
            &["push", &f.to_string_lossy()],
            1,
            says,
        ));
    }

    // Settings.
    for key in [
        "a/../b.tfstate",
        "../b.tfstate",
        "a/./b.tfstate",
        "a//b.tfstate",
        "/abs.tfstate",
        "dir/",
        "x.tfstate.tflock",
    ] {
        cases.push(case(
            format!("key {key:?}"),
            &["--key", key, "status"],
            2,
            "state key",
        ));
    }
    for ws in ["a/b", "a b", "é"] {
        cases.push(case(
            format!("workspace {ws:?}"),
            &["--workspace", ws, "status"],
            2,
            "workspace name",
        ));
    }
    cases.push(case(
        "workspace prefix with a leading /",
        &[
            "--workspace",
            "dev",
            "--workspace-key-prefix",
            "/env",
            "status",
        ],
        2,
        "prefix",
    ));
    for d in ["5 parsecs", "-1s", "soon", "1e3"] {
        cases.push(case(
            format!("duration {d:?}"),
            &["lock", &format!("--wait={d}")],
            2,
            "invalid duration",
        ));
        cases.push(case(
            format!("lock timeout {d:?}"),
            &["push", &format!("--lock-timeout={d}"), &good],
            2,
            "invalid duration",
        ));
    }
    for ep in [
        "ftp://127.0.0.1:1",
        "http://",
        "not a url",
        "127.0.0.1:9000",
    ] {
        cases.push(case(
            format!("endpoint {ep:?}"),
            &["--endpoint", ep, "status"],
            2,
            "endpoint",
        ));
    }
    cases.push(case(
        "output yaml",
        &["--output", "yaml", "status"],
        2,
        "invalid value",
    ));
    let missing = support::unique_name("nobucket");
    cases.push(case(
        "missing bucket",
        &["--bucket", &missing, "status"],
        5,
        "does not exist",
    ));
    cases.push(case(
        "lock in a missing bucket",
        &["--bucket", &missing, "unlock", "x"],
        5,
        "does not exist",
    ));
    if server.name != "seaweedfs" {
        // SeaweedFS creates a missing bucket on the first PUT (README, quirks).
        cases.push(case(
            "push to a missing bucket",
            &["--bucket", &missing, "push", &good],
            5,
            "does not exist",
        ));
    }
    cases.push(case(
        "unreachable endpoint",
        &[
            "--endpoint",
            "http://127.0.0.1:1",
            "--max-attempts",
            "1",
            "status",
        ],
        1,
        "cannot reach",
    ));
    let tls = server.endpoint().replace("http://", "https://");
    cases.push(case(
        "TLS handshake with a plain-HTTP server",
        &["--endpoint", &tls, "--max-attempts", "1", "status"],
        1,
        "cannot reach",
    ));
    cases.push(case(
        "output under a file",
        &["pull", "-o", "/dev/null/x.tfstate"],
        1,
        "/dev/null/x.tfstate",
    ));
    cases.push(case(
        "output is a directory",
        &["pull", "-o", &tmp.path().to_string_lossy()],
        1,
        &*Box::leak(tmp.path().to_string_lossy().into_owned().into_boxed_str()),
    ));
    cases.push(case(
        "input file missing",
        &["push", "/nonexistent/in.tfstate"],
        1,
        "/nonexistent/in.tfstate",
    ));
    cases.push(case("input is a directory", &["push", "/tmp"], 1, "/tmp"));
    cases.push(case(
        "no such command",
        &["frobnicate"],
        2,
        "unrecognized subcommand",
    ));
    cases.push(case("unlock without an ID", &["unlock"], 2, "LOCK_ID"));
    let mut c = case("missing key", &["status"], 2, "--key or TFSYNC_KEY");
    c.env.push(("TFSYNC_KEY", String::new()));
    cases.push(c);
    if server.name != "moto" {
        // moto accepts any credentials unless IAM is set up.
        let mut c = case("wrong secret key", &["status"], 1, "access denied");
        c.env
            .push(("AWS_SECRET_ACCESS_KEY", "wrong-secret-0000".into()));
        cases.push(c);
        let mut c = case("unknown access key", &["push", &good], 1, "access denied");
        c.env.push(("AWS_ACCESS_KEY_ID", "NOSUCHKEY".into()));
        cases.push(c);
    }

    let before = snapshot(&store).await;
    let mut failures = Vec::new();
    let total = cases.len();
    for c in cases {
        let mut cmd = server.tfsync(store.bucket(), KEY);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let started = std::time::Instant::now();
        let r = run(cmd.args(&c.args));
        if r.code != c.code || !r.stderr.contains(c.says) || r.stderr.contains("panicked") {
            failures.push(format!(
                "{}: expected exit {} saying {:?}, got {r:?}",
                c.name, c.code, c.says
            ));
        }
        if started.elapsed().as_secs() > 20 {
            failures.push(format!("{}: took {:?}", c.name, started.elapsed()));
        }
    }
    assert_eq!(
        snapshot(&store).await,
        before,
        "something was written remotely"
    );

    // Lock objects that are not locks: reported as such, never overwritten.
    let lock_files = corpus("locks");
    for f in &lock_files {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        let raw = std::fs::read(f).expect("read");
        store
            .put(LOCK, raw.clone(), PutMode::Overwrite)
            .await
            .expect("plant lock");
        let before = snapshot(&store).await;
        for (args, code, says, out) in [
            (vec!["lock"], 3, "cannot be read as a lock", false),
            (
                vec!["push", good.as_str()],
                3,
                "cannot be read as a lock",
                false,
            ),
            (
                vec!["unlock", "59fef1d5-d094-c52e-6aa5-e30279394a88"],
                3,
                "not a readable lock",
                false,
            ),
            (
                vec![
                    "force-unlock",
                    "--yes",
                    "59fef1d5-d094-c52e-6aa5-e30279394a88",
                ],
                3,
                "not a readable lock",
                false,
            ),
            (vec!["status"], 0, "UNREADABLE", true),
        ] {
            let r = run(server.tfsync(store.bucket(), KEY).args(&args));
            let text = if out { &r.stdout } else { &r.stderr };
            if r.code != code || !text.contains(says) {
                failures.push(format!(
                    "lock {name}, {args:?}: expected exit {code} saying {says:?}, got {r:?}"
                ));
            }
        }
        assert_eq!(
            snapshot(&store).await,
            before,
            "lock {name}: something was written"
        );
        assert_eq!(
            store.get(LOCK).await.expect("lock").bytes,
            raw,
            "lock {name} untouched"
        );
    }
    store.delete(LOCK, None).await.expect("cleanup");

    // Keys with spaces and unicode are fine, byte for byte.
    let odd = "team a/état 雪/terraform.tfstate";
    let r = run(server.tfsync(store.bucket(), odd).args(["push", &good]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        store.get(odd).await.expect("odd key").bytes,
        std::fs::read(Path::new(&good)).expect("read")
    );

    eprintln!(
        "bad inputs on {}: {} cases + {} lock objects x 5 commands",
        server.name,
        total,
        lock_files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of the bad-input cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

on_each_server!(bad_inputs);
