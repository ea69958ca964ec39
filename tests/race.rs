//! The race test: N processes, each doing M cycles of
//! lock (with wait) -> pull -> serial + 1 -> push under that lock -> unlock,
//! on one state. Every increment must survive (final serial exactly N*M) and
//! no two holders may overlap.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;
use support::{Server, run, state};
use tfsync::store::{ObjectStore, PutMode};

const KEY: &str = "race/terraform.tfstate";

fn counts() -> (usize, usize) {
    let get = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (get("TFSYNC_RACE_PROCS", 16), get("TFSYNC_RACE_CYCLES", 10))
}

async fn race(server: Server) {
    let (procs, cycles) = counts();
    let store = server.new_bucket("race").await;
    let bucket = store.bucket().to_string();
    store
        .put(KEY, state("race-lineage", 0, 1), PutMode::Create)
        .await
        .expect("seed state");
    let dir = tempfile::tempdir().expect("tempdir");
    let holds: Arc<Mutex<Vec<(Instant, Instant, usize)>>> = Arc::default();
    let started = Instant::now();

    let mut workers = Vec::new();
    for w in 0..procs {
        let (server, bucket, holds) = (server.clone(), bucket.clone(), holds.clone());
        let file = dir.path().join(format!("w{w}.tfstate"));
        workers.push(std::thread::spawn(move || {
            let tfsync = |args: &[&str]| run(server.tfsync(&bucket, KEY).args(args));
            for c in 0..cycles {
                let r = tfsync(&[
                    "--quiet",
                    "lock",
                    "--operation",
                    "race",
                    "--info",
                    &format!("w{w} c{c}"),
                    "--wait",
                    "300s",
                ]);
                assert_eq!(r.code, 0, "worker {w} cycle {c} lock: {r:?}");
                let got = Instant::now();
                let id = r.stdout.trim().to_string();
                let f = file.to_string_lossy().into_owned();
                let r = tfsync(&["pull", "-o", &f]);
                assert_eq!(r.code, 0, "pull: {r:?}");
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
                let serial = v["serial"].as_u64().expect("serial");
                v["serial"] = serde_json::json!(serial + 1);
                std::fs::write(&file, serde_json::to_vec_pretty(&v).expect("ser")).expect("write");
                let r = tfsync(&["--quiet", "push", "--lock-id", &id, &f]);
                assert_eq!(r.code, 0, "worker {w} cycle {c} push: {r:?}");
                let released = Instant::now();
                let r = tfsync(&["--quiet", "unlock", &id]);
                assert_eq!(r.code, 0, "unlock: {r:?}");
                holds.lock().expect("mutex").push((got, released, w));
            }
        }));
    }
    for w in workers {
        w.join().expect("worker");
    }
    let elapsed = started.elapsed();

    let fin: serde_json::Value =
        serde_json::from_slice(&store.get(KEY).await.expect("final").bytes).expect("json");
    let expected = (procs * cycles) as u64;
    eprintln!(
        "race on {}: {procs} processes x {cycles} cycles in {:.1}s, final serial {} (expected {expected})",
        server.name,
        elapsed.as_secs_f64(),
        fin["serial"]
    );
    assert_eq!(
        fin["serial"].as_u64(),
        Some(expected),
        "lost or duplicated increments"
    );
    assert_eq!(fin["lineage"], "race-lineage");

    // No two holders at once: [lock returned, push done] intervals are disjoint.
    let mut holds = holds.lock().expect("mutex").clone();
    holds.sort_by_key(|h| h.0);
    for pair in holds.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "holders overlap: worker {} and worker {}",
            pair[0].2,
            pair[1].2
        );
    }
    assert!(
        store.head(&format!("{KEY}.tflock")).await.is_err(),
        "nothing left locked"
    );
}

macro_rules! race_on {
    ($($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            if let Some(s) = support::server(&stringify!($name)["race_".len()..]) { race(s).await }
        }
    )*};
}

race_on!(race_ceph, race_seaweedfs, race_moto);
