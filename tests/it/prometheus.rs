//! `--output prometheus` on `locks` and `backup`, parsed by a real parser:
//! the `prometheus-client` Python package's
//! `prometheus_client.parser.text_string_to_metric_families`, from the test
//! servers' venv (scripts/servers/lib.sh installs it).

use crate::support::proxy::{Fault, Proxy, Rule};
use crate::support::{Server, repo_root, run, state};
use serde_json::Value;
use std::collections::BTreeMap;
use tfsync::store::{ObjectStore, PutMode};

/// One sample: its name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Families by name: (type, help, samples).
type Families = BTreeMap<String, (String, String, Vec<Sample>)>;

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#;

/// The venv's python with prometheus_client, or `None` (a note; a failure
/// with `TFSYNC_REQUIRE_SERVERS=1`).
fn python() -> Option<std::path::PathBuf> {
    let dirs = [
        std::env::var_os("TFSYNC_TEST_SERVERS_DIR").map(std::path::PathBuf::from),
        Some(repo_root().join("target/test-servers")),
    ];
    for dir in dirs.into_iter().flatten() {
        let py = dir.join("venv/bin/python");
        let ok = std::process::Command::new(&py)
            .args(["-c", "import prometheus_client.parser"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    if std::env::var("TFSYNC_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("no venv with prometheus-client: run scripts/test-servers up");
    }
    eprintln!("SKIP: no venv with prometheus-client (scripts/test-servers up installs it)");
    None
}

/// `text` parsed by prometheus_client (a parse error fails the test).
fn parse(py: &std::path::Path, text: &str) -> Families {
    use std::io::Write;
    let mut child = std::process::Command::new(py)
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "prometheus_client refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut families = Families::new();
    for f in v.as_array().expect("families") {
        let samples = f["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| Sample {
                name: s["name"].as_str().unwrap_or("").to_string(),
                labels: serde_json::from_value(s["labels"].clone()).expect("labels"),
                value: s["value"].as_f64().expect("value"),
            })
            .collect();
        let text = |k: &str| f[k].as_str().unwrap_or("").to_string();
        families.insert(text("name"), (text("type"), text("help"), samples));
    }
    families
}

/// The one sample of gauge `name` (HELP and TYPE checked).
fn gauge<'a>(f: &'a Families, name: &str) -> &'a [Sample] {
    let (kind, help, samples) = f
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", f.keys().collect::<Vec<_>>()));
    assert_eq!(kind, "gauge", "{name}");
    assert!(!help.is_empty(), "{name} has no HELP");
    assert!(samples.iter().all(|s| s.name == name), "{samples:?}");
    samples
}

fn value(f: &Families, name: &str) -> f64 {
    let s = gauge(f, name);
    assert_eq!(s.len(), 1, "{name}: {s:?}");
    s[0].value
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

async fn locks(server: Server) {
    let Some(py) = python() else { return };
    let store = server.new_bucket("prom-locks").await;
    // A lock as Terraform writes it, two hours old, whose Who needs every
    // escape of the format (backslash, double quote, newline).
    let who = "ali\"ce\\ci\nrunner@host";
    let created = (chrono::Utc::now() - chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%S%.fZ")
        .to_string();
    let old = serde_json::json!({
        "ID": "59fef1d5-d094-c52e-6aa5-e30279394a88",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": who,
        "Version": "1.11.0",
        "Created": created,
        "Path": format!("{}/old/terraform.tfstate", store.bucket()),
    });
    store
        .put(
            "old/terraform.tfstate.tflock",
            serde_json::to_vec(&old).expect("json"),
            PutMode::Create,
        )
        .await
        .expect("put");
    let r = run(server
        .tfsync(store.bucket(), "new/terraform.tfstate")
        .args(["lock", "--operation", "maintenance"]));
    assert_eq!(r.code, 0, "{r:?}");
    let new_id = r.stdout.trim().to_string();

    let r = run(server
        .tfsync(store.bucket(), "unused")
        .args(["locks", "--output", "prometheus"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("# HELP tfsync_lock_age_seconds "),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("# TYPE tfsync_lock_age_seconds gauge"),
        "{r:?}"
    );
    let f = parse(&py, &r.stdout);
    let ages = gauge(&f, "tfsync_lock_age_seconds");
    assert_eq!(ages.len(), 2, "{ages:?}");
    let by_key = |k: &str| {
        ages.iter()
            .find(|s| s.labels.get("state_key").map(String::as_str) == Some(k))
            .unwrap_or_else(|| panic!("{k}: {ages:?}"))
    };
    let o = by_key("old/terraform.tfstate");
    assert_eq!(o.labels["who"], who, "escaped and read back exactly");
    assert_eq!(o.labels["operation"], "OperationTypeApply");
    assert_eq!(o.labels["lock_store"], "s3");
    assert_eq!(o.labels["bucket"], store.bucket());
    assert_eq!(o.labels["id"], "59fef1d5-d094-c52e-6aa5-e30279394a88");
    assert!((7200.0..7500.0).contains(&o.value), "{o:?}");
    let n = by_key("new/terraform.tfstate");
    assert_eq!(n.labels["operation"], "maintenance");
    assert_eq!(n.labels["id"], new_id);
    assert!((0.0..300.0).contains(&n.value), "{n:?}");
    assert_eq!(value(&f, "tfsync_locks"), 2.0);
    assert_eq!(value(&f, "tfsync_locks_unreadable"), 0.0);

    // --older-than still filters; an unreadable lock is counted.
    store
        .put(
            "bad/terraform.tfstate.tflock",
            b"not a lock".to_vec(),
            PutMode::Create,
        )
        .await
        .expect("put");
    let r = run(server.tfsync(store.bucket(), "unused").args([
        "locks",
        "--older-than",
        "1h",
        "--output",
        "prometheus",
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    let f = parse(&py, &r.stdout);
    assert_eq!(gauge(&f, "tfsync_lock_age_seconds").len(), 1);
    assert_eq!(value(&f, "tfsync_locks"), 1.0);
    let r = run(server
        .tfsync(store.bucket(), "unused")
        .args(["locks", "--output", "prometheus"]));
    let f = parse(&py, &r.stdout);
    assert_eq!(value(&f, "tfsync_locks"), 3.0);
    assert_eq!(value(&f, "tfsync_locks_unreadable"), 1.0);

    // Other commands refuse it (exit 2), naming the ones that have it.
    let r = run(server
        .tfsync(store.bucket(), "new/terraform.tfstate")
        .args(["status", "--output", "prometheus"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("tfsync locks"), "{r:?}");
}

async fn backup(server: Server) {
    let Some(py) = python() else { return };
    let src = server.new_bucket("prom-bk").await;
    let (a, b) = (state("A", 1, 2), state("B", 4, 1));
    src.put("a/terraform.tfstate", a.clone(), PutMode::Create)
        .await
        .expect("put");
    src.put("b/terraform.tfstate", b.clone(), PutMode::Create)
        .await
        .expect("put");
    let dir = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", dir.path().display());
    let backup = |endpoint: Option<&str>| {
        let mut cmd = server.tfsync(src.bucket(), "unused");
        if let Some(e) = endpoint {
            cmd.env("AWS_ENDPOINT_URL_S3", e);
        }
        run(cmd.args([
            "--max-attempts",
            "2",
            "backup",
            "--to",
            &to,
            "--output",
            "prometheus",
        ]))
    };
    let before = now();
    let r = backup(None);
    assert_eq!(r.code, 0, "{r:?}");
    let f = parse(&py, &r.stdout);
    let labels = &gauge(&f, "tfsync_backup_success")[0].labels;
    assert_eq!(labels["destination"], to);
    assert!(labels["source"].contains(src.bucket()), "{labels:?}");
    assert_eq!(value(&f, "tfsync_backup_success"), 1.0);
    assert_eq!(value(&f, "tfsync_backup_states_seen"), 2.0);
    assert_eq!(value(&f, "tfsync_backup_states_copied"), 2.0);
    assert_eq!(value(&f, "tfsync_backup_states_skipped"), 0.0);
    assert_eq!(value(&f, "tfsync_backup_states_failed"), 0.0);
    assert_eq!(
        value(&f, "tfsync_backup_bytes_copied"),
        (a.len() + b.len()) as f64
    );
    let d = value(&f, "tfsync_backup_duration_seconds");
    assert!((0.0..60.0).contains(&d), "{d}");
    let first = value(&f, "tfsync_backup_last_success_timestamp_seconds");
    assert!(
        first >= before - 1.0 && first <= now() + 1.0,
        "{first} vs {before}"
    );
    assert!(value(&f, "tfsync_backup_last_run_timestamp_seconds") >= first);

    // Unchanged: skipped.
    let r = backup(None);
    let f = parse(&py, &r.stdout);
    assert_eq!(value(&f, "tfsync_backup_states_skipped"), 2.0);
    assert_eq!(value(&f, "tfsync_backup_states_copied"), 0.0);
    let second = value(&f, "tfsync_backup_last_success_timestamp_seconds");
    assert!(second >= first, "{second} {first}");

    // backup verify: every object checked, then one damaged.
    let verify = || {
        run(server.tfsync(src.bucket(), "unused").args([
            "backup",
            "verify",
            "--from",
            &to,
            "--output",
            "prometheus",
        ]))
    };
    let r = verify();
    assert_eq!(r.code, 0, "{r:?}");
    let f = parse(&py, &r.stdout);
    assert_eq!(value(&f, "tfsync_backup_verify_success"), 1.0);
    assert_eq!(value(&f, "tfsync_backup_verify_snapshots"), 2.0);
    assert!(value(&f, "tfsync_backup_verify_objects") >= 2.0);
    assert_eq!(value(&f, "tfsync_backup_verify_objects_failed"), 0.0);
    let manifests = dir.path().join("manifests");
    let first_id = std::fs::read_dir(&manifests)
        .expect("manifests")
        .filter_map(|e| e.ok())
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string()
        })
        .min()
        .expect("a snapshot");
    let victim = dir.path().join(format!("{first_id}/b/terraform.tfstate"));
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[5] ^= 1;
    std::fs::write(&victim, &bytes).expect("damage");
    let r = verify();
    assert_eq!(r.code, 1, "{r:?}");
    let f = parse(&py, &r.stdout);
    assert_eq!(value(&f, "tfsync_backup_verify_success"), 0.0);
    assert!(value(&f, "tfsync_backup_verify_objects_failed") >= 1.0);
    std::fs::write(&victim, state("B", 4, 1)).expect("repair");

    // A failed run (a changed state that cannot be read): success 0, the
    // failure counted, and the last success is still the previous snapshot.
    src.put("a/terraform.tfstate", state("A", 2, 3), PutMode::Overwrite)
        .await
        .expect("put");
    let upstream = server.endpoint().trim_start_matches("http://").to_string();
    let proxy = Proxy::start(upstream).await;
    proxy.add(Rule {
        method: "GET",
        path_ends: "/a/terraform.tfstate".into(),
        times: 100,
        fault: Fault::Respond(500),
    });
    let r = backup(Some(&proxy.endpoint()));
    assert_eq!(r.code, 1, "{r:?}");
    let f = parse(&py, &r.stdout);
    assert_eq!(value(&f, "tfsync_backup_success"), 0.0);
    assert_eq!(value(&f, "tfsync_backup_states_failed"), 1.0);
    assert_eq!(
        value(&f, "tfsync_backup_last_success_timestamp_seconds"),
        second
    );

    // A run that stops before any state (the destination is the source
    // bucket itself): the metrics still say it failed, never succeeded there.
    let r = run(server.tfsync(src.bucket(), "unused").args([
        "backup",
        "--to",
        &format!("s3://{}", src.bucket()),
        "--output",
        "prometheus",
    ]));
    assert_eq!(r.code, 2, "{r:?}");
    let f = parse(&py, &r.stdout);
    assert_eq!(value(&f, "tfsync_backup_success"), 0.0);
    assert_eq!(
        value(&f, "tfsync_backup_last_success_timestamp_seconds"),
        0.0
    );
    assert!(!f.contains_key("tfsync_backup_states_seen"), "{f:?}");
}

on_each_server!([moto] locks);
on_each_server!([seaweedfs] backup);
