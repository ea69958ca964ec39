//! Configuration from a Terraform directory and an OpenMCF manifest, through
//! the binary, against the real servers: the settings found there really
//! drive the requests, and `tfsync config` names each source and no secret.

use crate::support::{Server, run, state};
use serde_json::Value;
use tfsync::store::ObjectStore;

fn bare(server: &Server) -> std::process::Command {
    // The server's environment without TFSYNC_BUCKET / TFSYNC_KEY / endpoint.
    let mut cmd = server.tfsync("unused", "unused");
    cmd.env_remove("TFSYNC_BUCKET")
        .env_remove("TFSYNC_KEY")
        .env_remove("AWS_ENDPOINT_URL_S3");
    cmd
}

async fn from_backend_block(server: Server) {
    let store = server.new_bucket("cfg").await;
    let bucket = store.bucket().to_string();
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"s3\" {{\n    bucket = \"{bucket}\"\n    key = \"proj/terraform.tfstate\"\n    region = \"us-east-1\"\n    endpoints = {{ s3 = \"{}\" }}\n    use_path_style = true\n    use_lockfile = true\n  }}\n}}\n",
            server.endpoint()
        ),
    )
    .expect("tf");
    let f = d.path().join("s.tfstate");
    std::fs::write(&f, state("cfg", 1, 1)).expect("w");
    let chdir = d.path().to_string_lossy().into_owned();
    let r = run(bare(&server).args(["--chdir", &chdir, "push"]).arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("warning"),
        "{r:?}"
    );
    assert_eq!(
        store
            .get("proj/terraform.tfstate")
            .await
            .expect("pushed")
            .bytes,
        state("cfg", 1, 1)
    );

    let r = run(bare(&server).args(["--chdir", &chdir, "--output", "json", "config"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    let src = |name: &str| {
        v["settings"]
            .as_array()
            .expect("settings")
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["source"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert!(src("bucket").contains("backend.tf"), "{v:#}");
    assert!(src("endpoint").contains("backend.tf"), "{v:#}");
    assert!(src("workspace").starts_with("default"), "{v:#}");
    let secret = &server.env["AWS_SECRET_ACCESS_KEY"];
    let access = &server.env["AWS_ACCESS_KEY_ID"];
    assert!(!r.stdout.contains(secret.as_str()) && !r.stderr.contains(secret.as_str()));
    assert!(!r.stdout.contains(access.as_str()), "{r:?}");
    // A flag beats the block.
    let r = run(bare(&server).args(["--chdir", &chdir, "--key", "other.tfstate", "status"]));
    assert_eq!(r.code, 5, "no state at the flag's key: {r:?}");
}

async fn from_manifest(server: Server) {
    let store = server.new_bucket("mcf").await;
    let d = tempfile::tempdir().expect("tmp");
    let m = d.path().join("manifest.yaml");
    std::fs::write(
        &m,
        format!(
            "apiVersion: aws.openmcf.org/v1\nkind: AwsS3Bucket\nmetadata:\n  name: x\n  labels:\n    terraform.openmcf.org/backend.type: s3\n    terraform.openmcf.org/backend.bucket: {}\n    terraform.openmcf.org/backend.key: mcf/terraform.tfstate\n    terraform.openmcf.org/backend.endpoint: {}\n",
            store.bucket(),
            server.endpoint()
        ),
    )
    .expect("m");
    let empty = tempfile::tempdir().expect("tmp");
    let r = run(bare(&server)
        .current_dir(empty.path())
        .arg("-f")
        .arg(&m)
        .args(["lock", "--operation", "from-manifest"]));
    assert_eq!(r.code, 0, "{r:?}");
    let lock = store
        .get("mcf/terraform.tfstate.tflock")
        .await
        .expect("lock taken where the manifest says");
    assert!(String::from_utf8_lossy(&lock.bytes).contains("from-manifest"));
    // `-f manifest.yaml status`: the state where the labels say, and the
    // lock just taken.
    store
        .put(
            "mcf/terraform.tfstate",
            crate::support::state("mcf-s3", 4, 1),
            tfsync::store::PutMode::Create,
        )
        .await
        .expect("seed");
    let r = run(bare(&server)
        .current_dir(empty.path())
        .arg("-f")
        .arg(&m)
        .args(["--output", "json", "status"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        (
            v["state"]["serial"].as_u64(),
            v["state"]["lineage"].as_str()
        ),
        (Some(4), Some("mcf-s3")),
        "{v}"
    );
    assert_eq!(v["lock"]["Operation"], "from-manifest", "{v}");

    // A tofu manifest with only tofu.openmcf.org labels: its provisioner
    // label picks them (no --engine needed).
    let t = d.path().join("tofu.yaml");
    std::fs::write(
        &t,
        format!(
            "apiVersion: aws.openmcf.org/v1\nkind: AwsS3Bucket\nmetadata:\n  name: x\n  labels:\n    openmcf.org/provisioner: tofu\n    tofu.openmcf.org/backend.type: s3\n    tofu.openmcf.org/backend.bucket: {}\n    tofu.openmcf.org/backend.key: tofu/terraform.tfstate\n    tofu.openmcf.org/backend.endpoint: {}\n",
            store.bucket(),
            server.endpoint()
        ),
    )
    .expect("m");
    let r = run(bare(&server)
        .current_dir(empty.path())
        .arg("-f")
        .arg(&t)
        .args(["lock", "--operation", "from-tofu-manifest"]));
    assert_eq!(r.code, 0, "{r:?}");
    let lock = store
        .get("tofu/terraform.tfstate.tflock")
        .await
        .expect("lock taken where the tofu labels say");
    assert!(String::from_utf8_lossy(&lock.bytes).contains("from-tofu-manifest"));
    let r = run(bare(&server)
        .current_dir(empty.path())
        .arg("-f")
        .arg(&t)
        .args(["config", "--output", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let row = |name: &str| {
        v["settings"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not shown: {v:#}"))
    };
    assert_eq!(row("engine")["value"], "tofu", "{v:#}");
    assert_eq!(
        row("manifest_labels")["value"],
        "tofu.openmcf.org/backend.*, then terraform.openmcf.org/backend.*"
    );
    let why = row("manifest_labels")["source"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(why.contains("label openmcf.org/provisioner"), "{why}");
    assert!(
        row("bucket")["source"]
            .as_str()
            .is_some_and(|s| s.contains("tofu.openmcf.org/backend.bucket")),
        "{v:#}"
    );
    // --engine terraform overrides the label: no terraform.* labels there.
    let r = run(bare(&server)
        .current_dir(empty.path())
        .arg("-f")
        .arg(&t)
        .args(["--engine", "terraform", "status"]));
    assert_eq!(r.code, 2, "{r:?}");

    // Nothing anywhere and no terminal: one error naming every source.
    let r = run(bare(&server).current_dir(empty.path()).arg("status"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--bucket or TFSYNC_BUCKET")
            && r.stderr.contains("terraform.openmcf.org/backend.key"),
        "{r:?}"
    );
}

on_each_server!(from_backend_block, from_manifest,);
