//! `tfsync history`, `pull --version-id`, `restore --version-id` and
//! `prune-locks --versions` on versioned buckets (moto and SeaweedFS: Ceph
//! RGW ignores If-None-Match on versioned buckets, so locks cannot work
//! there), and the plain answer on an unversioned bucket.

use crate::support::{Server, run, state};
use tfsync::store::ObjectStore;
use tfsync::store::s3::S3Store;
use tfsync::tfstate::state::{StateInfo, parse};

const KEY: &str = "net/terraform.tfstate";

fn serial_of(bytes: &[u8]) -> (u64, String) {
    match parse(bytes).expect("state") {
        StateInfo::Plain(s) => (s.serial, s.lineage),
        other => panic!("{other:?}"),
    }
}

async fn history(server: Server) {
    let store = server.new_versioned_bucket("hist").await;
    let dir = tempfile::tempdir().expect("tmp");
    let tfsync = |args: &[&str]| run(server.tfsync(store.bucket(), KEY).args(args));
    // Three pushes through tfsync: serials 1, 2, 3 (each takes and releases a lock).
    for serial in 1..=3 {
        let f = dir.path().join(format!("s{serial}.tfstate"));
        std::fs::write(&f, state("lin-h", serial, 2)).expect("write");
        let r = tfsync(&["push", f.to_str().expect("path")]);
        assert_eq!(r.code, 0, "{r:?}");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // distinct times
    }

    let r = tfsync(&["history", "--output", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(doc["versioning"], "enabled");
    let versions = doc["versions"].as_array().expect("versions").clone();
    let serials: Vec<_> = versions.iter().map(|v| v["serial"].clone()).collect();
    assert_eq!(serials, [3, 2, 1].map(serde_json::Value::from), "{r:?}");
    assert_eq!(versions[0]["is_latest"], true);
    assert_eq!(versions[2]["lineage"], "lin-h");
    let oldest = versions[2]["version_id"].as_str().expect("id").to_string();

    let r = tfsync(&["history"]);
    assert!(
        r.stdout.contains("VERSION ID") && r.stdout.contains(&oldest),
        "{r:?}"
    );

    // pull --version-id: exactly the old bytes.
    let r = tfsync(&["pull", "--version-id", &oldest]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.as_bytes(), state("lin-h", 1, 2));

    // restore --version-id: the old content, same lineage, serial 3 + 1.
    let r = tfsync(&["restore", "--version-id", &oldest]);
    assert_eq!(r.code, 0, "{r:?}");
    let now = store.get(KEY).await.expect("get").bytes;
    assert_eq!(serial_of(&now), (4, "lin-h".into()));
    assert_eq!(
        now,
        String::from_utf8(state("lin-h", 1, 2))
            .expect("utf8")
            .replace("\"serial\": 1,", "\"serial\": 4,")
            .into_bytes(),
        "only the serial changed, byte for byte"
    );
    assert!(
        store.head(&format!("{KEY}.tflock")).await.is_err(),
        "lock released"
    );

    // Another lineage is refused.
    let f = dir.path().join("other.tfstate");
    std::fs::write(&f, state("other", 9, 1)).expect("write");
    assert_eq!(tfsync(&["push", "--force", f.to_str().expect("p")]).code, 0);
    let r = tfsync(&["restore", "--version-id", &oldest]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("lineage"), "{r:?}");

    // A deleted state shows its delete marker.
    store.delete(KEY, None).await.expect("delete");
    let r = tfsync(&["history"]);
    assert!(r.stdout.contains("(delete marker)"), "{r:?}");

    // Every push left lock versions behind; prune them.
    let lock_versions = |s: &S3Store| {
        let s = s.clone();
        async move {
            s.list_versions(&format!("{KEY}.tflock"))
                .await
                .expect("versions")
                .len()
        }
    };
    assert!(
        lock_versions(&store).await >= 5,
        "versions of the lock pile up"
    );
    let r = tfsync(&["prune-locks", "--versions", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("would delete"), "{r:?}");
    assert!(lock_versions(&store).await >= 5, "dry run deletes nothing");
    let r = tfsync(&["prune-locks", "--versions"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lock_versions(&store).await, 0, "{r:?}");
    // The state's own versions are untouched.
    assert!(store.list_versions(KEY).await.expect("v").len() >= 6);

    // A held lock (current version) survives pruning.
    let r = tfsync(&["lock"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let r = tfsync(&["prune-locks", "--versions"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        store.head(&format!("{KEY}.tflock")).await.is_ok(),
        "held lock kept"
    );
    assert_eq!(tfsync(&["unlock", &id]).code, 0);
}

async fn unversioned(server: Server) {
    let store = server.new_bucket("nohist").await;
    let tfsync = |args: &[&str]| run(server.tfsync(store.bucket(), KEY).args(args));
    let r = tfsync(&["history"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("has no versioning"), "{r:?}");
    let r = tfsync(&["pull", "--version-id", "abc"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("has no versioning"), "{r:?}");
    let r = tfsync(&["prune-locks", "--versions"]);
    assert!(r.stderr.contains("has no versioning"), "{r:?}");
}

on_each_server!([moto, seaweedfs] history);
on_each_server!([moto, ceph] unversioned);
