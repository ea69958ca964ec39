//! Azurite helpers shared by the azurerm tests.

use super::{Server, unique_name};
use hyper::Method;
use tfsync::store::azure::BlobClient;

/// A client of `container` on Azurite, with the emulator's account key.
pub fn client(server: &Server, container: &str) -> BlobClient {
    BlobClient::new(
        &server.env["AZURE_STORAGE_ENDPOINT"],
        &server.env["AZURE_STORAGE_ACCOUNT"],
        &server.env["ARM_ACCESS_KEY"],
        container,
    )
    .expect("client")
}

/// A container name for `tag` no other test uses (Azure's rules: lower
/// case, digits and `-`).
pub fn container_name(tag: &str) -> String {
    unique_name(tag).to_lowercase().replace('_', "-")
}

/// Create `container` on Azurite; its client.
pub async fn create_container(server: &Server, container: &str) -> BlobClient {
    let c = client(server, container);
    let r = c
        .request(Method::PUT, None, &[("restype", "container")], &[], vec![])
        .await
        .expect("create container");
    assert_eq!(r.status, 201, "{r:?}");
    c
}

/// A new container on Azurite (named after `tag`) and its client.
pub async fn new_container(server: &Server, tag: &str) -> (String, BlobClient) {
    let container = container_name(tag);
    let c = create_container(server, &container).await;
    (container, c)
}
