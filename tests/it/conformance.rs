//! The store contract, written once as one `pub async fn` per rule and run
//! on every store: the directory store (fsync per write and batched) and each
//! real S3-compatible server. Each rule gets a fresh, empty store.
//!
//! Tests are named `conformance::<store>::<rule>`: `cargo test --test it
//! conformance::moto` runs moto's contract, `conformance::dir` the directory
//! store's, `-- ::create_only` one rule everywhere. A new store is one line in
//! [`conformance!`]'s `stores`, a new rule one function and one word in `rules`.

use crate::support::{self, Server};
use futures_util::future::join_all;
use std::path::PathBuf;
use std::sync::Arc;
use tfsync::store::fs::FsStore;
use tfsync::store::{ObjectStore, PutMode, StoreError, md5_hex};

/// The key prefix every rule writes under.
const P: &str = "conformance";

fn fail<T: std::fmt::Debug>(what: &str, got: T) -> ! {
    panic!("{what}: got {got:?}")
}

// ---------------------------------------------------------------- the rules

/// Missing keys: get and head say not found; deleting one succeeds.
pub async fn missing_keys(s: &dyn ObjectStore) {
    assert!(
        matches!(
            s.get(&format!("{P}/missing")).await,
            Err(StoreError::NotFound { .. })
        ),
        "get missing"
    );
    assert!(
        matches!(
            s.head(&format!("{P}/missing")).await,
            Err(StoreError::NotFound { .. })
        ),
        "head missing"
    );
    s.delete(&format!("{P}/missing"), None)
        .await
        .expect("deleting a missing key succeeds");
}

/// Overwrite, get, head: bytes exact, ETag = MD5 of a single-part body,
/// size and last-modified reported; an empty body too.
pub async fn put_get_head(s: &dyn ObjectStore) {
    let k = format!("{P}/plain");
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
}

/// Create-only: once, then refused (naming the key), content untouched;
/// again after a delete, and refused again after that re-create.
pub async fn create_only(s: &dyn ObjectStore) {
    let k = format!("{P}/lock.tflock");
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
}

/// Create `key` with `v1`, update it with `v2` under the ETag of `v1`; both
/// ETags (the update's is the MD5 when the store does not return one).
async fn create_then_update(s: &dyn ObjectStore, key: &str) -> (String, String) {
    let e1 = s
        .put(key, b"v1".to_vec(), PutMode::Create)
        .await
        .expect("create")
        .expect("etag");
    let e2 = s
        .put(key, b"v2".to_vec(), PutMode::Update(e1.clone()))
        .await
        .expect("update with current etag");
    (e1, e2.unwrap_or_else(|| md5_hex(b"v2")))
}

/// Compare-and-swap: an update under the current ETag succeeds, under a stale
/// one fails and leaves the content; an update of a missing key is a
/// precondition failure and creates nothing.
pub async fn compare_and_swap(s: &dyn ObjectStore) {
    let k = format!("{P}/state");
    let (e1, e2) = create_then_update(s, &k).await;
    assert_ne!(e1, e2);
    match s.put(&k, b"v3".to_vec(), PutMode::Update(e1.clone())).await {
        Err(StoreError::Precondition { .. }) => {}
        other => fail("update with a stale etag must fail", other),
    }
    assert_eq!(s.get(&k).await.expect("get").bytes, b"v2");
    match s
        .put(
            &format!("{P}/nothing-here"),
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
        s.head(&format!("{P}/nothing-here")).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A delete conditional on the current ETag (of an updated object) deletes.
pub async fn conditional_delete(s: &dyn ObjectStore) {
    let k = format!("{P}/state");
    let (_, e2) = create_then_update(s, &k).await;
    s.delete(&k, Some(&e2))
        .await
        .expect("conditional delete with current etag");
    assert!(matches!(s.get(&k).await, Err(StoreError::NotFound { .. })));
}

/// Keys as Terraform writes them: workspaces, spaces, unicode, `+=&`.
pub async fn odd_keys(s: &dyn ObjectStore) {
    for key in [
        format!("env:/dev/{P}/a.tfstate"),
        format!("{P}/with space/é ü 雪.tfstate"),
        format!("{P}/a+b=c&d.tfstate"),
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
}

/// List by prefix: only that prefix (sub-"directories" included), sorted,
/// sizes right; an unused prefix lists nothing.
pub async fn list_by_prefix(s: &dyn ObjectStore) {
    for k in ["b/2", "b/1", "b/sub/3", "c/1"] {
        s.put(
            &format!("{P}/list/{k}"),
            k.as_bytes().to_vec(),
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    }
    let listed = s.list(&format!("{P}/list/b/")).await.expect("list");
    let keys: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("{P}/list/b/1"),
            format!("{P}/list/b/2"),
            format!("{P}/list/b/sub/3")
        ]
    );
    assert!(
        listed.iter().all(|m| m.size == 3 || m.size == 7),
        "{listed:?}"
    );
    assert!(
        s.list(&format!("{P}/list/none/"))
            .await
            .expect("empty list")
            .is_empty()
    );
}

/// Racing create-only writers: of 8 concurrent creates exactly one wins, the
/// others are refused, and the object holds the winner's body (3 rounds).
pub async fn racing_creators(s: &dyn ObjectStore) {
    for round in 0..3 {
        let key = format!("{P}/race-{round}.tflock");
        // All 8 requests are in flight together (HTTP requests of one task;
        // the directory store runs each on the blocking pool).
        let results = join_all((0..8).map(|i| {
            let key = key.clone();
            async move {
                s.put(&key, format!("writer {i}").into_bytes(), PutMode::Create)
                    .await
            }
        }))
        .await;
        let mut winners = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
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

/// Server-side copy from `source` (another bucket of the same server) into
/// `s`: exact bytes, keys that need URL-encoding, the ETag of the copy, a
/// missing source. A store without a `source` (the directory store) must say
/// it cannot copy and refuse to.
pub async fn server_side_copy(s: &dyn ObjectStore, source: Option<&dyn ObjectStore>) {
    let Some(a) = source else {
        assert!(!s.can_copy(), "{} claims server-side copy", s.describe());
        assert!(s.copy_from(s.bucket(), "a", "b").await.is_err());
        return;
    };
    assert!(s.can_copy());
    let body = support::state("L", 1, 3);
    for key in ["env:/dev/x y+z.tfstate", "plain/terraform.tfstate"] {
        a.put(key, body.clone(), PutMode::Overwrite)
            .await
            .expect("put");
        let etag = s
            .copy_from(a.bucket(), key, &format!("copy/{key}"))
            .await
            .expect("copy");
        assert_eq!(etag.as_deref(), Some(md5_hex(&body).as_str()), "{key}");
        assert_eq!(
            s.get(&format!("copy/{key}")).await.expect("get").bytes,
            body
        );
    }
    assert!(matches!(
        s.copy_from(a.bucket(), "missing", "x").await,
        Err(StoreError::NotFound { .. })
    ));
}

// ------------------------------------------------------------- the stores

/// One store under test, fresh and empty, and what it must still show after
/// each rule.
pub struct Subject {
    pub store: Arc<dyn ObjectStore>,
    kind: Kind,
}

enum Kind {
    Dir {
        tmp: tempfile::TempDir,
        root: PathBuf,
        batched: Option<FsStore>,
    },
    Server(Server),
    /// A store that is neither (Azurite's container): nothing to check after.
    Other,
}

impl Subject {
    /// A directory store in a new temporary directory; `batched`: writes are
    /// not synced one by one ([`FsStore::new_batched`]).
    pub async fn dir(batched: bool) -> Option<Subject> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("bucket");
        let (store, batched): (Arc<dyn ObjectStore>, _) = if batched {
            let b = FsStore::create(&root).expect("fs store").batched();
            (Arc::new(b.clone()), Some(b))
        } else {
            (Arc::new(FsStore::create(&root).expect("fs store")), None)
        };
        Some(Subject {
            store,
            kind: Kind::Dir { tmp, root, batched },
        })
    }

    /// Terraform's local backend on a new temporary directory.
    pub async fn local() -> Option<Subject> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("work");
        let fs = FsStore::create(&root).expect("fs store");
        let layout = tfsync::store::local::LocalLayout {
            path: "terraform.tfstate".into(),
            workspace_dir: "terraform.tfstate.d".into(),
        };
        Some(Subject {
            store: Arc::new(tfsync::store::local::LocalStore::new(fs, layout)),
            kind: Kind::Dir {
                tmp,
                root,
                batched: None,
            },
        })
    }

    /// A new container on Azurite (`None`: not running).
    pub async fn azurite() -> Option<Subject> {
        let server = support::server("azurite")?;
        let (_, client) = support::azure::new_container(&server, "conf").await;
        Some(Subject {
            store: Arc::new(tfsync::store::azure::AzureStore::new(client)),
            kind: Kind::Other,
        })
    }

    /// A new bucket on gcp-storage-emulator (`None`: not running).
    pub async fn gcs() -> Option<Subject> {
        let server = crate::gcs::server()?;
        Some(Subject {
            store: Arc::new(crate::gcs::new_bucket(&server, "conf").await),
            kind: Kind::Other,
        })
    }

    /// A new bucket on the running server `name` (`None`: not running).
    pub async fn server(name: &str) -> Option<Subject> {
        let server = support::server(name)?;
        let store = server.new_bucket("conf").await;
        Some(Subject {
            store: Arc::new(store),
            kind: Kind::Server(server),
        })
    }

    /// For [`server_side_copy`]: another, empty bucket on the same server;
    /// `None` for a store that has no server-side copy.
    pub async fn copy_source(&self) -> Option<Arc<dyn ObjectStore>> {
        match &self.kind {
            Kind::Dir { .. } => None,
            Kind::Server(server) => Some(Arc::new(server.new_bucket("cpa").await)),
            Kind::Other => None,
        }
    }

    /// After a rule: a directory store never shows its temporary or lock
    /// files (listed by a new store on the same directory), and a batched one
    /// flushes.
    pub async fn finish(self) {
        if let Kind::Dir { tmp, root, batched } = self.kind {
            if let Some(b) = batched {
                b.flush().await.expect("flush");
            }
            let all = FsStore::new(&root)
                .expect("fs")
                .list("")
                .await
                .expect("list");
            assert!(all.iter().all(|m| !m.key.contains(".tfsync")), "{all:?}");
            drop(tmp);
        }
    }
}

/// `conformance!{ stores: { name => opener, ... }, rules: [...], pair_rules: [...] }`
/// makes `mod <store> { #[tokio::test] async fn <rule>() }` for every store
/// and rule. A rule is called with the store; a pair rule also with
/// [`Subject::copy_source`]. An opener returning `None` (server not running)
/// skips, or fails with `TFSYNC_REQUIRE_SERVERS=1` (see `support::server`).
macro_rules! conformance {
    (
        stores: { $($store:ident => $open:expr),+ $(,)? },
        rules: $rules:tt,
        pair_rules: $pairs:tt $(,)?
    ) => {
        $( conformance!(@store $store ($open) $rules $pairs); )+
    };
    (@store $store:ident ($open:expr) [$($rule:ident),+ $(,)?] [$($pair:ident),* $(,)?]) => {
        mod $store {
            use super::Subject;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $rule() {
                    let Some(subject): Option<Subject> = $open.await else { return };
                    eprintln!("conformance on {} ({})", stringify!($store), subject.store.describe());
                    super::$rule(subject.store.as_ref()).await;
                    subject.finish().await;
                }
            )+
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $pair() {
                    let Some(subject): Option<Subject> = $open.await else { return };
                    eprintln!("conformance on {} ({})", stringify!($store), subject.store.describe());
                    let source = subject.copy_source().await;
                    super::$pair(subject.store.as_ref(), source.as_deref()).await;
                    subject.finish().await;
                }
            )*
        }
    };
}

conformance! {
    stores: {
        dir => Subject::dir(false),
        dir_batched => Subject::dir(true),
        ceph => Subject::server("ceph"),
        seaweedfs => Subject::server("seaweedfs"),
        moto => Subject::server("moto"),
    },
    rules: [
        missing_keys,
        put_get_head,
        create_only,
        compare_and_swap,
        conditional_delete,
        odd_keys,
        list_by_prefix,
        racing_creators,
    ],
    pair_rules: [server_side_copy],
}

// Terraform's local backend: an empty file is no state (so an empty body
// reads as missing) and it lists only the states of its layout, so the
// rules with an empty object and the free-form listing do not apply
// (`local_backend::listing_sees_the_layout_only` covers its listing).
conformance! {
    stores: {
        local => Subject::local(),
    },
    rules: [
        missing_keys,
        create_only,
        compare_and_swap,
        conditional_delete,
        odd_keys,
        racing_creators,
    ],
    pair_rules: [],
}

// Azure Blob Storage on Azurite (`store::azure`): an empty blob is no state
// there too (Terraform's azurerm Lock creates the blob empty).
conformance! {
    stores: {
        azurite => Subject::azurite(),
    },
    rules: [
        missing_keys,
        create_only,
        compare_and_swap,
        conditional_delete,
        odd_keys,
        list_by_prefix,
        racing_creators,
    ],
    pair_rules: [server_side_copy],
}

/// The gcs store's ETag is the object's generation: a number, new on every
/// write, the same from get, head and list.
pub async fn generation_as_etag(s: &dyn ObjectStore) {
    let k = format!("{P}/gen.tfstate");
    let g1 = s
        .put(&k, b"one".to_vec(), PutMode::Overwrite)
        .await
        .expect("put")
        .expect("generation");
    let g2 = s
        .put(&k, b"two".to_vec(), PutMode::Overwrite)
        .await
        .expect("put")
        .expect("generation");
    assert!(
        g1.parse::<u64>().is_ok() && g2.parse::<u64>().is_ok(),
        "{g1} {g2}"
    );
    assert_ne!(g1, g2, "a new generation per write");
    let got = s.get(&k).await.expect("get");
    assert_eq!(got.bytes, b"two");
    assert_eq!(got.meta.etag.as_deref(), Some(g2.as_str()));
    assert_eq!(got.meta.size, 3);
    assert!(got.meta.last_modified.is_some());
    assert_eq!(
        s.head(&k).await.expect("head").etag.as_deref(),
        Some(g2.as_str())
    );
    let listed = s.list(&format!("{P}/")).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].etag.as_deref(), Some(g2.as_str()));
}

// Google Cloud Storage's JSON API on gcp-storage-emulator (`store::gcs`):
// every rule that needs no generation precondition. The emulator ignores
// them (README, The gcs backend), so the precondition rules are run below
// as probes that the server still ignores them, and skipped with the
// reason printed: the day the emulator honours them, those tests fail and
// the rules move up here. The preconditions themselves are proven on the
// wire (`gcs::the_preconditions_are_on_the_wire`). No empty objects: the
// emulator cannot store one (its upload handler reads no body as None).
conformance! {
    stores: {
        gcs => Subject::gcs(),
    },
    rules: [
        missing_keys,
        generation_as_etag,
        conditional_delete,
        odd_keys,
        list_by_prefix,
    ],
    pair_rules: [],
}

mod gcs_preconditions {
    use super::{P, Subject};
    use tfsync::store::{ObjectStore, PutMode};

    /// Skip `rule` with its reason, after checking that the emulator still
    /// accepts what the rule would refuse.
    async fn expected_unsafe(rule: &str, probe: impl AsyncFnOnce(&dyn ObjectStore) -> bool) {
        let Some(subject) = Subject::gcs().await else {
            return;
        };
        let ignored = probe(subject.store.as_ref()).await;
        assert!(
            ignored,
            "gcp-storage-emulator now honours generation preconditions: move conformance rule {rule} into conformance::gcs"
        );
        eprintln!(
            "SKIP conformance::gcs::{rule}: gcp-storage-emulator ignores ifGenerationMatch (probed just now: a write that must be refused was accepted); expected unsafe on this server, the precondition is checked on the wire by gcs::the_preconditions_are_on_the_wire"
        );
    }

    #[tokio::test]
    async fn create_only() {
        expected_unsafe("create_only", async |s| {
            let k = format!("{P}/lock.tflock");
            s.put(&k, b"one".to_vec(), PutMode::Create)
                .await
                .expect("create");
            s.put(&k, b"two".to_vec(), PutMode::Create).await.is_ok()
        })
        .await;
    }

    #[tokio::test]
    async fn racing_creators() {
        expected_unsafe("racing_creators", async |s| {
            let k = format!("{P}/race.tflock");
            let a = s.put(&k, b"a".to_vec(), PutMode::Create).await;
            let b = s.put(&k, b"b".to_vec(), PutMode::Create).await;
            a.is_ok() && b.is_ok()
        })
        .await;
    }

    #[tokio::test]
    async fn compare_and_swap() {
        expected_unsafe("compare_and_swap", async |s| {
            let k = format!("{P}/state");
            let g1 = s
                .put(&k, b"v1".to_vec(), PutMode::Overwrite)
                .await
                .expect("put")
                .expect("generation");
            s.put(&k, b"v2".to_vec(), PutMode::Overwrite)
                .await
                .expect("put");
            s.put(&k, b"v3".to_vec(), PutMode::Update(g1)).await.is_ok()
        })
        .await;
    }
}
