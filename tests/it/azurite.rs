//! The azurerm groundwork (`tfsync::store::azure`) against Azurite: the
//! SharedKey-signed requests Terraform's azurerm lock is made of, done the
//! way `internal/backend/remote-state/azure/client.go` does them.

use crate::support;
use hyper::Method;
use tfsync::store::azure::{BlobClient, LOCK_INFO_META};

fn client(server: &support::Server, container: &str) -> BlobClient {
    BlobClient::new(
        &server.env["AZURE_STORAGE_ENDPOINT"],
        &server.env["AZURE_STORAGE_ACCOUNT"],
        &server.env["ARM_ACCESS_KEY"],
        container,
    )
    .expect("client")
}

#[tokio::test]
async fn terraform_lease_lock_on_azurite() {
    let Some(server) = support::server("azurite") else {
        return;
    };
    let container = support::unique_name("az").to_lowercase().replace('_', "-");
    let c = client(&server, &container);
    let r = c
        .request(Method::PUT, None, &[("restype", "container")], &[], vec![])
        .await
        .expect("create container");
    assert_eq!(r.status, 201, "{r:?}");

    // Terraform's Lock on a missing state: create the blob empty, then an
    // infinite lease with the lock's ID, then the info in the metadata.
    let blob = "prod/terraform.tfstateenv:dev";
    let r = c
        .request(Method::HEAD, Some(blob), &[], &[], vec![])
        .await
        .expect("head");
    assert_eq!(r.status, 404);
    let r = c
        .request(
            Method::PUT,
            Some(blob),
            &[],
            &[
                ("x-ms-blob-type", "BlockBlob".into()),
                ("content-type", "application/json".into()),
            ],
            vec![],
        )
        .await
        .expect("put empty");
    assert_eq!(r.status, 201, "{r:?}");
    let id = uuid::Uuid::new_v4().to_string();
    let r = c
        .lease(
            blob,
            "acquire",
            &[
                ("x-ms-lease-duration", "-1".into()),
                ("x-ms-proposed-lease-id", id.clone()),
            ],
        )
        .await
        .expect("acquire");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("x-ms-lease-id"), Some(id.as_str()));
    let info = format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"alice@build-7","Version":"1.11.0","Created":"2026-11-30T09:55:24.570354Z","Path":"{container}/{blob}"}}"#
    );
    let r = c
        .write_lock_info(blob, Some(info.as_bytes()), &id)
        .await
        .expect("metadata");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        c.read_lock_info(blob).await.expect("read"),
        Some(info.clone().into_bytes()),
        "base64 JSON in {LOCK_INFO_META}"
    );

    // Held: another acquire is refused, a write without the lease too.
    let r = c
        .lease(
            blob,
            "acquire",
            &[
                ("x-ms-lease-duration", "-1".into()),
                ("x-ms-proposed-lease-id", uuid::Uuid::new_v4().to_string()),
            ],
        )
        .await
        .expect("second acquire");
    assert_eq!(r.status, 409, "{r:?}");
    let r = c
        .request(
            Method::PUT,
            Some(blob),
            &[],
            &[("x-ms-blob-type", "BlockBlob".into())],
            b"{}".to_vec(),
        )
        .await
        .expect("put without the lease");
    assert_eq!(r.status, 412, "{r:?}");
    let r = c
        .request(
            Method::PUT,
            Some(blob),
            &[],
            &[
                ("x-ms-blob-type", "BlockBlob".into()),
                ("x-ms-lease-id", id.clone()),
            ],
            b"{\"serial\":1}".to_vec(),
        )
        .await
        .expect("put with the lease");
    assert_eq!(r.status, 201, "{r:?}");

    // Unlock: another ID is refused; the ID clears the info and releases.
    let r = c
        .lease(
            blob,
            "release",
            &[("x-ms-lease-id", uuid::Uuid::new_v4().to_string())],
        )
        .await
        .expect("release other");
    assert_eq!(r.status, 409, "{r:?}");
    let r = c.write_lock_info(blob, None, &id).await.expect("clear");
    assert_eq!(r.status, 200, "{r:?}");
    let r = c
        .lease(blob, "release", &[("x-ms-lease-id", id.clone())])
        .await
        .expect("release");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.read_lock_info(blob).await.expect("read"), None);
    let r = c
        .request(Method::GET, Some(blob), &[], &[], vec![])
        .await
        .expect("get");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"serial\":1}"[..]));

    let r = c
        .request(
            Method::DELETE,
            None,
            &[("restype", "container")],
            &[],
            vec![],
        )
        .await
        .expect("delete container");
    assert_eq!(r.status, 202, "{r:?}");
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let Some(server) = support::server("azurite") else {
        return;
    };
    let c = BlobClient::new(
        &server.env["AZURE_STORAGE_ENDPOINT"],
        &server.env["AZURE_STORAGE_ACCOUNT"],
        "d3Jvbmcga2V5",
        "nope",
    )
    .expect("client");
    let r = c
        .request(Method::PUT, None, &[("restype", "container")], &[], vec![])
        .await
        .expect("request");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        !format!("{c:?}").contains("d3Jvbmcga2V5"),
        "the key never shows"
    );
}

/// An empty blob (what Terraform's azurerm `Lock` creates for a missing
/// state) is no state: not found, not listed, and a create-only write
/// fills it; a second create-only write is refused.
#[tokio::test]
async fn an_empty_blob_is_no_state() {
    use tfsync::store::{ObjectStore, PutMode, StoreError};
    let Some(server) = support::server("azurite") else {
        return;
    };
    let container = support::unique_name("azempty")
        .to_lowercase()
        .replace('_', "-");
    let c = client(&server, &container);
    let r = c
        .request(Method::PUT, None, &[("restype", "container")], &[], vec![])
        .await
        .expect("create container");
    assert_eq!(r.status, 201, "{r:?}");
    let r = c
        .request(
            Method::PUT,
            Some("k.tfstate"),
            &[],
            &[("x-ms-blob-type", "BlockBlob".into())],
            vec![],
        )
        .await
        .expect("empty blob");
    assert_eq!(r.status, 201, "{r:?}");
    let s = tfsync::store::azure::AzureStore::new(c);
    assert!(matches!(
        s.get("k.tfstate").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.list("").await.expect("list").is_empty());
    s.put("k.tfstate", b"{}".to_vec(), PutMode::Create)
        .await
        .expect("create fills the empty blob");
    assert_eq!(s.get("k.tfstate").await.expect("get").bytes, b"{}");
    assert!(matches!(
        s.put("k.tfstate", b"{1}".to_vec(), PutMode::Create).await,
        Err(StoreError::AlreadyExists { .. })
    ));
}

/// The lease lock through the lock set: a Terraform-style lease lock (taken
/// here by the test as client.go takes it) blocks tfsync's lock, is shown
/// with its holder, is not released with another ID, and is released with
/// its own; tfsync's lock makes Terraform's acquire fail (409) and a write
/// under it names the lease.
#[tokio::test]
async fn the_lease_is_the_lock() {
    use std::time::Duration;
    use tfsync::store::{ObjectStore, PutMode};
    use tfsync::tfstate::guard::{LockSet, LockSpec, take, under_lock};
    use tfsync::tfstate::lock::{Current, LockError};
    let Some(server) = support::server("azurite") else {
        return;
    };
    let container = support::unique_name("azlock")
        .to_lowercase()
        .replace('_', "-");
    let c = client(&server, &container);
    let r = c
        .request(Method::PUT, None, &[("restype", "container")], &[], vec![])
        .await
        .expect("create container");
    assert_eq!(r.status, 201, "{r:?}");
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    let key = "net/terraform.tfstate";
    store
        .put(key, br#"{"serial":1}"#.to_vec(), PutMode::Create)
        .await
        .expect("seed");

    // Terraform's lock.
    let id = uuid::Uuid::new_v4().to_string();
    let r = c
        .lease(
            key,
            "acquire",
            &[
                ("x-ms-lease-duration", "-1".into()),
                ("x-ms-proposed-lease-id", id.clone()),
            ],
        )
        .await
        .expect("acquire");
    assert_eq!(r.status, 201, "{r:?}");
    let info = format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"alice@build-7","Version":"1.11.0","Created":"2026-11-30T09:55:24Z","Path":"{container}/{key}"}}"#
    );
    c.write_lock_info(key, Some(info.as_bytes()), &id)
        .await
        .expect("metadata");

    let warn = |_: String| {};
    let r = take(&LockSpec::new(&store, key, "test"), Duration::ZERO, &warn).await;
    let msg = format!("{}", r.expect_err("held by Terraform"));
    assert!(msg.contains(&id) && msg.contains("alice@build-7"), "{msg}");
    let set = LockSet::new(&store, key);
    match set.holder().await.expect("holder").1 {
        Current::Locked { info, .. } => assert_eq!(info.id, id),
        _ => panic!("not shown as locked"),
    }
    assert!(matches!(
        set.release(&uuid::Uuid::new_v4().to_string(), None).await,
        Err(LockError::IdMismatch { .. })
    ));
    assert_eq!(set.release(&id, None).await.expect("released").id, id);
    assert!(matches!(
        set.holder().await.expect("holder").1,
        Current::Unlocked
    ));

    // tfsync's lock: Terraform's acquire is refused while it is held, the
    // state is written under it, and it is gone after.
    under_lock(
        LockSpec::new(&store, key, "test"),
        Duration::ZERO,
        &warn,
        async {
            let r = c
                .lease(
                    key,
                    "acquire",
                    &[
                        ("x-ms-lease-duration", "-1".into()),
                        ("x-ms-proposed-lease-id", uuid::Uuid::new_v4().to_string()),
                    ],
                )
                .await
                .expect("terraform tries");
            assert_eq!(r.status, 409, "{r:?}");
            let lock = c.read_lock_info(key).await.expect("info").expect("written");
            let v: serde_json::Value = serde_json::from_slice(&lock).expect("json");
            assert_eq!(v["Path"], format!("{container}/{key}"));
            let now = store.get(key).await.expect("get");
            store
                .put(
                    key,
                    br#"{"serial":2}"#.to_vec(),
                    PutMode::Update(now.meta.etag.clone().expect("etag")),
                )
                .await
                .expect("a write under the lease");
            Ok(())
        },
    )
    .await
    .expect("under lock");
    assert_eq!(store.get(key).await.expect("get").bytes, br#"{"serial":2}"#);
    assert!(matches!(
        LockSet::new(&store, key).holder().await.expect("holder").1,
        Current::Unlocked
    ));
    assert_eq!(c.read_lock_info(key).await.expect("info"), None);

    // `tfsync lock` keeps it across processes: another store releases it
    // by its ID.
    let info = take(&LockSpec::new(&store, key, "keep"), Duration::ZERO, &warn)
        .await
        .expect("lock");
    let other = tfsync::store::azure::AzureStore::new(c.clone());
    assert_eq!(
        LockSet::new(&other, key)
            .release(&info.id, None)
            .await
            .expect("unlock")
            .id,
        info.id
    );
}

/// The binary with a `backend "azurerm"` block, on Azurite: push, pull,
/// workspaces at `<key>env:<W>`, `list`, and `lock` / `push --lock-id` /
/// `status` / `unlock` across processes (the lease outlives each).
#[tokio::test]
async fn a_backend_azurerm_block_drives_the_commands() {
    use tfsync::store::ObjectStore;
    let Some(server) = support::server("azurite") else {
        return;
    };
    let container = support::unique_name("azcli")
        .to_lowercase()
        .replace('_', "-");
    let c = client(&server, &container);
    let r = c
        .request(Method::PUT, None, &[("restype", "container")], &[], vec![])
        .await
        .expect("create container");
    assert_eq!(r.status, 201, "{r:?}");
    let d = tempfile::tempdir().expect("tmp");
    let dir = d.path();
    std::fs::write(
        dir.join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{}\"\n    container_name       = \"{container}\"\n    key                  = \"net/terraform.tfstate\"\n  }}\n}}\n",
            server.env["AZURE_STORAGE_ACCOUNT"]
        ),
    )
    .expect("tf");
    let tfsync = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("ARM_ACCESS_KEY", &server.env["ARM_ACCESS_KEY"])
            .env(
                "TFSYNC_AZURE_ENDPOINT",
                &server.env["AZURE_STORAGE_ENDPOINT"],
            )
            .current_dir(dir)
            .args(args);
        support::run(&mut cmd)
    };
    let v1 = support::state("az", 1, 2);
    std::fs::write(dir.join("s.json"), &v1).expect("s");
    let r = tfsync(&["push", "s.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = tfsync(&["-w", "dev", "push", "s.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    assert_eq!(
        store
            .get("net/terraform.tfstate")
            .await
            .expect("default")
            .bytes,
        v1
    );
    assert_eq!(
        store
            .get("net/terraform.tfstateenv:dev")
            .await
            .expect("dev")
            .bytes,
        v1,
        "<key>env:<W>"
    );
    let r = tfsync(&["pull"]);
    assert_eq!((r.code, r.stdout.as_bytes()), (0, &v1[..]), "{r:?}");
    let r = tfsync(&["--output", "json", "list"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let names: Vec<&str> = v["workspaces"]
        .as_array()
        .expect("ws")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "dev"], "{v}");

    let r = tfsync(&["lock", "--info", "maintenance"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let r = tfsync(&["push", "s.json"]);
    assert_eq!(r.code, 3, "held: {r:?}");
    assert!(
        r.stderr.contains(&id) && r.stderr.contains("maintenance"),
        "{r:?}"
    );
    let v2 = support::state("az", 2, 2);
    std::fs::write(dir.join("s2.json"), &v2).expect("s2");
    let r = tfsync(&["push", "--lock-id", &id, "s2.json"]);
    assert_eq!(r.code, 0, "under the lock from another process: {r:?}");
    let r = tfsync(&["--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["lock"]["ID"], id.as_str(), "{v}");
    assert_eq!(v["state"]["serial"], 2, "{v}");
    let r = tfsync(&["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = tfsync(&["--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert!(v["lock"].is_null(), "{v}");
    let r = tfsync(&["config"]);
    assert!(
        r.stdout.contains("azurerm") && !r.stdout.contains(&server.env["ARM_ACCESS_KEY"]),
        "{r:?}"
    );
}
