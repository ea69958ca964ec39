//! `tfsync backup`, `backup verify` and `restore` end to end on the real
//! servers: to a directory and to another bucket, incremental skip,
//! retention, corruption caught by verify, restore under the push rules, a
//! cron-style run, and a failure that names its key.

use crate::support;
use crate::support::proxy::{Fault, Proxy, Rule};
use crate::support::{Server, run, state};
use tfsync::store::s3::S3Store;
use tfsync::store::{ObjectStore, PutMode};

const KEYS: [&str; 4] = [
    "net/terraform.tfstate",
    "env:/staging/net/terraform.tfstate",
    "env:/prod/net/terraform.tfstate",
    "app/terraform.tfstate",
];

async fn seed(store: &S3Store) {
    for (i, k) in KEYS.iter().enumerate() {
        store
            .put(k, state(&format!("lin-{i}"), 3, 2), PutMode::Overwrite)
            .await
            .expect("put");
    }
    // A lock is never copied.
    store
        .put(
            "net/terraform.tfstate.tflock",
            br#"{"ID":"x"}"#.to_vec(),
            PutMode::Overwrite,
        )
        .await
        .expect("put lock");
}

fn json(r: &support::Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .expect("prefix")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

async fn to_directory(server: Server) {
    let src = server.new_bucket("bk-src").await;
    seed(&src).await;
    let dir = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", dir.path().display());
    let bk = |args: &[&str]| {
        run(server
            .tfsync(src.bucket(), "unused")
            .args(["--output", "json", "backup", "--to", &to])
            .args(args))
    };

    let r = bk(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let s = json(&r);
    assert_eq!(
        (&s["seen"], &s["copied"], &s["skipped"], &s["failed"]),
        (&4.into(), &4.into(), &0.into(), &0.into()),
        "{r:?}"
    );
    let first = s["snapshot"].as_str().expect("id").to_string();
    let files = files_under(dir.path());
    assert!(
        files.iter().all(|f| !f.ends_with(".tflock")),
        "no lock copied: {files:?}"
    );
    assert!(files.contains(&format!("{first}/env:/prod/net/terraform.tfstate")));
    let copied = std::fs::read(dir.path().join(format!("{first}/app/terraform.tfstate")))
        .expect("read copy");
    assert_eq!(copied, state("lin-3", 3, 2), "bytes exactly");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("manifests/{first}.json"))).expect("manifest"),
    )
    .expect("manifest json");
    let e = &manifest["states"][0];
    assert_eq!(e["key"], "app/terraform.tfstate");
    assert_eq!(e["serial"], 3);
    assert_eq!(e["lineage"], "lin-3");
    assert_eq!(
        e["md5"],
        tfsync::store::md5_hex(&state("lin-3", 3, 2)).as_str()
    );
    assert!(e["source_etag"].is_string() && e["size"].is_u64() && e["time"].is_string());
    assert!(
        src.head("net/terraform.tfstate.tflock").await.is_ok(),
        "the lock was left alone"
    );

    // Incremental: one state changes; only it is read again.
    src.put(KEYS[0], state("lin-0", 4, 2), PutMode::Overwrite)
        .await
        .expect("put");
    let r = bk(&[]);
    let s = json(&r);
    assert_eq!(
        (&s["copied"], &s["skipped"]),
        (&1.into(), &3.into()),
        "{r:?}"
    );
    let second = s["snapshot"].as_str().expect("id").to_string();
    assert_ne!(first, second);

    // Retention: a third run with --keep 2 prunes the first manifest but
    // keeps the objects the kept snapshots still reference.
    let r = bk(&["--keep", "2"]);
    let s = json(&r);
    assert_eq!(s["pruned"], serde_json::json!([first]), "{r:?}");
    assert_eq!(
        (&s["copied"], &s["skipped"]),
        (&0.into(), &4.into()),
        "{r:?}"
    );
    assert!(!dir.path().join(format!("manifests/{first}.json")).exists());
    assert!(
        !dir.path()
            .join(format!("{first}/net/terraform.tfstate"))
            .exists(),
        "replaced in the second snapshot: deleted"
    );
    assert!(
        dir.path()
            .join(format!("{first}/app/terraform.tfstate"))
            .exists(),
        "still referenced: kept"
    );

    // Verify passes, then catches a corrupted object and names it.
    let verify = |extra: &[&str]| {
        run(server
            .tfsync(src.bucket(), "unused")
            .args(["backup", "verify", "--from", &to])
            .args(extra))
    };
    let r = verify(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let victim = dir.path().join(format!("{first}/app/terraform.tfstate"));
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[10] ^= 1;
    std::fs::write(&victim, &bytes).expect("corrupt");
    let r = verify(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("app/terraform.tfstate") && r.stderr.contains("MD5"),
        "names the damaged object: {r:?}"
    );
    let r = verify(&["--output", "json"]);
    assert_eq!(json(&r)["failed"], 1, "{r:?}");
}

async fn restore(server: Server) {
    let src = server.new_bucket("bk-rs").await;
    seed(&src).await;
    src.delete("net/terraform.tfstate.tflock", None)
        .await
        .expect("no debris lock: restore takes the lock");
    let dir = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", dir.path().display());
    let key = "net/terraform.tfstate";
    let r = run(server
        .tfsync(src.bucket(), key)
        .args(["backup", "--to", &to]));
    assert_eq!(r.code, 0, "{r:?}");
    let snap = r
        .stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{to}/")))
        .map(|w| w.trim_end_matches(':').to_string())
        .expect("snapshot id in the summary");

    // A newer state has been pushed since: the restore is refused (older serial).
    src.put(key, state("lin-0", 7, 2), PutMode::Overwrite)
        .await
        .expect("put");
    let from = format!("{to}/{snap}");
    let r = run(server
        .tfsync(src.bucket(), key)
        .args(["restore", "--from", &from]));
    assert_eq!(r.code, 4, "older serial refused: {r:?}");
    assert_eq!(
        src.get(key).await.expect("get").bytes,
        state("lin-0", 7, 2),
        "nothing written"
    );
    // With --force it goes back, under the lock, which is released after.
    let r = run(server
        .tfsync(src.bucket(), key)
        .args(["restore", "--force", "--from", &from]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(src.get(key).await.expect("get").bytes, state("lin-0", 3, 2));
    assert!(
        src.head(&format!("{key}.tflock")).await.is_err(),
        "lock released"
    );

    // Lost state: restore every state of the newest snapshot into an empty bucket.
    let other = server.new_bucket("bk-rs2").await;
    let r = run(server
        .tfsync(other.bucket(), "unused")
        .args(["restore", "--all", "--from", &to]));
    assert_eq!(r.code, 0, "{r:?}");
    for (i, k) in KEYS.iter().enumerate() {
        assert_eq!(
            other.get(k).await.expect("restored").bytes,
            state(&format!("lin-{i}"), 3, 2)
        );
        assert!(
            other.head(&format!("{k}.tflock")).await.is_err(),
            "lock released"
        );
    }
    // A key the snapshot does not hold: not found.
    let r = run(server
        .tfsync(src.bucket(), "nope.tfstate")
        .args(["restore", "--from", &to]));
    assert_eq!(r.code, 5, "{r:?}");
}

async fn to_bucket(server: Server) {
    let src = server.new_bucket("bk-b").await;
    seed(&src).await;
    let dst = server.new_bucket("bk-d").await;
    let to = format!("s3://{}/nightly", dst.bucket());
    let r = run(server
        .tfsync(src.bucket(), "unused")
        .args(["--verbose", "backup", "--to", &to]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("COPY s3://"),
        "same server: server-side copy: {r:?}"
    );
    let listed: Vec<String> = dst
        .list("nightly/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed.len(), 5, "4 states + 1 manifest: {listed:?}");
    assert!(listed.iter().any(|k| k.starts_with("nightly/manifests/")));
    let obj = listed
        .iter()
        .find(|k| k.ends_with("/env:/staging/net/terraform.tfstate"))
        .expect("workspace state copied");
    assert_eq!(dst.get(obj).await.expect("get").bytes, state("lin-1", 3, 2));
    // gzip: stored compressed, verified and restored decompressed.
    let r = run(server.tfsync(src.bucket(), "unused").args([
        "backup",
        "--gzip",
        "--to",
        &format!("s3://{}/gz", dst.bucket()),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        dst.list("gz/")
            .await
            .expect("list")
            .iter()
            .any(|m| m.key.ends_with(".tfstate.gz"))
    );
    let r = run(server.tfsync(src.bucket(), "unused").args([
        "backup",
        "verify",
        "--from",
        &format!("s3://{}/gz", dst.bucket()),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(server
        .tfsync(src.bucket(), "unused")
        .args(["backup", "verify", "--from", &to]));
    assert_eq!(r.code, 0, "{r:?}");
}

/// The requests of a backup between two buckets of one server: each state
/// is copied server-side with only its head read (a ranged GET of that
/// version), the manifest still has every serial and lineage; an unchanged
/// re-run finds the copies in one listing, not with a HEAD each.
async fn requests(server: Server) {
    let src = server.new_bucket("bk-req").await;
    let keys: Vec<String> = (0..6)
        .map(|i| format!("env:/w{i}/net/terraform.tfstate"))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        // One state small enough to be read whole by the ranged GET.
        let resources = if i == 0 { 1 } else { 30 };
        src.put(
            k,
            state(&format!("lin-{i}"), 7, resources),
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    }
    let dst = server.new_bucket("bk-req-d").await;
    let to = format!("s3://{}/nightly", dst.bucket());
    let backup = || {
        run(server
            .tfsync(src.bucket(), "unused")
            .args(["--verbose", "backup", "--to", &to]))
    };
    let r = backup();
    assert_eq!(r.code, 0, "{r:?}");
    let gets: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("tfsync: GET s3://{}/env:", src.bucket())))
        .collect();
    assert_eq!(gets.len(), keys.len(), "one GET per state: {gets:#?}");
    assert!(
        gets.iter().all(|l| l.ends_with("(bytes 0-1023, If-Match)")),
        "only the head of each state is read: {gets:#?}"
    );
    let manifests = dst.list("nightly/manifests/").await.expect("list");
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&dst.get(&manifests[0].key).await.expect("get").bytes)
            .expect("manifest JSON");
    let states = manifest["states"].as_array().expect("states");
    assert_eq!(states.len(), keys.len());
    for e in states {
        let k = e["key"].as_str().expect("key");
        let i = keys.iter().position(|x| x == k).expect("known key");
        assert_eq!(e["serial"], 7, "{e}");
        assert_eq!(e["lineage"], format!("lin-{i}"), "{e}");
        let body = src.get(k).await.expect("get").bytes;
        assert_eq!(e["md5"], tfsync::store::md5_hex(&body), "{e}");
        assert_eq!(e["size"], body.len(), "{e}");
    }
    let r = backup();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("0 copied, 6 skipped"), "{r:?}");
    let heads: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("tfsync: HEAD"))
        .collect();
    assert!(
        heads.is_empty(),
        "one listing, not a HEAD per state: {heads:#?}"
    );
    let r = run(server
        .tfsync(src.bucket(), "unused")
        .args(["backup", "verify", "--from", &to]));
    assert_eq!(r.code, 0, "{r:?}");
}

/// Cron: stdin and stdout not terminals, nothing but one summary line.
async fn cron(server: Server) {
    let src = server.new_bucket("bk-cron").await;
    seed(&src).await;
    let dir = tempfile::tempdir().expect("tmp");
    let out = server
        .tfsync(src.bucket(), "unused")
        .args([
            "backup",
            "--to",
            &format!("file://{}", dir.path().display()),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    assert!(
        stdout.contains("4 seen, 4 copied, 0 skipped, 0 failed"),
        "{stdout:?}"
    );
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A state that cannot be read: non-zero exit naming the key, and no manifest.
async fn failure_names_key(server: Server) {
    let src = server.new_bucket("bk-fail").await;
    seed(&src).await;
    let upstream = server.endpoint().trim_start_matches("http://").to_string();
    let proxy = Proxy::start(upstream).await;
    proxy.add(Rule {
        method: "GET",
        path_ends: "/app/terraform.tfstate".into(),
        times: 100,
        fault: Fault::Respond(500),
    });
    let dir = tempfile::tempdir().expect("tmp");
    let r = run(server
        .tfsync(src.bucket(), "unused")
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
        .args(["--max-attempts", "2", "backup", "--to"])
        .arg(format!("file://{}", dir.path().display())));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("app/terraform.tfstate"), "{r:?}");
    assert!(r.stdout.contains("1 failed"), "{r:?}");
    assert!(
        !dir.path().join("manifests").exists(),
        "no manifest: the run does not look complete"
    );
    let r = run(server
        .tfsync(src.bucket(), "unused")
        .args(["backup", "verify", "--from"])
        .arg(format!("file://{}", dir.path().display())));
    assert_eq!(r.code, 5, "no complete snapshot: {r:?}");
}

on_each_server!([seaweedfs, ceph] to_directory);
on_each_server!([moto, ceph] restore);
on_each_server!([ceph, seaweedfs] to_bucket);
on_each_server!([seaweedfs] cron);
on_each_server!([seaweedfs, ceph] requests);
on_each_server!([moto] failure_names_key);
