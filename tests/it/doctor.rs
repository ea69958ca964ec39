//! `tfsync doctor` on real servers: safe on unversioned Ceph RGW, SeaweedFS
//! and moto; unsafe on a versioned Ceph bucket and on s3rver (which ignores
//! conditional writes). Scratch objects, versions and delete markers are
//! gone afterwards. And the loud warning of `lock` / `push` on a versioned
//! bucket of an S3-compatible endpoint.

use crate::support;
use crate::support::{Server, run};
use serde_json::Value;
use tfsync::store::s3::S3Store;

/// Run doctor with JSON output; check the report's shape and that nothing
/// is left under the reserved prefix.
async fn doctor(server: &Server, store: &S3Store) -> (i32, Value) {
    let bucket = tfsync::store::ObjectStore::bucket(store).to_string();
    let mut cmd = server.tfsync(&bucket, "unused");
    cmd.env_remove("TFSYNC_KEY");
    let r = run(cmd.args(["doctor", "--output", "json"]));
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("json: {e}: {r:?}"));
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    for id in [
        "permissions",
        "versioning",
        "create_only",
        "create_after_delete",
        "if_match_stale",
        "if_match_current",
        "conditional_delete",
        "checksum_header",
        "checksum_trailer",
        "cleanup",
    ] {
        assert!(ids.contains(&id), "check {id} missing: {v:#}");
    }
    assert_eq!(verdict(&v, "cleanup"), "pass", "{v:#}");
    let left = tfsync::store::ObjectStore::list(store, ".tfsync-doctor/")
        .await
        .expect("list");
    assert!(left.is_empty(), "objects left: {left:?}");
    if let Ok(versions) = store.list_versions(".tfsync-doctor/").await {
        assert!(versions.is_empty(), "versions left: {versions:?}");
    }
    assert_eq!(v["safe"], r.code == 0, "{r:?}");
    (r.code, v)
}

fn verdict<'a>(v: &'a Value, id: &str) -> &'a str {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["verdict"].as_str())
        .unwrap_or("missing")
}

async fn safe_unversioned(server: Server) {
    let store = server.new_bucket("doc").await;
    let (code, v) = doctor(&server, &store).await;
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["versioning"], "off");
    for id in [
        "permissions",
        "create_only",
        "create_after_delete",
        "if_match_stale",
        "if_match_current",
    ] {
        assert_eq!(verdict(&v, id), "pass", "{id}: {v:#}");
    }
}

async fn versioned(server: Server, expect_safe: bool) {
    let store = server.new_versioned_bucket("docv").await;
    let (code, v) = doctor(&server, &store).await;
    assert_eq!(v["versioning"], "enabled", "{v:#}");
    if expect_safe {
        assert_eq!(code, 0, "{v:#}");
    } else {
        assert_eq!(code, 6, "{v:#}");
        assert_eq!(verdict(&v, "create_after_delete"), "fail", "{v:#}");
        let reasons = v["reasons"].to_string();
        assert!(reasons.contains("disable versioning"), "{v:#}");
    }
}

async fn unsafe_s3rver(server: Server) {
    let store = server.new_bucket("docs3").await;
    let (code, v) = doctor(&server, &store).await;
    assert_eq!(code, 6, "{v:#}");
    assert_eq!(verdict(&v, "create_only"), "fail", "{v:#}");
    assert!(
        v["reasons"].to_string().contains("use another lock store"),
        "{v:#}"
    );
    assert_eq!(verdict(&v, "if_match_stale"), "warn", "{v:#}");
}

/// `lock` and `push` warn on a versioned bucket of a custom endpoint, and
/// only there.
async fn lock_warns_on_versioning(server: Server) {
    let key = "w/terraform.tfstate";
    let plain = server.new_bucket("lw").await;
    let r = run(server
        .tfsync(tfsync::store::ObjectStore::bucket(&plain), key)
        .arg("lock"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stderr.contains("warning"),
        "no warning unversioned: {r:?}"
    );

    let store = server.new_versioned_bucket("lwv").await;
    let bucket = tfsync::store::ObjectStore::bucket(&store).to_string();
    let r = run(server.tfsync(&bucket, key).arg("lock"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: versioning is enabled") && r.stderr.contains("tfsync doctor"),
        "{r:?}"
    );
    let id = r.stdout.trim().to_string();
    assert_eq!(
        run(server.tfsync(&bucket, key).args(["unlock", &id])).code,
        0
    );

    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.tfstate");
    std::fs::write(&f, support::state("l", 1, 0)).expect("write");
    let r = run(server.tfsync(&bucket, key).arg("push").arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("warning: versioning is enabled"), "{r:?}");
}

async fn doctor_safe_unversioned(server: Server) {
    safe_unversioned(server).await
}

async fn doctor_unsafe_versioned(server: Server) {
    versioned(server, false).await
}

async fn doctor_safe_versioned(server: Server) {
    versioned(server, true).await
}

async fn lock_warns_on_versioned_bucket(server: Server) {
    lock_warns_on_versioning(server).await
}

async fn doctor_unsafe_ignores_conditions(server: Server) {
    unsafe_s3rver(server).await
}

on_each_server!(doctor_safe_unversioned);
on_each_server!([ceph] doctor_unsafe_versioned, lock_warns_on_versioned_bucket);
on_each_server!([seaweedfs, moto] doctor_safe_versioned);
on_each_server!([s3rver] doctor_unsafe_ignores_conditions);

/// The azurerm backend on Azurite: doctor probes what Terraform's lease
/// lock and tfsync's conditional writes need (a second lease refused, a
/// write without the lease refused, create-only and If-Match refused when
/// stale, a break) and calls it safe; nothing is left in the container.
/// A missing container is named as such.
#[tokio::test]
async fn azurerm_on_azurite_is_probed_through_leases() {
    use tfsync::store::ObjectStore;
    use tfsync::store::azure::AzureStore;
    let Some(server) = support::server("azurite") else {
        return;
    };
    let container = support::azure::container_name("doctor");
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{}\"\n    container_name       = \"{container}\"\n    key                  = \"app/terraform.tfstate\"\n  }}\n}}\n",
            server.env["AZURE_STORAGE_ACCOUNT"]
        ),
    )
    .expect("backend.tf");
    let doctor = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("ARM_ACCESS_KEY", &server.env["ARM_ACCESS_KEY"])
            .env(
                "TFSYNC_AZURE_ENDPOINT",
                &server.env["AZURE_STORAGE_ENDPOINT"],
            )
            .current_dir(dir.path())
            .args(["doctor", "--output", "json"]);
        run(&mut cmd)
    };

    let r = doctor();
    assert_eq!(r.code, 6, "no container: unsafe: {r:?}");
    assert!(r.stderr.contains("the container does not exist"), "{r:?}");

    let client = support::azure::create_container(&server, &container).await;
    let r = doctor();
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["safe"], true, "{v:#}");
    for id in [
        "permissions",
        "create_only",
        "if_match",
        "lease_exclusive",
        "lease_guards_writes",
        "lease_break",
        "cleanup",
    ] {
        assert_eq!(verdict(&v, id), "pass", "{id}: {v:#}");
    }
    let left = AzureStore::new(client)
        .list("")
        .await
        .expect("list the container");
    assert!(left.is_empty(), "scratch blobs left: {left:?}");
}

/// Terraform's local backend: doctor checks, on a scratch file beside the
/// state, that the file system keeps a second fcntl write lock (and flock)
/// out, names the file system, and leaves nothing behind.
#[test]
fn local_backend_locks_are_probed_on_its_file_system() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("main.tf"), "terraform {}\n").expect("main.tf");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .args(["doctor", "--output", "json"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["safe"], true, "{v:#}");
    for id in [
        "permissions",
        "filesystem",
        "os_lock_excludes",
        "os_lock_visible",
        "flock_excludes",
        "cleanup",
    ] {
        assert_eq!(verdict(&v, id), "pass", "{id}: {v:#}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("main.tf")],
        "nothing left"
    );
}
