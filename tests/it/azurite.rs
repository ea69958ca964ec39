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
