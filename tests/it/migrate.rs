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

/// `--to-key`: a rename on another server; workspaces under the
/// destination's workspace key prefix; the dry run shows the mapping.
async fn to_key(from: Server, to_server: Server) {
    let src = from.new_bucket("mg-key-src").await;
    seed(&src).await;
    let dst = to_server.new_bucket("mg-key-dst").await;
    let to = format!("s3://{}", dst.bucket());
    let migrate = |extra: &[&str]| {
        let mut cmd = from.tfsync(src.bucket(), KEY);
        cmd.args(["migrate", "--all-workspaces", "--to", &to]);
        cmd.args(["--to-endpoint", &to_server.endpoint()]);
        cmd.args(["--to-key", "platform/core.tfstate"]);
        run(cmd.args(extra))
    };
    let expected = [
        ("default", "net/terraform.tfstate", "platform/core.tfstate"),
        (
            "staging",
            "env:/staging/net/terraform.tfstate",
            "ws/staging/platform/core.tfstate",
        ),
        (
            "prod",
            "env:/prod/net/terraform.tfstate",
            "ws/prod/platform/core.tfstate",
        ),
    ];

    // Default prefix at the destination: env: (not the location's, none here).
    let r = migrate(&["--dry-run", "--output", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(doc["destination_key"], "platform/core.tfstate", "{doc:#}");
    assert_eq!(doc["destination_workspace_key_prefix"], "env:", "{doc:#}");
    let staging = doc["mapping"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["workspace"] == "staging"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        staging["destination_key"], "env:/staging/platform/core.tfstate",
        "{doc:#}"
    );

    // The plan with --to-workspace-key-prefix: text and JSON, nothing changed.
    let r = migrate(&["--dry-run", "--to-workspace-key-prefix", "ws"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(
            "destination key platform/core.tfstate, workspaces at ws/<W>/platform/core.tfstate"
        ),
        "{r:?}"
    );
    for (w, s, d) in expected {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(w) && l.contains(" -> "))
            .unwrap_or_else(|| panic!("{w} in the plan: {r:?}"));
        assert!(
            line.contains(&format!("/{s} -> ")) && line.contains(&format!("/{d} ")),
            "{w}: {line}"
        );
    }
    let r = migrate(&[
        "--dry-run",
        "--to-workspace-key-prefix",
        "ws",
        "--output",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let mapping: Vec<(String, String, String)> = doc["mapping"]
        .as_array()
        .expect("mapping")
        .iter()
        .map(|x| {
            let f = |n: &str| x[n].as_str().unwrap_or("").to_string();
            (f("workspace"), f("source_key"), f("destination_key"))
        })
        .collect();
    let mut want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    let mut got = mapping.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{doc:#}");
    assert!(dst.list("").await.expect("list").is_empty(), "dry run");
    assert_eq!(src.list("").await.expect("list").len(), 3, "no lock taken");

    // The move: bytes exactly, both locks released, sources kept.
    let r = migrate(&["--to-workspace-key-prefix", "ws"]);
    assert_eq!(r.code, 0, "{r:?}");
    for (i, (_, s, d)) in expected.iter().enumerate() {
        let bytes = state(&format!("lin-{i}"), 5, 2);
        assert_eq!(get(&dst, d).await, Some(bytes.clone()), "{d}");
        assert_eq!(get(&src, s).await, Some(bytes), "{s} kept");
    }
    assert_eq!(
        dst.list("").await.expect("list").len(),
        3,
        "only the states"
    );
    no_locks(&src).await;
    no_locks(&dst).await;
    // Again: unchanged.
    let r = migrate(&["--to-workspace-key-prefix", "ws", "--output", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.matches("\"unchanged\"").count() == 3, "{r:?}");

    // A prefix in --to and --to-key: which one wins would be a guess.
    let mut cmd = from.tfsync(src.bucket(), KEY);
    cmd.args(["migrate", "--to", &format!("s3://{}/x", dst.bucket())]);
    cmd.args([
        "--to-endpoint",
        &to_server.endpoint(),
        "--to-key",
        "a.tfstate",
    ]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--to-key x/a.tfstate"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn to_key_seaweedfs_to_ceph() {
    if let (Some(a), Some(b)) = (support::server("seaweedfs"), support::server("ceph")) {
        to_key(a, b).await;
    }
}

/// Requests of a migration of many workspaces (issue 12): the
/// destinations are listed once before any lock, a destination the listing
/// shows absent is not read (its write is create-only), and the read-back
/// is the write's own ETag (the MD5 the server computed of what it stored),
/// not a HEAD: per workspace 2 lock PUTs, the source GET, the state PUT and
/// 2 lock DELETEs. A second run reads each destination (they exist now)
/// and writes nothing. A destination that exists with another lineage is
/// still read under the locks and refused.
async fn requests(server: Server) {
    const N: usize = 10;
    let src = server.new_bucket("mg-req").await;
    let mut keys = vec![KEY.to_string()];
    keys.extend((1..N).map(|i| format!("env:/w{i}/{KEY}")));
    for (i, k) in keys.iter().enumerate() {
        src.put(k, state(&format!("lin-{i}"), 3, 2), PutMode::Overwrite)
            .await
            .expect("put");
    }
    let dst = server.new_bucket("mg-req-d").await;
    let to = format!("s3://{}", dst.bucket());
    let migrate = |to: &str| {
        run(server.tfsync(src.bucket(), KEY).args([
            "--verbose",
            "migrate",
            "--all-workspaces",
            "--to",
            to,
        ]))
    };
    let requests = |stderr: &str, verb: &str, bucket: &str| -> usize {
        let start = format!("tfsync: {verb} s3://{bucket}/");
        stderr.lines().filter(|l| l.starts_with(&start)).count()
    };
    let r = migrate(&to);
    assert_eq!(r.code, 0, "{r:?}");
    let d = dst.bucket();
    let counts = |r: &support::Run| {
        [
            ("LIST", requests(&r.stderr, "LIST", d)),
            ("HEAD", requests(&r.stderr, "HEAD", d)),
            ("GET", requests(&r.stderr, "GET", d)),
            ("PUT", requests(&r.stderr, "PUT", d)),
            ("DELETE", requests(&r.stderr, "DELETE", d)),
        ]
    };
    assert_eq!(
        counts(&r),
        [
            ("LIST", 1),
            ("HEAD", 0),
            // Only the default workspace, outside the listed directory.
            ("GET", 1),
            ("PUT", 2 * N),
            ("DELETE", N)
        ],
        "{}",
        r.stderr
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(get(&dst, k).await, Some(state(&format!("lin-{i}"), 3, 2)));
    }
    no_locks(&src).await;
    no_locks(&dst).await;

    // Again: every destination exists, is read and is unchanged.
    let r = migrate(&to);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("create"), "{r:?}");
    assert_eq!(
        counts(&r),
        [
            ("LIST", 1),
            ("HEAD", 0),
            ("GET", N),
            ("PUT", N),
            ("DELETE", N)
        ],
        "{}",
        r.stderr
    );

    // A destination that belongs to another state is read and refused.
    let other = server.new_bucket("mg-req-o").await;
    let theirs = state("someone-else", 9, 1);
    other
        .put(&keys[4], theirs.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    let r = migrate(&format!("s3://{}", other.bucket()));
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("lineage"), "{r:?}");
    assert_eq!(get(&other, &keys[4]).await, Some(theirs), "not overwritten");
    no_locks(&src).await;
    no_locks(&other).await;
}

on_each_server!(between_buckets);
on_each_server!(requests);
on_each_server!([seaweedfs] onto_another_workspace_is_refused);
on_each_server!([seaweedfs] lineage_refused);
on_each_server!([moto] failure_halfway);

#[tokio::test(flavor = "multi_thread")]
async fn seaweedfs_to_ceph() {
    if let (Some(a), Some(b)) = (support::server("seaweedfs"), support::server("ceph")) {
        three_workspaces(a, b).await;
    }
}
