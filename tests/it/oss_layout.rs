//! A `backend "oss"` block on a local S3-compatible server (OSS is read
//! through its S3-compatible API; no OSS here): the oss layout (default
//! workspace at `<prefix>/<key>`, others at `<prefix>/<W>/<key>`, prefix
//! `env:`, key `terraform.tfstate`), the reading commands on it, and the
//! refusal of locks and state writes (its lock lives in TableStore) unless
//! `push --lock=false` / `restore --version-id --lock=false`.

use crate::support::{Run, Server, run, state};
use tfsync::store::{ObjectStore, PutMode};

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

async fn oss_layout(server: Server) {
    let store = server.new_versioned_bucket("oss").await;
    let bucket = store.bucket().to_string();
    let (default, dev) = ("env:/terraform.tfstate", "env:/dev/terraform.tfstate");
    // The s3 layout's default key holds something else: it must not be read.
    for (key, bytes) in [
        (default, state("oss-default", 1, 1)),
        (default, state("oss-default", 2, 1)),
        (dev, state("oss-dev", 5, 2)),
        ("terraform.tfstate", state("s3-layout", 9, 0)),
    ] {
        store
            .put(key, bytes, PutMode::Overwrite)
            .await
            .expect("seed");
    }
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"oss\" {{\n    bucket = \"{bucket}\"\n    region = \"us-east-1\"\n    endpoint = \"{}\"\n    tablestore_table = \"tf-locks\"\n  }}\n}}\n",
            server.endpoint()
        ),
    )
    .expect("backend.tf");
    // OSS credentials from ALICLOUD_*; the bucket, key and endpoint from the
    // block (and Terraform's defaults), nothing from TFSYNC_*.
    let tfsync = |args: &[&str]| {
        let mut c = server.tfsync(&bucket, "unused");
        c.env_remove("TFSYNC_BUCKET")
            .env_remove("TFSYNC_KEY")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("ALICLOUD_ACCESS_KEY", &server.env["AWS_ACCESS_KEY_ID"])
            .env("ALICLOUD_SECRET_KEY", &server.env["AWS_SECRET_ACCESS_KEY"])
            // Local servers are path-style; OSS itself is virtual-hosted.
            .arg("--path-style")
            .arg("--chdir")
            .arg(d.path())
            .args(args);
        run(&mut c)
    };

    // pull: the default workspace and `dev`, at their oss keys.
    let r = tfsync(&["pull"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.as_bytes(), state("oss-default", 2, 1), "{r:?}");
    assert!(r.stderr.contains("Alibaba TableStore"), "{r:?}");
    let r = tfsync(&["-w", "dev", "pull"]);
    assert_eq!(
        (r.code, r.stdout.as_bytes()),
        (0, state("oss-dev", 5, 2).as_slice()),
        "{r:?}"
    );

    // status, list, outputs, history, backup.
    let v = json(&tfsync(&["--output", "json", "status"]));
    assert_eq!(v["key"], default, "{v}");
    assert_eq!(v["state"]["serial"], 2, "{v}");
    let v = json(&tfsync(&["--output", "json", "list"]));
    let ws: Vec<(String, String)> = v["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap_or_default().to_string(),
                w["state_key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ws,
        [
            ("default".to_string(), default.to_string()),
            ("dev".to_string(), dev.to_string())
        ],
        "{v}"
    );
    assert_eq!(v["workspaces"][1]["state"]["serial"], 5, "{v}");
    let r = tfsync(&["outputs", "url", "--raw"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "https://x/?a=1&b=2"),
        "{r:?}"
    );
    let r = tfsync(&["--output", "json", "history"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    let versions = v["versions"].as_array().expect("versions");
    let serials: Vec<_> = versions.iter().map(|v| v["serial"].clone()).collect();
    assert_eq!(serials, [2, 1], "{v}");
    let first = versions[1]["version_id"].as_str().expect("id").to_string();
    let backups = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", backups.path().display());
    let r = tfsync(&[
        "--output", "json", "backup", "--to", &to, "--prefix", "env:/",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(
        (v["seen"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    let snapshot = backups
        .path()
        .join(v["snapshot"].as_str().expect("snapshot"));
    assert_eq!(
        std::fs::read(snapshot.join(default)).expect("backed up"),
        state("oss-default", 2, 1)
    );

    // Locks and state writes are refused (exit 2), nothing written.
    let f = d.path().join("new.tfstate");
    std::fs::write(&f, state("oss-default", 3, 1)).expect("write");
    let file = f.to_string_lossy().into_owned();
    for args in [
        &["push", file.as_str()][..],
        &["lock"],
        &["unlock", "59fef1d5-d094-c52e-6aa5-e30279394a88"],
        &[
            "force-unlock",
            "--yes",
            "59fef1d5-d094-c52e-6aa5-e30279394a88",
        ],
        &["restore", "--version-id", &first],
        &["migrate", "--to", &format!("s3://{bucket}/moved")],
    ] {
        let r = tfsync(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("refused")
                && r.stderr.contains("Alibaba TableStore")
                && r.stderr.contains(default),
            "{args:?}: {r:?}"
        );
        if args[0] == "push" || args[0] == "restore" {
            assert!(r.stderr.contains("--lock=false"), "{args:?}: {r:?}");
        }
    }
    let r = tfsync(&["pull"]);
    assert_eq!(r.stdout.as_bytes(), state("oss-default", 2, 1), "{r:?}");

    // push --lock=false writes (compare-and-swap, push rules), takes no lock.
    let r = tfsync(&["push", "--lock=false", &file]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = tfsync(&["pull"]);
    assert_eq!(r.stdout.as_bytes(), state("oss-default", 3, 1), "{r:?}");
    // restore --version-id --lock=false: serial 1's bytes as serial 4.
    let r = tfsync(&["restore", "--version-id", &first, "--lock=false"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = tfsync(&["pull"]);
    assert!(r.stdout.contains("\"serial\": 4"), "{r:?}");
    let keys: Vec<String> = store
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(
        !keys.iter().any(|k| k.ends_with(".tflock")),
        "a lock object was written: {keys:?}"
    );
    assert!(!keys.iter().any(|k| k.starts_with("moved")), "{keys:?}");
    // The s3 layout's key was never touched.
    assert_eq!(
        store.get("terraform.tfstate").await.expect("get").bytes,
        state("s3-layout", 9, 0)
    );
}

on_each_server!([moto, seaweedfs] oss_layout);
