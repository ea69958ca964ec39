//! `tfsync migrate` end to end: three workspaces between two buckets and
//! between two servers, lineage refusal, dry run, a failure halfway.

use crate::support;
use crate::support::proxy::{Fault, Proxy, Rule};
use crate::support::{Server, run, state};
use tfsync::store::s3::S3Store;
use tfsync::store::{ObjectStore, PutMode, StoreError};

const KEY: &str = "net/terraform.tfstate";
const WORKSPACES: [(&str, &str); 3] = [
    ("default", "net/terraform.tfstate"),
    ("staging", "env:/staging/net/terraform.tfstate"),
    ("prod", "env:/prod/net/terraform.tfstate"),
];

async fn seed(store: &S3Store) {
    for (i, (_, k)) in WORKSPACES.iter().enumerate() {
        store
            .put(k, state(&format!("lin-{i}"), 5, 2), PutMode::Overwrite)
            .await
            .expect("put");
    }
}

async fn get(store: &S3Store, key: &str) -> Option<Vec<u8>> {
    match store.get(key).await {
        Ok(g) => Some(g.bytes),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => panic!("get {key}: {e}"),
    }
}

async fn no_locks(store: &S3Store) {
    let locks: Vec<String> = store
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .filter(|k| k.ends_with(".tflock"))
        .collect();
    assert!(
        locks.is_empty(),
        "locks left in {}: {locks:?}",
        store.bucket()
    );
}

/// `to_server` is where the destination bucket lives (the same server or another).
async fn three_workspaces(from: Server, to_server: Server) {
    let src = from.new_bucket("mg-src").await;
    seed(&src).await;
    let dst = to_server.new_bucket("mg-dst").await;
    let to = format!("s3://{}/moved", dst.bucket());
    let migrate = |extra: &[&str]| {
        let mut cmd = from.tfsync(src.bucket(), KEY);
        cmd.args(["migrate", "--all-workspaces", "--to", &to]);
        if from.name != to_server.name {
            cmd.args(["--to-endpoint", &to_server.endpoint()]);
        }
        run(cmd.args(extra))
    };

    // Dry run: the plan, and nothing changed anywhere.
    let r = migrate(&["--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    for (w, _) in WORKSPACES {
        assert!(r.stdout.contains(w), "{w} in the plan: {r:?}");
    }
    assert!(r.stdout.contains("create"), "{r:?}");
    assert!(
        dst.list("").await.expect("list").is_empty(),
        "dry run wrote nothing"
    );
    assert_eq!(src.list("").await.expect("list").len(), 3, "no lock taken");

    let r = migrate(&["--delete-source", "--output", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(doc["workspaces"].as_array().map(Vec::len), Some(3), "{r:?}");
    for (i, (_, k)) in WORKSPACES.iter().enumerate() {
        assert_eq!(
            get(&dst, &k.replace("net/", "moved/net/")).await,
            Some(state(&format!("lin-{i}"), 5, 2)),
            "{k} at the destination, bytes exactly"
        );
        assert_eq!(get(&src, k).await, None, "{k} deleted at the source");
    }
    no_locks(&src).await;
    no_locks(&dst).await;
}

async fn between_buckets(server: Server) {
    three_workspaces(server.clone(), server).await;
}

async fn lineage_refused(server: Server) {
    let src = server.new_bucket("mg-lin").await;
    seed(&src).await;
    let dst = server.new_bucket("mg-lin-d").await;
    let theirs = state("someone-else", 1, 1);
    dst.put(
        "env:/staging/net/terraform.tfstate",
        theirs.clone(),
        PutMode::Overwrite,
    )
    .await
    .expect("put");
    let to = format!("s3://{}", dst.bucket());
    let r = run(server.tfsync(src.bucket(), KEY).args([
        "migrate",
        "--all-workspaces",
        "--dry-run",
        "--to",
        &to,
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("refused") && r.stdout.contains("lineage"),
        "{r:?}"
    );

    let r = run(server.tfsync(src.bucket(), KEY).args([
        "migrate",
        "--all-workspaces",
        "--delete-source",
        "--to",
        &to,
    ]));
    assert_eq!(r.code, 4, "lineage mismatch: {r:?}");
    assert!(
        r.stderr.contains("staging") && r.stderr.contains("lineage"),
        "{r:?}"
    );
    assert_eq!(
        get(&dst, "env:/staging/net/terraform.tfstate").await,
        Some(theirs),
        "not overwritten"
    );
    for (_, k) in WORKSPACES {
        assert!(get(&src, k).await.is_some(), "source {k} untouched");
    }
    no_locks(&src).await;
    no_locks(&dst).await;

    // --force overwrites it.
    let r = run(server.tfsync(src.bucket(), KEY).args([
        "--workspace",
        "staging",
        "migrate",
        "--force",
        "--to",
        &to,
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        get(&dst, "env:/staging/net/terraform.tfstate").await,
        Some(state("lin-1", 5, 2))
    );
}

/// The destination fails on the second workspace's write: the first is
/// reported moved, every source is untouched, no lock is left.
async fn failure_halfway(server: Server) {
    let src = server.new_bucket("mg-f").await;
    seed(&src).await;
    let dst = server.new_bucket("mg-f-d").await;
    let proxy = Proxy::start(server.endpoint().trim_start_matches("http://").to_string()).await;
    // Workspaces go in listing order: default, prod, staging.
    proxy.add(Rule {
        method: "PUT",
        path_ends: "/prod/net/terraform.tfstate".into(), // the SDK sends `env%3A`
        times: 100,
        fault: Fault::Respond(500),
    });
    let r = run(server.tfsync(src.bucket(), KEY).args([
        "--max-attempts",
        "2",
        "migrate",
        "--concurrency",
        "1",
        "--all-workspaces",
        "--delete-source",
        "--to",
        &format!("s3://{}", dst.bucket()),
        "--to-endpoint",
        &proxy.endpoint(),
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("stopped at workspace \"prod\"")
            && r.stderr.contains("Copied and verified: default")
            && r.stderr.contains("untouched"),
        "{r:?}"
    );
    for (i, (_, k)) in WORKSPACES.iter().enumerate() {
        assert_eq!(
            get(&src, k).await,
            Some(state(&format!("lin-{i}"), 5, 2)),
            "source {k} untouched"
        );
    }
    assert!(get(&dst, KEY).await.is_some(), "default was copied");
    assert!(get(&dst, "env:/prod/net/terraform.tfstate").await.is_none());
    no_locks(&src).await;
    no_locks(&dst).await;
}

/// `--to s3://<the same bucket>/env:/prod`: the destination of `default`
/// is the source of `prod` (same endpoint, bucket and key). Refused before
/// anything is locked, written or deleted (it used to overwrite prod's
/// state with default's and then delete both sources).
async fn onto_another_workspace_is_refused(server: Server) {
    let src = server.new_bucket("mg-self").await;
    let default = state("lin-same", 6, 1);
    let prod = state("lin-same", 5, 2);
    src.put(KEY, default.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    src.put(
        "env:/prod/net/terraform.tfstate",
        prod.clone(),
        PutMode::Overwrite,
    )
    .await
    .expect("put");
    let r = run(server.tfsync(src.bucket(), KEY).args([
        "migrate",
        "--all-workspaces",
        "--delete-source",
        "--concurrency",
        "1",
        "--to",
        &format!("s3://{}/env:/prod", src.bucket()),
    ]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("same object (same endpoint, bucket and key)")
            && r.stderr.contains("workspace \"prod\"")
            && r.stderr.contains("Nothing was changed"),
        "{r:?}"
    );
    assert_eq!(get(&src, KEY).await, Some(default), "default untouched");
    assert_eq!(
        get(&src, "env:/prod/net/terraform.tfstate").await,
        Some(prod),
        "prod untouched"
    );
    assert_eq!(
        src.list("").await.expect("list").len(),
        2,
        "nothing written"
    );
}

on_each_server!(between_buckets);
on_each_server!([seaweedfs] onto_another_workspace_is_refused);
on_each_server!([seaweedfs] lineage_refused);
on_each_server!([moto] failure_halfway);

#[tokio::test(flavor = "multi_thread")]
async fn seaweedfs_to_ceph() {
    if let (Some(a), Some(b)) = (support::server("seaweedfs"), support::server("ceph")) {
        three_workspaces(a, b).await;
    }
}
