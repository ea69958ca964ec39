//! Bucket versioning helpers of the S3 store, on every real server.

use crate::support;
use crate::support::Server;
use tfsync::store::s3::Versioning;
use tfsync::store::{ObjectStore, PutMode};

async fn versions(server: Server) {
    let store = server.new_bucket("ver").await;
    assert_eq!(
        store.versioning().await.expect("versioning"),
        Versioning::Off
    );
    support::enable_versioning(&store).await;
    assert_eq!(
        store.versioning().await.expect("versioning"),
        Versioning::Enabled
    );

    store
        .put("s/k", b"one".to_vec(), PutMode::Overwrite)
        .await
        .expect("put");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // distinct timestamps
    store
        .put("s/k", b"two".to_vec(), PutMode::Overwrite)
        .await
        .expect("put");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    store.delete("s/k", None).await.expect("delete");
    let vs = store.list_versions("s/").await.expect("list versions");
    assert_eq!(vs.len(), 3, "{vs:#?}");
    assert!(
        vs[0].delete_marker && vs[0].is_latest,
        "newest first: {vs:#?}"
    );
    let oldest = &vs[2];
    assert!(!oldest.delete_marker);
    let got = store
        .get_version("s/k", &oldest.version_id)
        .await
        .expect("get version");
    assert_eq!(got.bytes, b"one");
    for v in &vs {
        store
            .delete_version(&v.key, &v.version_id)
            .await
            .expect("delete version");
    }
    assert!(store.list_versions("s/").await.expect("list").is_empty());
}

on_each_server!(versions);
