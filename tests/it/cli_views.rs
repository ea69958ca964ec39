//! `list`, `locks` and `force-unlock --older-than` through the binary, on
//! each real server.

use crate::support::env::{Env, KEY};
use crate::support::{Server, run, state};
use serde_json::Value;
use tfsync::store::{ObjectStore, PutMode};
use tfsync::tfstate::lock;
use tfsync::tfstate::lock::LockError;

/// A lock as Terraform writes it, created at `created`.
fn tf_lock(id: &str, who: &str, created: &str, bucket: &str, key: &str) -> Vec<u8> {
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.11.0","Created":"{created}","Path":"{bucket}/{key}"}}"#
    )
    .into_bytes()
}

async fn views(server: Server) {
    let env = Env::new(server, "views").await;
    env.push("default", &state("L0", 3, 1)).await;
    env.push("dev", &state("L1", 5, 2)).await;
    env.push("prod", &state("L2", 7, 0)).await;
    // Not workspaces of KEY: another key, a nested path, a lock without state.
    for k in [
        "env:/qa/other/terraform.tfstate",
        "env:/a/b/team/app/terraform.tfstate",
    ] {
        env.store
            .put(k, state("X", 1, 0), PutMode::Create)
            .await
            .expect("put");
    }
    let prod = format!("env:/prod/{KEY}");
    let stale_id = "59fef1d5-d094-c52e-6aa5-e30279394a88";
    env.store
        .put(
            &format!("{prod}.tflock"),
            tf_lock(
                stale_id,
                "alice@ci-runner-7",
                "2026-01-11T09:55:24.570354123Z",
                env.bucket(),
                &prod,
            ),
            PutMode::Create,
        )
        .await
        .expect("stale lock");
    let fresh = env.tfsync(&["-w", "dev", "lock", "--operation", "maintenance"]);
    assert_eq!(fresh.code, 0, "{fresh:?}");
    let fresh_id = fresh.stdout.trim().to_string();

    // list
    let v = env.json(&["-w", "dev", "list"]);
    let ws = v["workspaces"].as_array().expect("workspaces");
    let names: Vec<&str> = ws
        .iter()
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["default", "dev", "prod"], "{v:#}");
    assert_eq!(ws[0]["state"]["serial"], 3);
    assert_eq!(ws[0]["locked"], false);
    assert_eq!(ws[0]["current"], false);
    assert_eq!(ws[1]["current"], true);
    assert_eq!(ws[1]["state"]["serial"], 5);
    assert_eq!(ws[1]["state_key"], format!("env:/dev/{KEY}"));
    assert_eq!(ws[1]["locked"], true);
    assert_eq!(ws[1]["lock"]["id"], fresh_id.as_str());
    assert_eq!(ws[1]["lock"]["operation"], "maintenance");
    assert_eq!(ws[2]["lock"]["who"], "alice@ci-runner-7");
    assert!(ws[2]["lock"]["age_seconds"].as_u64().expect("age") > 3600);
    assert_eq!(ws[2]["state"]["size"], state("L2", 7, 0).len());
    assert!(ws[2]["state"]["last_modified"].is_string());
    let r = env.tfsync(&["list"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("* default"), "{r:?}");
    assert!(r.stdout.contains("alice@ci-runner-7"), "{r:?}");

    // locks (needs no --key)
    let mut cmd = env.server.tfsync(env.bucket(), KEY);
    cmd.env_remove("TFSYNC_KEY");
    let r = run(cmd.args(["--output", "json", "locks"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    let keys: Vec<&str> = v["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| l["state_key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, [format!("env:/dev/{KEY}"), prod.clone()], "{v:#}");
    let v = env.json(&["locks", "--older-than", "1h"]);
    assert_eq!(v["locks"].as_array().expect("locks").len(), 1, "{v:#}");
    assert_eq!(v["locks"][0]["lock"]["id"], stale_id);
    assert_eq!(v["locks"][0]["lock_key"], format!("{prod}.tflock"));
    let v = env.json(&["locks", "--prefix", "team/"]);
    assert_eq!(v["locks"].as_array().expect("locks").len(), 0, "{v:#}");

    // force-unlock --older-than never breaks a younger lock
    let r = env.tfsync(&[
        "-w",
        "dev",
        "force-unlock",
        "--yes",
        "--older-than",
        "1h",
        &fresh_id,
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("younger than"), "{r:?}");
    assert!(env.exists(&format!("env:/dev/{KEY}.tflock")).await);

    // --all without a terminal needs --yes
    let r = env.tfsync(&["force-unlock", "--all", "--older-than", "1h"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(env.exists(&format!("{prod}.tflock")).await);

    let v = env.json(&["force-unlock", "--all", "--older-than", "1h", "--yes"]);
    assert_eq!(
        v["released"].as_array().expect("released").len(),
        1,
        "{v:#}"
    );
    assert_eq!(v["released"][0]["lock"]["id"], stale_id);
    assert_eq!(v["left"].as_array().expect("left").len(), 0);
    assert!(
        !env.exists(&format!("{prod}.tflock")).await,
        "stale lock broken"
    );
    assert!(
        env.exists(&format!("env:/dev/{KEY}.tflock")).await,
        "fresh lock kept"
    );
    // Nothing stale left: a no-op.
    let v = env.json(&["force-unlock", "--all", "--older-than", "1h", "--yes"]);
    assert_eq!(v["released"].as_array().expect("released").len(), 0);

    // An old lock with a matching ID breaks with a single LOCK_ID too.
    env.store
        .put(
            &format!("{KEY}.tflock"),
            tf_lock(stale_id, "bob@x", "2026-02-01T00:00:00Z", env.bucket(), KEY),
            PutMode::Create,
        )
        .await
        .expect("lock");
    let r = env.tfsync(&["force-unlock", "--yes", "--older-than", "2h", stale_id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!env.exists(&format!("{KEY}.tflock")).await);
}

/// The lock changes between listing and deleting: the re-read catches it.
async fn changed_before_delete(server: Server) {
    let env = Env::new(server, "chg").await;
    let lock_key = format!("{KEY}.tflock");
    let id = "11111111-2222-3333-4444-555555555555";
    env.store
        .put(
            &lock_key,
            tf_lock(id, "a@h", "2026-01-01T00:00:00Z", env.bucket(), KEY),
            PutMode::Create,
        )
        .await
        .expect("old lock");
    let found = tfsync::tfstate::scan::locks(&env.store, "")
        .await
        .expect("scan");
    assert_eq!(found.len(), 1);
    let bound = std::time::Duration::from_secs(3600);
    assert!(found[0].age().expect("age") > bound);

    // Same ID, but renewed (younger) since the listing.
    let now = tfsync::tfstate::lock::go_rfc3339_nano(&chrono::Utc::now());
    env.store
        .put(
            &lock_key,
            tf_lock(id, "a@h", &now, env.bucket(), KEY),
            PutMode::Overwrite,
        )
        .await
        .expect("renew");
    match lock::release_stale(&env.store, KEY, id, bound).await {
        Err(LockError::TooYoung { .. }) => {}
        other => panic!("expected LockTooYoung, got {:?}", other.map(|i| i.id)),
    }
    assert!(env.exists(&lock_key).await, "younger lock kept");

    // Replaced by another holder since the listing.
    env.store.delete(&lock_key, None).await.expect("delete");
    env.store
        .put(
            &lock_key,
            tf_lock("other", "b@h", "2026-01-01T00:00:00Z", env.bucket(), KEY),
            PutMode::Create,
        )
        .await
        .expect("other lock");
    match lock::release_stale(&env.store, KEY, id, bound).await {
        Err(LockError::IdMismatch { .. }) => {}
        other => panic!("expected LockIdMismatch, got {:?}", other.map(|i| i.id)),
    }
    assert!(env.exists(&lock_key).await, "other holder's lock kept");
}

/// The holder releases its lock after `force-unlock --all` re-read it but
/// before its DELETE (held back by a proxy): the conditional DELETE finds
/// nothing, and the lock is reported already released, not released by
/// us (issue 9 item 17). Servers that honour If-Match on DELETE only (Ceph
/// RGW ignores it: the README names that window).
async fn released_by_holder_before_delete(server: Server) {
    use crate::support::proxy::{Fault, Proxy, Rule};
    let env = Env::new(server.clone(), "relb").await;
    let lock_key = format!("{KEY}.tflock");
    let id = "99999999-2222-3333-4444-555555555555";
    env.store
        .put(
            &lock_key,
            tf_lock(id, "a@h", "2026-01-01T00:00:00Z", env.bucket(), KEY),
            PutMode::Create,
        )
        .await
        .expect("old lock");
    let proxy = Proxy::start(server.endpoint().trim_start_matches("http://").to_string()).await;
    proxy.add(Rule {
        method: "DELETE",
        path_ends: ".tflock".into(),
        times: 1,
        fault: Fault::Delay(std::time::Duration::from_secs(2)),
    });
    let mut cmd = server.tfsync(env.bucket(), KEY);
    cmd.env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
        .args([
            "--output",
            "json",
            "force-unlock",
            "--all",
            "--older-than",
            "1h",
            "--yes",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    // The listing's GET and the re-read's GET of the lock have been
    // answered: the DELETE is on its way, held for 2 s.
    let started = std::time::Instant::now();
    while proxy
        .seen()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.split('?').next().unwrap_or("").ends_with(".tflock")
        })
        .count()
        < 2
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no re-read: {:?}",
            proxy
                .seen()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    env.store
        .delete(&lock_key, None)
        .await
        .expect("the holder releases");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["released"], serde_json::json!([]), "{v}");
    assert_eq!(v["already_released"][0]["id"], id, "{v}");
    assert_eq!(
        v["already_released"][0]["lock_key"],
        lock_key.as_str(),
        "{v}"
    );
    assert_eq!(v["left"], serde_json::json!([]), "{v}");
    assert!(
        proxy.seen().iter().any(|r| r.method == "DELETE"),
        "the DELETE was sent after the holder's release"
    );
}

const OUTPUTS_STATE: &str = r#"{
  "version": 4,
  "terraform_version": "1.11.0",
  "serial": 2,
  "lineage": "out-1",
  "outputs": {
    "vpc_id": {"value": "vpc-0abc\u003c1\u003e", "type": "string"},
    "db_password": {"value": "hunter2", "type": "string", "sensitive": true},
    "count": {"value": 3, "type": "number"},
    "subnets": {"value": ["10.0.1.0/24", "10.0.2.0/24"], "type": ["list", "string"]},
    "tags": {"value": {"env": "prod", "cost center": 42}, "type": ["object", {"env": "string", "cost center": "number"}]}
  },
  "resources": [],
  "check_results": null
}
"#;

async fn outputs(server: Server) {
    let env = Env::new(server, "outs").await;
    let r = env.tfsync(&["outputs"]);
    assert_eq!(r.code, 5, "no state yet: {r:?}");
    env.push("default", OUTPUTS_STATE.as_bytes()).await;

    let r = env.tfsync(&["outputs"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "count = 3\ndb_password = <sensitive>\nsubnets = [\n  \"10.0.1.0/24\",\n  \"10.0.2.0/24\",\n]\ntags = {\n  \"cost center\" = 42\n  env           = \"prod\"\n}\nvpc_id = \"vpc-0abc<1>\"\n",
        "{r:?}"
    );
    assert!(!r.stdout.contains("hunter2"));
    let r = env.tfsync(&["outputs", "--show-sensitive"]);
    assert!(r.stdout.contains("db_password = \"hunter2\""), "{r:?}");

    let v = env.json(&["outputs"]);
    let names: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(names, ["count", "db_password", "subnets", "tags", "vpc_id"]);
    assert_eq!(
        v["db_password"],
        serde_json::json!({"sensitive": true, "type": "string", "value": null})
    );
    assert_eq!(
        v["subnets"],
        serde_json::json!({"sensitive": false, "type": ["list", "string"], "value": ["10.0.1.0/24", "10.0.2.0/24"]})
    );
    let v = env.json(&["outputs", "--show-sensitive"]);
    assert_eq!(v["db_password"]["value"], "hunter2");
    let v = env.json(&["outputs", "tags"]);
    assert_eq!(v, serde_json::json!({"env": "prod", "cost center": 42}));

    let r = env.tfsync(&["outputs", "vpc_id", "--raw"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "vpc-0abc<1>"), "{r:?}");
    let r = env.tfsync(&["outputs", "count", "--raw"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "3"), "{r:?}");
    let r = env.tfsync(&["outputs", "subnets", "--raw"]);
    assert_eq!(r.code, 1, "a list is not raw: {r:?}");
    let r = env.tfsync(&["outputs", "db_password", "--raw"]);
    assert_eq!(r.code, 1, "sensitive needs --show-sensitive: {r:?}");
    assert!(
        r.stdout.is_empty() && r.stderr.contains("--show-sensitive"),
        "{r:?}"
    );
    let r = env.tfsync(&["outputs", "db_password", "--raw", "--show-sensitive"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hunter2"), "{r:?}");
    let r = env.tfsync(&["outputs", "db_password"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "<sensitive>\n"), "{r:?}");
    let r = env.tfsync(&["outputs", "nope"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("vpc_id"),
        "lists the known outputs: {r:?}"
    );
}

on_each_server!(views, changed_before_delete, outputs,);
on_each_server!([moto, seaweedfs] released_by_holder_before_delete);
