//! The store contract, written once and run against every implementation:
//! the directory store and each real S3-compatible server.

mod support;

use std::sync::Arc;
use tfsync::store::fs::FsStore;
use tfsync::store::{ObjectStore, PutMode, StoreError, md5_hex};

fn fail<T: std::fmt::Debug>(what: &str, got: T) -> ! {
    panic!("{what}: got {got:?}")
}

/// Every rule a store must follow. `p` is a fresh key prefix.
async fn suite(store: Arc<dyn ObjectStore>, name: &str) {
    let s = store.as_ref();
    let p = "conformance";
    eprintln!("conformance on {name} ({})", s.describe());

    // Missing keys.
    assert!(
        matches!(
            s.get(&format!("{p}/missing")).await,
            Err(StoreError::NotFound { .. })
        ),
        "get missing"
    );
    assert!(
        matches!(
            s.head(&format!("{p}/missing")).await,
            Err(StoreError::NotFound { .. })
        ),
        "head missing"
    );
    s.delete(&format!("{p}/missing"), None)
        .await
        .expect("deleting a missing key succeeds");

    // Overwrite, get, head: bytes exact, ETag = MD5 of a single-part body.
    let k = format!("{p}/plain");
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let etag = s
        .put(&k, body.clone(), PutMode::Overwrite)
        .await
        .expect("put")
        .expect("etag");
    assert_eq!(etag, md5_hex(&body), "ETag of a single-part put is its MD5");
    let got = s.get(&k).await.expect("get");
    assert!(got.bytes == body, "bytes round-trip");
    assert_eq!(got.meta.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(got.meta.size, body.len() as u64);
    assert!(got.meta.last_modified.is_some(), "last modified reported");
    let head = s.head(&k).await.expect("head");
    assert_eq!(
        (head.size, head.etag.as_deref()),
        (body.len() as u64, Some(etag.as_str()))
    );
    s.put(&k, Vec::new(), PutMode::Overwrite)
        .await
        .expect("empty body");
    assert!(s.get(&k).await.expect("get empty").bytes.is_empty());

    // Create-only: once, then refused, content untouched; again after delete.
    let k = format!("{p}/lock.tflock");
    s.put(&k, b"one".to_vec(), PutMode::Create)
        .await
        .expect("first create");
    match s.put(&k, b"two".to_vec(), PutMode::Create).await {
        Err(StoreError::AlreadyExists { location }) => assert!(location.contains(&k), "{location}"),
        other => fail("second create must be refused", other),
    }
    assert_eq!(s.get(&k).await.expect("get").bytes, b"one");
    s.delete(&k, None).await.expect("delete");
    s.put(&k, b"three".to_vec(), PutMode::Create)
        .await
        .expect("create after delete");
    // The fourth create catches servers that honour the condition only until
    // the first delete (Ceph RGW on versioned buckets).
    match s.put(&k, b"four".to_vec(), PutMode::Create).await {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => fail("create after re-create must be refused", other),
    }
    assert_eq!(s.get(&k).await.expect("get").bytes, b"three");

    // Compare-and-swap.
    let k = format!("{p}/state");
    let e1 = s
        .put(&k, b"v1".to_vec(), PutMode::Create)
        .await
        .expect("create")
        .expect("etag");
    let e2 = s
        .put(&k, b"v2".to_vec(), PutMode::Update(e1.clone()))
        .await
        .expect("update with current etag");
    let e2 = e2.unwrap_or_else(|| md5_hex(b"v2"));
    assert_ne!(e1, e2);
    match s.put(&k, b"v3".to_vec(), PutMode::Update(e1.clone())).await {
        Err(StoreError::Precondition { .. }) => {}
        other => fail("update with a stale etag must fail", other),
    }
    assert_eq!(s.get(&k).await.expect("get").bytes, b"v2");
    match s
        .put(
            &format!("{p}/nothing-here"),
            b"x".to_vec(),
            PutMode::Update(e1.clone()),
        )
        .await
    {
        Err(StoreError::Precondition { .. }) => {}
        other => fail(
            "update of a missing key must be a precondition failure",
            other,
        ),
    }
    assert!(matches!(
        s.head(&format!("{p}/nothing-here")).await,
        Err(StoreError::NotFound { .. })
    ));

    // Conditional delete with the current ETag deletes; unconditional too.
    s.delete(&k, Some(&e2))
        .await
        .expect("conditional delete with current etag");
    assert!(matches!(s.get(&k).await, Err(StoreError::NotFound { .. })));

    // Keys as Terraform writes them: workspaces, spaces, unicode.
    for key in [
        format!("env:/dev/{p}/a.tfstate"),
        format!("{p}/with space/é ü 雪.tfstate"),
        format!("{p}/a+b=c&d.tfstate"),
    ] {
        s.put(&key, key.as_bytes().to_vec(), PutMode::Create)
            .await
            .expect("odd key put");
        assert_eq!(
            s.get(&key).await.expect("odd key get").bytes,
            key.as_bytes(),
            "{key}"
        );
    }

    // List by prefix: only that prefix, sorted, sizes right.
    for k in ["b/2", "b/1", "b/sub/3", "c/1"] {
        s.put(
            &format!("{p}/list/{k}"),
            k.as_bytes().to_vec(),
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    }
    let listed = s.list(&format!("{p}/list/b/")).await.expect("list");
    let keys: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("{p}/list/b/1"),
            format!("{p}/list/b/2"),
            format!("{p}/list/b/sub/3")
        ]
    );
    assert!(
        listed.iter().all(|m| m.size == 3 || m.size == 7),
        "{listed:?}"
    );
    assert!(
        s.list(&format!("{p}/list/none/"))
            .await
            .expect("empty list")
            .is_empty()
    );

    // Racing create-only writers: exactly one wins.
    for round in 0..3 {
        let key = format!("{p}/race-{round}.tflock");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .put(&key, format!("writer {i}").into_bytes(), PutMode::Create)
                    .await
            }));
        }
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.expect("task") {
                Ok(_) => winners.push(i),
                Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => panic!("racing create: unexpected {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(
            s.get(&key).await.expect("get").bytes,
            format!("writer {}", winners[0]).into_bytes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsStore::create(dir.path().join("bucket")).expect("fs store");
    suite(Arc::new(store), "directory").await;
    // The directory store never shows its temporary or lock files.
    let all = FsStore::new(dir.path().join("bucket"))
        .expect("fs")
        .list("")
        .await
        .expect("list");
    assert!(all.iter().all(|m| !m.key.contains(".tfsync")), "{all:?}");
    // Batched writes (no fsync each): the same contract, and flush works.
    let batched = FsStore::create(dir.path().join("batched"))
        .expect("fs")
        .batched();
    suite(Arc::new(batched.clone()), "directory (batched)").await;
    batched.flush().await.expect("flush");
    // Without server-side copy, copy_from refuses.
    let fs = FsStore::new(dir.path().join("bucket")).expect("fs");
    assert!(!fs.can_copy());
    assert!(fs.copy_from("bucket", "a", "b").await.is_err());
}

/// Server-side copy between two buckets of one server: exact bytes, keys
/// that need URL-encoding, ETag of the copy, a missing source.
async fn copy_suite(server: &support::Server) {
    let a = server.new_bucket("cpa").await;
    let b = server.new_bucket("cpb").await;
    assert!(b.can_copy());
    let body = support::state("L", 1, 3);
    for key in ["env:/dev/x y+z.tfstate", "plain/terraform.tfstate"] {
        a.put(key, body.clone(), PutMode::Overwrite)
            .await
            .expect("put");
        let etag = b
            .copy_from(a.bucket(), key, &format!("copy/{key}"))
            .await
            .expect("copy");
        assert_eq!(etag.as_deref(), Some(md5_hex(&body).as_str()), "{key}");
        assert_eq!(
            b.get(&format!("copy/{key}")).await.expect("get").bytes,
            body
        );
    }
    assert!(matches!(
        b.copy_from(a.bucket(), "missing", "x").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn conformance(server: support::Server) {
    let store = server.new_bucket("conf").await;
    suite(Arc::new(store), &server.name).await;
    copy_suite(&server).await;
}

on_each_server!(worker_threads = 4; conformance);
