//! The azurerm groundwork (`tfsync::store::azure`) against Azurite: the
//! SharedKey-signed requests Terraform's azurerm lock is made of, done the
//! way `internal/backend/remote-state/azure/client.go` does them.

use crate::support;
use crate::support::azure::new_container;
use hyper::Method;
use tfsync::store::azure::{BlobClient, LOCK_INFO_META};

#[tokio::test]
async fn terraform_lease_lock_on_azurite() {
    let Some(server) = support::server("azurite") else {
        return;
    };
    let (container, c) = new_container(&server, "az").await;

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
    let (_, c) = new_container(&server, "azempty").await;
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
    let (container, c) = new_container(&server, "azlock").await;
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
    let (container, c) = new_container(&server, "azcli").await;
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

/// Every blob of the container (empty ones too, which the store hides),
/// with what is left of a lock on it: a lease not `available`, or lock
/// info in its metadata. `(names, locked)`.
async fn blobs_and_locks(c: &BlobClient) -> (Vec<String>, Vec<String>) {
    let r = c
        .request(
            Method::GET,
            None,
            &[
                ("restype", "container"),
                ("comp", "list"),
                ("include", "metadata"),
            ],
            &[],
            vec![],
        )
        .await
        .expect("list");
    assert_eq!(r.status, 200, "{r:?}");
    let xml = String::from_utf8_lossy(&r.body).into_owned();
    let field = |blob: &str, tag: &str| -> String {
        blob.split_once(&format!("<{tag}>"))
            .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
            .map(|(v, _)| v.to_string())
            .unwrap_or_default()
    };
    let (mut names, mut locked) = (Vec::new(), Vec::new());
    for blob in xml.split("<Blob>").skip(1) {
        let name = field(blob, "Name");
        let lease = field(blob, "LeaseState");
        assert!(!lease.is_empty(), "a lease state in the listing: {blob}");
        if lease != "available" || blob.to_ascii_lowercase().contains(LOCK_INFO_META) {
            locked.push(format!("{name}: lease {lease}"));
        }
        names.push(name);
    }
    (names, locked)
}

async fn tflocks(store: &tfsync::store::s3::S3Store) -> Vec<String> {
    use tfsync::store::ObjectStore;
    store
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .filter(|k| k.ends_with(".tflock"))
        .collect()
}

/// Issue 13: a state with three workspaces moves from an s3 backend
/// (SeaweedFS, `env:/W/<key>`) to an azurerm container (Azurite,
/// `<key>env:W`) and back (`--delete-source`), byte for byte, each side in
/// its own layout; after each run no lease or lock info is left on any
/// blob and no `.tflock` in any bucket. Old main refused `az://`.
#[tokio::test]
async fn migrate_three_workspaces_s3_to_azurerm_and_back() {
    use tfsync::store::{ObjectStore, PutMode};
    let (Some(s3), Some(az)) = (support::server("seaweedfs"), support::server("azurite")) else {
        return;
    };
    const KEY: &str = "net/terraform.tfstate";
    // (workspace, s3 key, azurerm blob)
    let ws = [
        (
            "default",
            "net/terraform.tfstate",
            "moved/net/terraform.tfstate",
        ),
        (
            "prod",
            "env:/prod/net/terraform.tfstate",
            "moved/net/terraform.tfstateenv:prod",
        ),
        (
            "staging",
            "env:/staging/net/terraform.tfstate",
            "moved/net/terraform.tfstateenv:staging",
        ),
    ];
    let src = s3.new_bucket("s3az").await;
    let mut states = Vec::new();
    for (i, (_, k, _)) in ws.iter().enumerate() {
        let v = support::state(&format!("s3az-{i}"), 3 + i as u64, i + 1);
        src.put(k, v.clone(), PutMode::Create).await.expect("seed");
        states.push(v);
    }
    let (container, c) = new_container(&az, "s3az").await;
    let account = &az.env["AZURE_STORAGE_ACCOUNT"];
    let to = format!("az://{account}/{container}/moved");
    let mut cmd = s3.tfsync(src.bucket(), KEY);
    cmd.env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
        .env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
        .args([
            "--output",
            "json",
            "migrate",
            "--all-workspaces",
            "--to",
            &to,
        ]);
    let r = support::run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains(&az.env["ARM_ACCESS_KEY"]), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let mapping: Vec<(String, String, String)> = v["mapping"]
        .as_array()
        .expect("mapping")
        .iter()
        .map(|m| {
            let f = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (f("workspace"), f("source_key"), f("destination_key"))
        })
        .collect();
    let want: Vec<(String, String, String)> = ws
        .iter()
        .map(|(w, s, d)| (w.to_string(), s.to_string(), d.to_string()))
        .collect();
    assert_eq!(mapping, want, "{v}");
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    for (i, (w, _, blob)) in ws.iter().enumerate() {
        let got = store.get(blob).await.expect(blob);
        assert_eq!(got.bytes, states[i], "{w}: byte for byte at {blob}");
    }
    let (names, locked) = blobs_and_locks(&c).await;
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(locked.is_empty(), "leases left: {locked:?}");
    assert!(tflocks(&src).await.is_empty(), "{:?}", tflocks(&src).await);

    // Back, from a `backend "azurerm"` block (its workspaces found by
    // azurerm's listing rule) to a new bucket in the s3 layout, the source
    // deleted in phase 2 (each blob under its lease).
    let back = s3.new_bucket("azs3").await;
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{account}\"\n    container_name       = \"{container}\"\n    key                  = \"moved/net/terraform.tfstate\"\n  }}\n}}\n"
        ),
    )
    .expect("tf");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", d.path())
        .current_dir(d.path());
    for (k, v) in &s3.env {
        cmd.env(k, v);
    }
    cmd.env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
        .env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
        .args([
            "migrate",
            "--all-workspaces",
            "--delete-source",
            "--to",
            &format!("s3://{}", back.bucket()),
            "--to-key",
            KEY,
            "--to-endpoint",
            &s3.endpoint(),
        ]);
    let r = support::run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    for (i, (w, k, _)) in ws.iter().enumerate() {
        let got = back.get(k).await.expect(k);
        assert_eq!(got.bytes, states[i], "{w}: byte for byte back at {k}");
        assert_eq!(
            got.bytes,
            src.get(k).await.expect("original").bytes,
            "{w}: the round trip is the original"
        );
    }
    let (names, locked) = blobs_and_locks(&c).await;
    assert!(locked.is_empty(), "leases left: {locked:?}");
    let states_left: Vec<&String> = {
        let mut left = Vec::new();
        for n in &names {
            if store.head(n).await.is_ok() {
                left.push(n);
            }
        }
        left
    };
    assert!(states_left.is_empty(), "sources deleted: {states_left:?}");
    assert!(
        tflocks(&back).await.is_empty(),
        "{:?}",
        tflocks(&back).await
    );
}

/// Issue 13: `tfsync -f manifest.yaml status` with an OpenMCF manifest of
/// `backend.type: azurerm` (container in `backend.bucket`, the account in
/// `AZURE_STORAGE_ACCOUNT`, the key in `ARM_ACCESS_KEY`): the state and
/// the lock at `<key>`. Old main: the manifest gave no container.
#[tokio::test]
async fn an_openmcf_manifest_of_type_azurerm_drives_status() {
    use tfsync::store::{ObjectStore, PutMode};
    let Some(az) = support::server("azurite") else {
        return;
    };
    let (container, c) = new_container(&az, "azmcf").await;
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    store
        .put(
            "mcf/terraform.tfstate",
            support::state("az-mcf", 6, 1),
            PutMode::Create,
        )
        .await
        .expect("seed");
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("manifest.yaml"),
        format!(
            "apiVersion: azure.openmcf.org/v1\nkind: AzureStorageAccount\nmetadata:\n  name: net\n  labels:\n    openmcf.org/provisioner: terraform\n    terraform.openmcf.org/backend.type: azurerm\n    terraform.openmcf.org/backend.bucket: {container}\n    terraform.openmcf.org/backend.key: mcf/terraform.tfstate\n"
        ),
    )
    .expect("manifest");
    let tfsync = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d.path())
            .env("AZURE_STORAGE_ACCOUNT", &az.env["AZURE_STORAGE_ACCOUNT"])
            .env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
            .env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
            .current_dir(d.path())
            .args(args);
        support::run(&mut cmd)
    };
    let r = tfsync(&["-f", "manifest.yaml", "--output", "json", "status"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        (
            v["state"]["serial"].as_u64(),
            v["state"]["lineage"].as_str()
        ),
        (Some(6), Some("az-mcf")),
        "{v}"
    );
    assert!(v["lock"].is_null(), "{v}");
    assert!(
        v["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("az://") && l.contains(&container)),
        "{v}"
    );
    // A lease taken through the manifest shows in its status.
    let r = tfsync(&["-f", "manifest.yaml", "lock", "--info", "mcf"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let r = tfsync(&["-f", "manifest.yaml", "--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["lock"]["ID"], id.as_str(), "{v}");
    let r = tfsync(&["-f", "manifest.yaml", "unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    let (_, locked) = blobs_and_locks(&c).await;
    assert!(locked.is_empty(), "{locked:?}");
}

/// Issue 13: `az://account/container/prefix` as a backup location, built
/// by the one store builder with the azurerm backend's credentials: a
/// backup of an s3 bucket (SeaweedFS) into an Azurite container, `backup
/// verify` of it, and `restore` of one state from the snapshot there, byte
/// for byte, its lock released. Old main refused `az://`.
#[tokio::test]
async fn backup_to_azure_and_restore_from_it() {
    use tfsync::store::{ObjectStore, PutMode};
    let (Some(s3), Some(az)) = (support::server("seaweedfs"), support::server("azurite")) else {
        return;
    };
    let src = s3.new_bucket("bkaz").await;
    let keys = ["net/terraform.tfstate", "env:/dev/net/terraform.tfstate"];
    for (i, k) in keys.iter().enumerate() {
        src.put(
            k,
            support::state(&format!("bkaz-{i}"), 2, 1),
            PutMode::Create,
        )
        .await
        .expect("seed");
    }
    let (container, c) = new_container(&az, "bkaz").await;
    let to = format!(
        "az://{}/{container}/nightly",
        az.env["AZURE_STORAGE_ACCOUNT"]
    );
    let tfsync = |key: &str, args: &[&str]| {
        let mut cmd = s3.tfsync(src.bucket(), key);
        cmd.env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
            .env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
            .args(args);
        support::run(&mut cmd)
    };
    let r = tfsync("unused", &["--output", "json", "backup", "--to", &to]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["copied"], 2, "{v}");
    let snap = v["snapshot"].as_str().expect("snapshot").to_string();
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    for (i, k) in keys.iter().enumerate() {
        let blob = format!("nightly/{snap}/{k}");
        assert_eq!(
            store.get(&blob).await.expect(&blob).bytes,
            support::state(&format!("bkaz-{i}"), 2, 1),
            "{blob}"
        );
    }
    let r = tfsync("unused", &["backup", "verify", "--from", &to]);
    assert_eq!(r.code, 0, "{r:?}");

    // The state is lost; restore it from the snapshot in Azure.
    src.delete(keys[0], None).await.expect("delete");
    let from = format!("{to}/{snap}");
    let r = tfsync(keys[0], &["restore", "--from", &from]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        src.get(keys[0]).await.expect("restored").bytes,
        support::state("bkaz-0", 2, 1)
    );
    assert!(tflocks(&src).await.is_empty(), "{:?}", tflocks(&src).await);
    let (_, locked) = blobs_and_locks(&c).await;
    assert!(locked.is_empty(), "{locked:?}");
    // Without credentials the location says what to set, and nothing else.
    let mut cmd = s3.tfsync(src.bucket(), "unused");
    cmd.env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
        .args(["backup", "--to", &to]);
    let r = support::run(&mut cmd);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("ARM_ACCESS_KEY"), "{r:?}");
}

/// A lock taken the way Terraform's azurerm backend takes it: the blob
/// created empty if missing, an infinite lease with the lock's ID, the info
/// (created at `created`) in its metadata.
async fn terraform_lock(
    c: &BlobClient,
    container: &str,
    blob: &str,
    who: &str,
    created: &str,
) -> String {
    let r = c
        .request(Method::HEAD, Some(blob), &[], &[], vec![])
        .await
        .expect("head");
    if r.status == 404 {
        let r = c
            .request(
                Method::PUT,
                Some(blob),
                &[],
                &[("x-ms-blob-type", "BlockBlob".into())],
                vec![],
            )
            .await
            .expect("put empty");
        assert_eq!(r.status, 201, "{r:?}");
    }
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
    let info = format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.11.0","Created":"{created}","Path":"{container}/{blob}"}}"#
    );
    let r = c
        .write_lock_info(blob, Some(info.as_bytes()), &id)
        .await
        .expect("metadata");
    assert_eq!(r.status, 200, "{r:?}");
    id
}

/// Issue 13: `locks` and `force-unlock --all` find an azurerm container's
/// locks, which are leases on the state blobs (not `.tflock` objects):
/// Terraform-style leases on a state and on a blob Terraform created empty
/// to lock it are listed with their holders; `force-unlock --all
/// --older-than` breaks the old ones by their IDs and leaves the young one.
/// Old main listed none.
#[tokio::test]
async fn locks_and_force_unlock_all_see_azure_leases() {
    use tfsync::store::{ObjectStore, PutMode};
    let Some(az) = support::server("azurite") else {
        return;
    };
    let (container, c) = new_container(&az, "azlocks").await;
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    store
        .put(
            "a/terraform.tfstate",
            support::state("azl", 1, 1),
            PutMode::Create,
        )
        .await
        .expect("seed");
    store
        .put(
            "c/terraform.tfstate",
            support::state("azl-c", 1, 1),
            PutMode::Create,
        )
        .await
        .expect("seed");
    let old = "2026-01-01T00:00:00.000000Z";
    let young = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let id_a = terraform_lock(&c, &container, "a/terraform.tfstate", "alice@ci", old).await;
    let id_b = terraform_lock(
        &c,
        &container,
        "b/terraform.tfstateenv:dev",
        "bob@laptop",
        old,
    )
    .await;
    let id_c = terraform_lock(&c, &container, "c/terraform.tfstate", "carol@ci", &young).await;
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{}\"\n    container_name       = \"{container}\"\n    key                  = \"a/terraform.tfstate\"\n  }}\n}}\n",
            az.env["AZURE_STORAGE_ACCOUNT"]
        ),
    )
    .expect("tf");
    let tfsync = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d.path())
            .env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
            .env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
            .current_dir(d.path())
            .args(args);
        support::run(&mut cmd)
    };
    let ids = |v: &serde_json::Value, field: &str| -> Vec<(String, String)> {
        v[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} in {v}"))
            .iter()
            .map(|l| {
                (
                    l["state_key"].as_str().unwrap_or_default().to_string(),
                    l["lock"]["id"]
                        .as_str()
                        .or_else(|| l["id"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let r = tfsync(&["--output", "json", "locks"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let pair = |k: &str, id: &str| (k.to_string(), id.to_string());
    assert_eq!(
        ids(&v, "locks"),
        [
            pair("a/terraform.tfstate", &id_a),
            pair("b/terraform.tfstateenv:dev", &id_b),
            pair("c/terraform.tfstate", &id_c),
        ],
        "{v}"
    );
    let r = tfsync(&["locks"]);
    assert!(
        r.stdout.contains("bob@laptop") && r.stdout.contains("alice@ci"),
        "{r:?}"
    );

    let r = tfsync(&[
        "--output",
        "json",
        "force-unlock",
        "--all",
        "--older-than",
        "1d",
        "--yes",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        ids(&v, "released"),
        [
            pair("a/terraform.tfstate", &id_a),
            pair("b/terraform.tfstateenv:dev", &id_b),
        ],
        "{v}"
    );
    let (_, locked) = blobs_and_locks(&c).await;
    assert_eq!(locked.len(), 1, "only the young lease is left: {locked:?}");
    assert!(locked[0].starts_with("c/terraform.tfstate"), "{locked:?}");
    // The state under the broken lease is intact.
    assert_eq!(
        store.get("a/terraform.tfstate").await.expect("a").bytes,
        support::state("azl", 1, 1)
    );
}

/// An account SAS for the blob service signed with the account key, as the
/// portal or `az storage account generate-sas` makes one (service version
/// 2021-08-06: the string to sign ends with the encryption scope).
fn account_sas(account: &str, key_b64: &str, permissions: &str) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .expect("key");
    let (sv, ss, srt, se, spr) = (
        "2021-08-06",
        "b",
        "sco",
        "2035-01-01T00:00:00Z",
        "https,http",
    );
    let to_sign = format!("{account}\n{permissions}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("hmac");
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={permissions}&se={}&spr={}&sig={}",
        enc(se),
        enc(spr),
        enc(&sig)
    )
}

/// Issue 13: a `backend "azurerm"` with a SAS token instead of the account
/// key (`ARM_SAS_TOKEN`, Terraform's variable; `?` prefix accepted): push,
/// a workspace, lock / unlock (the lease), pull, all on Azurite, which
/// checks the token's signature; a read-only token cannot push, and no
/// token is ever printed. Old main asked for an account key.
#[tokio::test]
async fn a_sas_token_drives_the_azurerm_backend() {
    let Some(az) = support::server("azurite") else {
        return;
    };
    let (container, _c) = new_container(&az, "azsas").await;
    let account = az.env["AZURE_STORAGE_ACCOUNT"].clone();
    let rw = account_sas(&account, &az.env["ARM_ACCESS_KEY"], "rwdlacup");
    let ro = account_sas(&account, &az.env["ARM_ACCESS_KEY"], "rl");
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{account}\"\n    container_name       = \"{container}\"\n    key                  = \"sas/terraform.tfstate\"\n  }}\n}}\n"
        ),
    )
    .expect("tf");
    let v1 = support::state("az-sas", 1, 1);
    std::fs::write(d.path().join("s.json"), &v1).expect("s");
    let tfsync = |sas: &str, args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d.path())
            .env("ARM_SAS_TOKEN", sas)
            .env("TFSYNC_AZURE_ENDPOINT", &az.env["AZURE_STORAGE_ENDPOINT"])
            .current_dir(d.path())
            .args(args);
        support::run(&mut cmd)
    };
    let with_q = format!("?{rw}");
    let sig = rw.split("sig=").nth(1).expect("sig").to_string();
    for (sas, args) in [
        (rw.as_str(), vec!["push", "s.json"]),
        (with_q.as_str(), vec!["-w", "dev", "push", "s.json"]),
    ] {
        let r = tfsync(sas, &args);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = tfsync(&rw, &["pull"]);
    assert_eq!((r.code, r.stdout.as_bytes()), (0, &v1[..]), "{r:?}");
    let r = tfsync(&rw, &["--output", "json", "list"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["workspaces"].as_array().map(Vec::len), Some(2), "{v}");
    let r = tfsync(&rw, &["lock", "--info", "sas"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let r = tfsync(&rw, &["--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["lock"]["ID"], id.as_str(), "{v}");
    let r = tfsync(&rw, &["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    // Read-only: reads work, a push is refused by the server.
    let r = tfsync(&ro, &["pull"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v2 = support::state("az-sas", 2, 1);
    std::fs::write(d.path().join("s2.json"), &v2).expect("s2");
    let r = tfsync(&ro, &["push", "s2.json"]);
    assert_ne!(r.code, 0, "a read-only SAS cannot write: {r:?}");
    let r2 = tfsync(&rw, &["pull"]);
    assert_eq!(r2.stdout.as_bytes(), &v1[..], "nothing written");
    let r3 = tfsync(&rw, &["config"]);
    for out in [&r, &r2, &r3] {
        assert!(
            !out.stdout.contains(&sig) && !out.stderr.contains(&sig),
            "the token is never shown: {out:?}"
        );
    }
    assert!(r3.stdout.contains("sas_token"), "{r3:?}");
    // Signed with another key: Azurite checks the signature.
    let forged = account_sas(&account, "b3RoZXIta2V5LW5vdC10aGUtYWNjb3VudHM=", "rwdlacup");
    let r = tfsync(&forged, &["pull"]);
    assert_ne!(r.code, 0, "a forged SAS is refused: {r:?}");
    // Not a token: said, without echoing it.
    let r = tfsync("not-a-token-secret", &["pull"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("ARM_SAS_TOKEN") && !r.stderr.contains("not-a-token-secret"),
        "{r:?}"
    );
}

/// Issue 13: bounded retries on transient Azure failures, through a
/// fault-injecting proxy in front of Azurite: two 503s on a read are
/// retried (the pull succeeds on the third attempt); a 503 on the lease
/// acquire is retried (acquiring with the same proposed ID again is
/// answered as the first); three 503s in a row are the end (the error
/// names the blob), and nothing was retried more than 3 times. Old main
/// sent each request once.
// The proxy runs on the test's runtime while the binary runs: more than
// one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_azure_failures_are_retried_a_bounded_number_of_times() {
    use crate::support::proxy::{Fault, Proxy, Rule};
    use tfsync::store::{ObjectStore, PutMode};
    let Some(az) = support::server("azurite") else {
        return;
    };
    let (container, c) = new_container(&az, "azretry").await;
    let blob = "retry/terraform.tfstate";
    let v1 = support::state("az-retry", 1, 1);
    tfsync::store::azure::AzureStore::new(c.clone())
        .put(blob, v1.clone(), PutMode::Create)
        .await
        .expect("seed");
    let endpoint = &az.env["AZURE_STORAGE_ENDPOINT"];
    let (hostport, path) = endpoint
        .trim_start_matches("http://")
        .split_once('/')
        .expect("path-style endpoint");
    let proxy = Proxy::start(hostport.to_string()).await;
    let via = format!("{}/{path}", proxy.endpoint());
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{}\"\n    container_name       = \"{container}\"\n    key                  = \"{blob}\"\n  }}\n}}\n",
            az.env["AZURE_STORAGE_ACCOUNT"]
        ),
    )
    .expect("tf");
    let tfsync = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d.path())
            .env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
            .env("TFSYNC_AZURE_ENDPOINT", &via)
            .current_dir(d.path())
            .args(args);
        support::run(&mut cmd)
    };
    let gets = |p: &Proxy| p.seen().iter().filter(|s| s.method == "GET").count();
    proxy.add(Rule {
        method: "GET",
        path_ends: blob.to_string(),
        times: 2,
        fault: Fault::Respond(503),
    });
    let r = tfsync(&["pull"]);
    assert_eq!((r.code, r.stdout.as_bytes()), (0, &v1[..]), "{r:?}");
    assert_eq!(gets(&proxy), 3, "two 503s, then the state");

    proxy.clear();
    proxy.add(Rule {
        method: "PUT",
        path_ends: blob.to_string(),
        times: 1,
        fault: Fault::Respond(503),
    });
    let r = tfsync(&["lock", "--info", "retry"]);
    assert_eq!(r.code, 0, "the acquire is retried: {r:?}");
    let id = r.stdout.trim().to_string();
    let r = tfsync(&["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    let (_, locked) = blobs_and_locks(&c).await;
    assert!(locked.is_empty(), "{locked:?}");

    proxy.clear();
    let before = gets(&proxy);
    proxy.add(Rule {
        method: "GET",
        path_ends: blob.to_string(),
        times: 100,
        fault: Fault::Respond(503),
    });
    let r = tfsync(&["pull"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(blob) && r.stderr.contains("503"), "{r:?}");
    assert_eq!(
        gets(&proxy) - before,
        tfsync::store::azure::ATTEMPTS as usize,
        "bounded"
    );
}

/// A TLS front for Azurite: python3's `ssl` terminating https with `cert`
/// and `key` and passing the bytes on to Azurite's port, as a load
/// balancer would (Azure itself speaks only https).
struct TlsFront {
    child: std::process::Child,
    port: u16,
}

const TLS_FRONT: &str = r#"
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
host, port = sys.argv[3].rsplit(":", 1)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def handle(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (OSError, ssl.SSLError):
        c.close()
        return
    u = socket.create_connection((host, int(port)))
    threading.Thread(target=pipe, args=(u, t), daemon=True).start()
    pipe(t, u)
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

impl TlsFront {
    fn start(cert: &std::path::Path, key: &std::path::Path, upstream: &str) -> TlsFront {
        let mut child = std::process::Command::new("python3")
            .args(["-c", TLS_FRONT])
            .arg(cert)
            .arg(key)
            .arg(upstream)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("port");
        TlsFront {
            port: line.trim().parse().expect("port number"),
            child,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 13: an https endpoint (real Azure speaks only https): Azurite
/// behind TLS with a certificate of a private CA; with that CA in
/// `TFSYNC_CA_BUNDLE` push, pull, lock and unlock (the lease) work, and an
/// `az://` backup reaches it too; without it the certificate is refused and
/// nothing is sent in clear. Old main refused every https:// endpoint.
#[tokio::test]
async fn an_https_endpoint_with_a_private_ca() {
    let Some(az) = support::server("azurite") else {
        return;
    };
    let certs = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = support::tls::private_ca(certs.path());
    let endpoint = &az.env["AZURE_STORAGE_ENDPOINT"];
    let (hostport, path) = endpoint
        .trim_start_matches("http://")
        .split_once('/')
        .expect("path-style endpoint");
    let front = TlsFront::start(&cert, &key, hostport);
    let https = format!("https://127.0.0.1:{}/{path}", front.port);
    let (container, c) = new_container(&az, "aztls").await;
    let account = az.env["AZURE_STORAGE_ACCOUNT"].clone();
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{account}\"\n    container_name       = \"{container}\"\n    key                  = \"tls/terraform.tfstate\"\n  }}\n}}\n"
        ),
    )
    .expect("tf");
    let v1 = support::state("az-tls", 1, 1);
    std::fs::write(d.path().join("s.json"), &v1).expect("s");
    let tfsync = |ca: Option<&std::path::Path>, args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d.path())
            .env("ARM_ACCESS_KEY", &az.env["ARM_ACCESS_KEY"])
            .env("TFSYNC_AZURE_ENDPOINT", &https)
            .current_dir(d.path())
            .args(args);
        if let Some(ca) = ca {
            cmd.env("TFSYNC_CA_BUNDLE", ca);
        }
        support::run(&mut cmd)
    };
    let r = tfsync(None, &["push", "s.json"]);
    assert_ne!(r.code, 0, "an unknown CA is refused: {r:?}");
    let r = tfsync(Some(&ca), &["push", "s.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = tfsync(Some(&ca), &["pull"]);
    assert_eq!((r.code, r.stdout.as_bytes()), (0, &v1[..]), "{r:?}");
    let r = tfsync(Some(&ca), &["lock", "--info", "tls"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let r = tfsync(Some(&ca), &["--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["lock"]["ID"], id.as_str(), "{v}");
    let r = tfsync(Some(&ca), &["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    // Written through TLS, there: read back over plain http from Azurite.
    let store = tfsync::store::azure::AzureStore::new(c.clone());
    use tfsync::store::ObjectStore;
    assert_eq!(
        store.get("tls/terraform.tfstate").await.expect("get").bytes,
        v1
    );
    let (_, locked) = blobs_and_locks(&c).await;
    assert!(locked.is_empty(), "{locked:?}");
    // An az:// location over the same https endpoint.
    let to = format!("az://{account}/{container}/bk");
    let r = tfsync(Some(&ca), &["--output", "json", "backup", "--to", &to]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["copied"], 1, "{v}");
}
