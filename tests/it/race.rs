//! The race test: N processes, each doing M cycles of
//! lock (with wait) -> pull -> serial + 1 -> push under that lock -> unlock,
//! on one state, while readers run `status` and `pull` in a loop.
//!
//! - every increment survives: the final serial is exactly N*M;
//! - every read sees a complete state with a valid, never-decreasing serial;
//! - a separate checker, reading the holders' log (acquired/released times
//!   recorded by each worker), finds no two holders overlapping.
//!
//! Scale with TFSYNC_RACE_PROCS, TFSYNC_RACE_CYCLES, TFSYNC_RACE_READERS
//! (defaults 16, 10, 2; `make bench` runs 32 x 25).
//!
//! `race_with_table` (moto) runs the same with a DynamoDB table: every lock
//! is the `.tflock` and the item, every push stores the digest; at the end
//! the digest is the final object's MD5 and no item is left. Defaults 8 x 5,
//! scaled by the same variables.

use crate::support::{Server, run, state};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tfsync::store::{ObjectStore, PutMode};

const KEY: &str = "race/terraform.tfstate";
const LINEAGE: &str = "race-lineage";

fn setting(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// The separate checker: holder records `worker cycle acquired released`
/// (microseconds since the epoch, taken after `lock` returned and before
/// `unlock` started). Sorted by acquisition, each must end before the next
/// begins.
fn check_no_overlap(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).expect("holders log");
    let mut holds: Vec<(u128, u128, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[2].parse().expect("acquired"),
                f[3].parse().expect("released"),
                format!("{} {}", f[0], f[1]),
            )
        })
        .collect();
    holds.sort();
    for w in holds.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "holders overlap: {} held until {}, {} took it at {}",
            w[0].2,
            w[0].1,
            w[1].2,
            w[1].0
        );
    }
    holds.len()
}

async fn race(server: Server) {
    run_race(server, false, 16, 10).await
}

async fn race_with_table(server: Server) {
    run_race(server, true, 8, 5).await
}

async fn run_race(server: Server, with_table: bool, procs: usize, cycles: usize) {
    let (procs, cycles, readers) = (
        setting("TFSYNC_RACE_PROCS", procs),
        setting("TFSYNC_RACE_CYCLES", cycles),
        setting("TFSYNC_RACE_READERS", 2),
    );
    let store = server.new_bucket("race").await;
    let bucket = store.bucket().to_string();
    // With a table: a new one on the server's DynamoDB, named to every
    // tfsync run through its environment.
    let mut server = server;
    let table = if with_table {
        let endpoint = server
            .env
            .get("AWS_ENDPOINT_URL_DYNAMODB")
            .cloned()
            .expect("the server's env file names its DynamoDB endpoint");
        let opts = tfsync::store::dynamo::LockTableOptions {
            table: crate::support::unique_name("race"),
            endpoint: Some(endpoint),
        };
        let s = server
            .builder(&bucket)
            .with_lock_table(Some(opts.clone()))
            .build()
            .await
            .expect("connect");
        let t = s.lock_table().expect("table").clone();
        t.create_if_missing().await.expect("create table");
        server
            .env
            .insert("TFSYNC_DYNAMODB_TABLE".into(), opts.table.clone());
        Some(t)
    } else {
        None
    };
    store
        .put(KEY, state(LINEAGE, 0, 1), PutMode::Create)
        .await
        .expect("seed state");
    let tfsync: Tfsync = {
        let (server, bucket) = (server.clone(), bucket.clone());
        Arc::new(move || server.tfsync(&bucket, KEY))
    };
    let outcome = drive(tfsync, procs, cycles, readers);
    let fin = store.get(KEY).await.expect("final").bytes;
    check_end(&server.name, &outcome, &fin, procs, cycles);
    assert!(
        store.head(&format!("{KEY}.tflock")).await.is_err(),
        "nothing left locked"
    );
    if let Some(t) = table {
        let digest = t
            .get(&format!("{bucket}/{KEY}-md5"))
            .await
            .expect("digest item")
            .and_then(|i| i.get("Digest").cloned());
        assert_eq!(
            digest,
            Some(tfsync::store::md5_hex(&fin)),
            "the digest is the final object's MD5"
        );
        assert_eq!(
            t.get(&format!("{bucket}/{KEY}")).await.expect("lock item"),
            None,
            "no lock item left"
        );
    }
}

/// What one race run saw.
struct Outcome {
    elapsed: std::time::Duration,
    reads: usize,
    holders: usize,
}

/// A fresh `tfsync` command on the raced state (its backend in its
/// environment or working directory).
type Tfsync = Arc<dyn Fn() -> std::process::Command + Send + Sync>;

/// The workers and readers of the race, on any backend; the caller seeded
/// the state (lineage [`LINEAGE`], serial 0) and checks the end.
fn drive(tfsync: Tfsync, procs: usize, cycles: usize, readers: usize) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("holders.log");
    let log = Arc::new(std::sync::Mutex::new(
        std::fs::File::create(&log_path).expect("log"),
    ));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let mut reader_threads = Vec::new();
    for r in 0..readers {
        let (tfsync, done) = (tfsync.clone(), done.clone());
        reader_threads.push(std::thread::spawn(move || {
            let (mut last, mut reads) = (0u64, 0usize);
            while !done.load(Ordering::SeqCst) {
                let serial = if r % 2 == 0 {
                    let out = run(tfsync().args(["pull"]));
                    assert_eq!(out.code, 0, "reader pull: {out:?}");
                    let v: serde_json::Value =
                        serde_json::from_str(&out.stdout).expect("pull returns a complete state");
                    assert_eq!(v["lineage"], LINEAGE);
                    v["serial"].as_u64().expect("serial")
                } else {
                    let out = run(tfsync().args(["--output", "json", "status"]));
                    assert_eq!(out.code, 0, "reader status: {out:?}");
                    let v: serde_json::Value =
                        serde_json::from_str(&out.stdout).expect("status json");
                    assert_eq!(v["state"]["lineage"], LINEAGE, "{v}");
                    v["state"]["serial"].as_u64().expect("serial")
                };
                assert!(
                    serial >= last,
                    "reader {r} saw serial go back from {last} to {serial}"
                );
                last = serial;
                reads += 1;
            }
            reads
        }));
    }

    let mut workers = Vec::new();
    for w in 0..procs {
        let (command, log) = (tfsync.clone(), log.clone());
        let file = dir.path().join(format!("w{w}.tfstate"));
        workers.push(std::thread::spawn(move || {
            let tfsync = |args: &[&str]| run(command().args(args));
            for c in 0..cycles {
                let info = format!("w{w} c{c}");
                let r = tfsync(&[
                    "--quiet",
                    "lock",
                    "--operation",
                    "race",
                    "--info",
                    &info,
                    "--wait",
                    "600s",
                ]);
                assert_eq!(r.code, 0, "worker {w} cycle {c} lock: {r:?}");
                let acquired = now_micros();
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
                let released = now_micros();
                let r = tfsync(&["--quiet", "unlock", &id]);
                assert_eq!(r.code, 0, "unlock: {r:?}");
                writeln!(log.lock().expect("log"), "w{w} c{c} {acquired} {released}")
                    .expect("log write");
            }
        }));
    }
    for w in workers {
        w.join().expect("worker");
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let reads: usize = reader_threads
        .into_iter()
        .map(|t| t.join().expect("reader"))
        .sum();

    let holders = check_no_overlap(&log_path);
    Outcome {
        elapsed,
        reads,
        holders,
    }
}

/// What every race must end with: each increment once (the final serial
/// is procs x cycles, same lineage), one holder per cycle; printed first.
fn check_end(name: &str, outcome: &Outcome, fin: &[u8], procs: usize, cycles: usize) {
    let Outcome {
        elapsed,
        reads,
        holders,
    } = outcome;
    let fin: serde_json::Value = serde_json::from_slice(fin).expect("json");
    let expected = (procs * cycles) as u64;
    eprintln!(
        "race on {name}: {procs} processes x {cycles} cycles in {:.1}s ({:.0} ms/cycle), final serial {} (expected {expected}), {holders} holders without overlap, {reads} concurrent reads all complete",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / expected as f64,
        fin["serial"]
    );
    assert_eq!(
        fin["serial"].as_u64(),
        Some(expected),
        "lost or duplicated increments"
    );
    assert_eq!(fin["lineage"], LINEAGE);
    assert_eq!(*holders, procs * cycles);
}

#[test]
fn the_checker_catches_overlaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    std::fs::write(&p, "w0 c0 100 200\nw1 c0 200 300\n").expect("write");
    assert_eq!(check_no_overlap(&p), 2);
    std::fs::write(&p, "w0 c0 100 250\nw1 c0 200 300\n").expect("write");
    assert!(
        std::panic::catch_unwind(|| check_no_overlap(&p)).is_err(),
        "an overlap must be caught"
    );
}

on_each_server!(race);
on_each_server!([moto] race_with_table);

/// The same race on the azurerm backend (Azurite): every lock is an
/// infinite lease on the state blob with the holder in its metadata, every
/// push is written under that lease. At the end no lease and no lock info
/// is left on the blob.
#[tokio::test(flavor = "multi_thread")]
async fn race_azurerm() {
    use tfsync::store::azure::AzureStore;
    let Some(server) = crate::support::server("azurite") else {
        return;
    };
    let (procs, cycles, readers) = (
        setting("TFSYNC_RACE_PROCS", 16),
        setting("TFSYNC_RACE_CYCLES", 10),
        setting("TFSYNC_RACE_READERS", 2),
    );
    let (container, client) = crate::support::azure::new_container(&server, "race").await;
    let (endpoint, account, key) = (
        server.env["AZURE_STORAGE_ENDPOINT"].clone(),
        server.env["AZURE_STORAGE_ACCOUNT"].clone(),
        server.env["ARM_ACCESS_KEY"].clone(),
    );
    let store = AzureStore::new(client.clone());
    store
        .put(KEY, state(LINEAGE, 0, 1), PutMode::Create)
        .await
        .expect("seed state");
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("backend.tf"),
        format!(
            "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"{account}\"\n    container_name       = \"{container}\"\n    key                  = \"{KEY}\"\n  }}\n}}\n"
        ),
    )
    .expect("backend.tf");
    let tfsync: Tfsync = {
        let dir = home.path().to_path_buf();
        Arc::new(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", &dir)
                .env("ARM_ACCESS_KEY", &key)
                .env("TFSYNC_AZURE_ENDPOINT", &endpoint)
                .current_dir(&dir);
            cmd
        })
    };
    let outcome = drive(tfsync, procs, cycles, readers);
    let fin = store.get(KEY).await.expect("final").bytes;
    check_end("azurite (azurerm)", &outcome, &fin, procs, cycles);
    let head = client
        .request(hyper::Method::HEAD, Some(KEY), &[], &[], vec![])
        .await
        .expect("head");
    assert_eq!(head.status, 200, "{head:?}");
    assert_ne!(
        head.header("x-ms-lease-state"),
        Some("leased"),
        "no lease left on the state blob"
    );
    assert_eq!(
        client.read_lock_info(KEY).await.expect("metadata"),
        None,
        "no lock info left in the metadata"
    );
}
