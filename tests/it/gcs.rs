//! Terraform's gcs backend on gcp-storage-emulator (`scripts/servers/gcs.sh`):
//! the commands end to end from a `backend "gcs"` block and an OpenMCF
//! manifest, a Terraform-style lock object written by the test, the
//! generation preconditions on the wire (recorded by the test proxy: the
//! emulator itself ignores them), a lost response to the lock's create, and
//! `doctor` calling the emulator unsafe.

use crate::support::{self, Server, proxy};
use hyper::Method;
use std::path::Path;
use tfsync::store::gcs::{GcsAuth, GcsOptions, GcsStore};
use tfsync::store::{ObjectStore, PutMode};

pub fn server() -> Option<Server> {
    support::server("gcs")
}

pub fn endpoint(server: &Server) -> String {
    server.env["TFSYNC_GCS_ENDPOINT"].clone()
}

/// A store on `endpoint` for `bucket` (no credentials: plain http).
pub fn store(endpoint: &str, bucket: &str) -> GcsStore {
    GcsStore::new(&GcsOptions {
        bucket: bucket.into(),
        endpoint: endpoint.into(),
        auth: GcsAuth::Anonymous,
        encryption_key: None,
        kms_key: None,
        verbose: false,
    })
    .expect("gcs store")
}

/// A new, empty bucket on the emulator, and its store.
pub async fn new_bucket(server: &Server, tag: &str) -> GcsStore {
    let bucket = support::unique_name(tag).to_lowercase().replace('_', "-");
    let s = store(&endpoint(server), &bucket);
    let r = s
        .request(
            Method::POST,
            "/storage/v1/b",
            &[("project", "tfsync".to_string())],
            &[("content-type", "application/json".to_string())],
            serde_json::to_vec(&serde_json::json!({ "name": bucket })).expect("json"),
            "bucket",
        )
        .await
        .expect("create bucket");
    assert_eq!(
        r.status,
        200,
        "create bucket {bucket}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    s
}

/// tfsync with nothing in its environment but the emulator's endpoint.
fn tfsync(endpoint: &str, dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir().join("tfsync-test-home"))
        .env("TFSYNC_GCS_ENDPOINT", endpoint)
        .arg("--chdir")
        .arg(dir);
    cmd
}

fn backend_dir(bucket: &str, prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.tf"),
        format!("terraform {{\n  backend \"gcs\" {{\n    bucket = \"{bucket}\"\n    prefix = \"{prefix}\"\n  }}\n}}\n"),
    )
    .expect("main.tf");
    dir
}

fn ok(run: &support::Run) {
    assert_eq!(run.code, 0, "{run:?}");
}

/// A lock object as Terraform's gcs `Lock` writes it: its own UUID in the
/// JSON, `Path` the lock object's URL.
fn terraform_lock(bucket: &str, lock_key: &str) -> Vec<u8> {
    format!(
        r#"{{"ID":"2b6a6738-5dd5-8e81-2c0e-1d4b7b4d3c2a","Operation":"OperationTypeApply","Info":"","Who":"alice@ci-7","Version":"1.11.0","Created":"2026-11-22T02:11:09.53Z","Path":"gs://{bucket}/{lock_key}"}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn a_backend_gcs_block_drives_the_commands() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-cli").await;
    let bucket = s.bucket().to_string();
    let ep = endpoint(&server);
    let dir = backend_dir(&bucket, "/team/net/");
    let state = support::state("lin-gcs", 3, 2);
    let file = dir.path().join("in.tfstate");
    std::fs::write(&file, &state).expect("write");

    // push writes Terraform's layout: <prefix>/default.tfstate, no lock left.
    ok(&support::run(
        tfsync(&ep, dir.path()).arg("push").arg(&file),
    ));
    assert_eq!(
        s.get("team/net/default.tfstate")
            .await
            .expect("state")
            .bytes,
        state
    );
    assert!(
        s.head("team/net/default.tflock").await.is_err(),
        "lock released"
    );
    let pulled = support::run(tfsync(&ep, dir.path()).arg("pull"));
    ok(&pulled);
    assert_eq!(pulled.stdout.as_bytes(), &state[..], "pull: bytes exact");

    // Another workspace: <prefix>/staging.tfstate; list sees both (and
    // neither a nested object nor a lock).
    let staging = support::state("lin-st", 1, 1);
    std::fs::write(&file, &staging).expect("write");
    ok(&support::run(
        tfsync(&ep, dir.path())
            .args(["-w", "staging", "push"])
            .arg(&file),
    ));
    assert_eq!(
        s.get("team/net/staging.tfstate").await.expect("ws").bytes,
        staging
    );
    s.put(
        "team/net/deeper/x.tfstate",
        b"{}".to_vec(),
        PutMode::Overwrite,
    )
    .await
    .expect("put");
    let list = support::run(tfsync(&ep, dir.path()).args(["--output", "json", "list"]));
    ok(&list);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let names: Vec<&str> = v["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .map(|w| w["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["default", "staging"], "{}", list.stdout);

    // lock: the ID is the lock object's generation, as Terraform reports it.
    let lock = support::run(tfsync(&ep, dir.path()).args(["--quiet", "lock"]));
    ok(&lock);
    let id = lock.stdout.trim().to_string();
    let held = s.get("team/net/default.tflock").await.expect("lock object");
    assert_eq!(
        held.meta.etag.as_deref(),
        Some(id.as_str()),
        "ID = generation"
    );
    let json: serde_json::Value = serde_json::from_slice(&held.bytes).expect("lock json");
    assert_eq!(
        json["Path"],
        format!("gs://{bucket}/team/net/default.tflock")
    );
    assert_eq!(json["Operation"], "tfsync-lock", "{json}");
    let status = support::run(tfsync(&ep, dir.path()).arg("status"));
    ok(&status);
    assert!(
        status.stdout.contains(&id) && status.stdout.contains("LOCKED"),
        "{status:?}"
    );
    assert!(
        status
            .stdout
            .contains(&format!("gs://{bucket}/team/net/default.tfstate")),
        "{status:?}"
    );
    // A second lock is refused and names the holder.
    let second = support::run(tfsync(&ep, dir.path()).arg("lock"));
    assert_eq!(second.code, 3, "{second:?}");
    assert!(second.stderr.contains(&id), "{second:?}");
    // push --lock-id under that lock, then unlock by the ID.
    let next = support::state("lin-gcs", 4, 2);
    std::fs::write(&file, &next).expect("write");
    ok(&support::run(
        tfsync(&ep, dir.path())
            .args(["push", "--lock-id", &id])
            .arg(&file),
    ));
    assert_eq!(
        s.get("team/net/default.tfstate")
            .await
            .expect("state")
            .bytes,
        next
    );
    let wrong = support::run(tfsync(&ep, dir.path()).args(["unlock", "12345"]));
    assert_eq!(wrong.code, 3, "{wrong:?}");
    ok(&support::run(tfsync(&ep, dir.path()).args(["unlock", &id])));
    assert!(s.head("team/net/default.tflock").await.is_err(), "unlocked");
}

#[tokio::test]
async fn a_terraform_lock_blocks_and_force_unlock_releases_it_by_its_generation() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-tf").await;
    let bucket = s.bucket().to_string();
    let ep = endpoint(&server);
    let dir = backend_dir(&bucket, "prod");
    let generation = s
        .put(
            "prod/default.tflock",
            terraform_lock(&bucket, "prod/default.tflock"),
            PutMode::Create,
        )
        .await
        .expect("terraform's lock")
        .expect("generation");
    let file = dir.path().join("in.tfstate");
    std::fs::write(&file, support::state("L", 1, 0)).expect("write");

    let push = support::run(tfsync(&ep, dir.path()).arg("push").arg(&file));
    assert_eq!(push.code, 3, "{push:?}");
    assert!(
        push.stderr.contains(&generation) && push.stderr.contains("alice@ci-7"),
        "{push:?}"
    );
    assert!(
        s.head("prod/default.tfstate").await.is_err(),
        "nothing written"
    );

    let locks = support::run(tfsync(&ep, dir.path()).args(["--output", "json", "locks"]));
    ok(&locks);
    let v: serde_json::Value = serde_json::from_str(&locks.stdout).expect("json");
    assert_eq!(v["locks"][0]["state_key"], "prod/default.tfstate", "{v}");
    assert_eq!(v["locks"][0]["lock"]["id"], generation.as_str(), "{v}");

    // Terraform's own JSON ID is not what Terraform calls the lock's ID.
    let other = support::run(tfsync(&ep, dir.path()).args([
        "force-unlock",
        "--yes",
        "2b6a6738-5dd5-8e81-2c0e-1d4b7b4d3c2a",
    ]));
    assert_eq!(other.code, 3, "{other:?}");
    assert!(s.head("prod/default.tflock").await.is_ok(), "left in place");
    ok(&support::run(tfsync(&ep, dir.path()).args([
        "force-unlock",
        "--yes",
        &generation,
    ])));
    assert!(s.head("prod/default.tflock").await.is_err(), "released");
    ok(&support::run(
        tfsync(&ep, dir.path()).arg("push").arg(&file),
    ));

    // force-unlock --all --older-than: Terraform's old lock of another
    // workspace goes (by its generation), a young tfsync lock stays.
    s.put(
        "prod/old.tflock",
        terraform_lock(&bucket, "prod/old.tflock"),
        PutMode::Create,
    )
    .await
    .expect("old lock");
    ok(&support::run(
        tfsync(&ep, dir.path()).args(["-w", "young", "lock"]),
    ));
    let all = support::run(tfsync(&ep, dir.path()).args([
        "--output",
        "json",
        "force-unlock",
        "--all",
        "--older-than",
        "1h",
        "--yes",
    ]));
    ok(&all);
    let v: serde_json::Value = serde_json::from_str(&all.stdout).expect("json");
    assert_eq!(v["released"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["released"][0]["state_key"], "prod/old.tfstate", "{v}");
    assert!(
        s.head("prod/old.tflock").await.is_err(),
        "old lock released"
    );
    assert!(s.head("prod/young.tflock").await.is_ok(), "young lock kept");
}

#[tokio::test]
async fn backup_and_restore_of_gcs_states() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-bk").await;
    let ep = endpoint(&server);
    let dir = backend_dir(s.bucket(), "app");
    let (a, b) = (support::state("A", 2, 1), support::state("B", 5, 2));
    s.put("app/default.tfstate", a.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    s.put("app/dev.tfstate", b.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    s.put(
        "app/dev.tflock",
        terraform_lock(s.bucket(), "app/dev.tflock"),
        PutMode::Overwrite,
    )
    .await
    .expect("lock");
    let to = dir.path().join("backups");
    std::fs::create_dir(&to).expect("mkdir");
    let run = support::run(
        tfsync(&ep, dir.path())
            .args(["--output", "json", "backup", "--to"])
            .arg(format!("file://{}", to.display())),
    );
    ok(&run);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (v["copied"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    let snap_dir = std::fs::read_dir(&to)
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir() && !p.ends_with("manifests"))
        .expect("snapshot dir");
    assert_eq!(
        std::fs::read(snap_dir.join("app/default.tfstate")).expect("a"),
        a
    );
    assert_eq!(
        std::fs::read(snap_dir.join("app/dev.tfstate")).expect("b"),
        b
    );
    assert!(
        !snap_dir.join("app/dev.tflock").exists(),
        "no lock in a backup"
    );

    // Restore the default workspace over a newer serial (--force), under
    // the gcs lock.
    s.put(
        "app/default.tfstate",
        support::state("A", 3, 0),
        PutMode::Overwrite,
    )
    .await
    .expect("put");
    let run = support::run(
        tfsync(&ep, dir.path())
            .args(["restore", "--force", "--from"])
            .arg(format!("file://{}", snap_dir.display())),
    );
    ok(&run);
    assert_eq!(s.get("app/default.tfstate").await.expect("get").bytes, a);
    assert!(s.head("app/default.tflock").await.is_err(), "lock released");
}

#[tokio::test]
async fn manifest_status_with_backend_type_gcs() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-mf").await;
    let bucket = s.bucket().to_string();
    let state = support::state("lin-mf", 7, 1);
    s.put(
        "stacks/web/default.tfstate",
        state.clone(),
        PutMode::Overwrite,
    )
    .await
    .expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("manifest.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: gcp.openmcf.org/v1\nkind: GcpCloudRun\nmetadata:\n  name: web\n  labels:\n    openmcf.org/provisioner: terraform\n    terraform.openmcf.org/backend.type: gcs\n    terraform.openmcf.org/backend.bucket: {bucket}\n    terraform.openmcf.org/backend.key: stacks/web\n"
        ),
    )
    .expect("manifest");
    let run = support::run(
        tfsync(&endpoint(&server), dir.path())
            .args(["--output", "json", "-f"])
            .arg(&manifest)
            .arg("status"),
    );
    ok(&run);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let text = v.to_string();
    assert!(
        text.contains(&format!("gs://{bucket}/stacks/web/default.tfstate")),
        "{text}"
    );
    assert!(
        text.contains("\"serial\":7") && text.contains("lin-mf"),
        "{text}"
    );
}

#[tokio::test]
async fn doctor_calls_the_emulator_unsafe() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-doc").await;
    let dir = backend_dir(s.bucket(), "p");
    let run =
        support::run(tfsync(&endpoint(&server), dir.path()).args(["--output", "json", "doctor"]));
    assert_eq!(run.code, 6, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let verdict = |id: &str| {
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["verdict"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(verdict("permissions").as_deref(), Some("pass"), "{v}");
    assert_eq!(verdict("create_only").as_deref(), Some("fail"), "{v}");
    assert_eq!(
        verdict("create_after_delete").as_deref(),
        Some("fail"),
        "{v}"
    );
    assert_eq!(verdict("cleanup").as_deref(), Some("pass"), "{v}");
    assert_eq!(v["safe"], false);
    assert!(
        s.list("").await.expect("list").is_empty(),
        "scratch objects removed"
    );
}

/// The query parameter `name` of a recorded request path.
fn query(path: &str, name: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

// The proxy runs on the runtime while the test waits for tfsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preconditions_are_on_the_wire() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-wire").await;
    let bucket = s.bucket().to_string();
    let ep = endpoint(&server);
    let upstream = ep.trim_start_matches("http://").to_string();
    let proxy = proxy::Proxy::start(upstream).await;
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let dir = backend_dir(&bucket, "wire");
    let file = dir.path().join("in.tfstate");

    // A first push creates the state: lock create, state create, unlock.
    std::fs::write(&file, support::state("W", 1, 1)).expect("write");
    ok(&support::run(
        tfsync(&via, dir.path()).arg("push").arg(&file),
    ));
    let first = s
        .head("wire/default.tfstate")
        .await
        .expect("state")
        .etag
        .expect("generation");
    // A second push updates it under the generation it read.
    proxy.clear();
    std::fs::write(&file, support::state("W", 2, 1)).expect("write");
    ok(&support::run(
        tfsync(&via, dir.path()).arg("push").arg(&file),
    ));
    let seen = proxy.seen();
    let uploads: Vec<&proxy::Seen> = seen
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/upload/storage/v1/"))
        .collect();
    let lock_up = uploads
        .iter()
        .find(|r| query(&r.path, "name").as_deref() == Some("wire%2Fdefault.tflock"))
        .unwrap_or_else(|| panic!("no lock upload in {seen:#?}"));
    assert_eq!(
        query(&lock_up.path, "ifGenerationMatch").as_deref(),
        Some("0"),
        "{lock_up:?}"
    );
    let state_up = uploads
        .iter()
        .find(|r| query(&r.path, "name").as_deref() == Some("wire%2Fdefault.tfstate"))
        .unwrap_or_else(|| panic!("no state upload in {seen:#?}"));
    assert_eq!(
        query(&state_up.path, "ifGenerationMatch").as_deref(),
        Some(first.as_str()),
        "the update names the generation read: {state_up:?}"
    );
    let lock_gen = seen
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("wire%2Fdefault.tflock"))
        .find_map(|r| query(&r.path, "ifGenerationMatch"))
        .unwrap_or_else(|| panic!("no conditional lock delete in {seen:#?}"));
    assert!(lock_gen.parse::<u64>().is_ok_and(|g| g > 0), "{lock_gen}");
    // No credentials go to a plain-http endpoint.
    assert!(
        seen.iter().all(|r| r.header("authorization").is_none()),
        "{seen:#?}"
    );
}

// The proxy runs on the runtime while the test waits for tfsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_to_the_lock_create_is_recognised_by_its_id() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-lost").await;
    let ep = endpoint(&server);
    let proxy = proxy::Proxy::start(ep.trim_start_matches("http://").to_string()).await;
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let dir = backend_dir(s.bucket(), "lost");
    // The create lands but its answer is lost; the retry is refused with 412,
    // as GCS refuses a second ifGenerationMatch=0 (the emulator would not).
    proxy.add(proxy::Rule {
        method: "POST",
        path_ends: "/o".into(),
        times: 1,
        fault: proxy::Fault::DropResponse,
    });
    proxy.add(proxy::Rule {
        method: "POST",
        path_ends: "/o".into(),
        times: 1,
        fault: proxy::Fault::Respond(412),
    });
    let lock = support::run(tfsync(&via, dir.path()).args(["--quiet", "lock"]));
    ok(&lock);
    let held = s.head("lost/default.tflock").await.expect("lock object");
    assert_eq!(held.etag.as_deref(), Some(lock.stdout.trim()), "{lock:?}");
    ok(&support::run(
        tfsync(&ep, dir.path()).args(["unlock", lock.stdout.trim()]),
    ));
    assert!(s.head("lost/default.tflock").await.is_err());
}

/// Every workspace of a gcs backend moves (each side in its own layout):
/// into a directory laid out as s3's, the default at the source's key
/// (`<prefix>/default.tfstate`), `W` at `env:/W/<that key>`; the source's
/// locks are released. (Old code refused `--all-workspaces`.)
#[tokio::test]
async fn migrate_moves_every_workspace_out_of_gcs() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-mig").await;
    let ep = endpoint(&server);
    let dir = backend_dir(s.bucket(), "net");
    let (state, dev) = (support::state("M", 4, 1), support::state("D", 7, 2));
    s.put("net/default.tfstate", state.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    s.put("net/dev.tfstate", dev.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    let to = dir.path().join("dest");
    std::fs::create_dir(&to).expect("mkdir");
    let loc = format!("file://{}", to.display());
    ok(&support::run(tfsync(&ep, dir.path()).args([
        "migrate",
        "--all-workspaces",
        "--to",
        &loc,
    ])));
    assert_eq!(
        std::fs::read(to.join("net/default.tfstate")).expect("moved"),
        state
    );
    assert_eq!(
        std::fs::read(to.join("env:/dev/net/default.tfstate")).expect("moved dev"),
        dev
    );
    for lock in ["net/default.tflock", "net/dev.tflock"] {
        assert!(s.head(lock).await.is_err(), "source lock {lock} released");
    }
}

#[tokio::test]
async fn backup_to_a_gs_location_verify_and_restore_from_it() {
    let Some(server) = server() else { return };
    let s = new_bucket(&server, "gcs-src").await;
    let snaps = new_bucket(&server, "gcs-snaps").await;
    let ep = endpoint(&server);
    let dir = backend_dir(s.bucket(), "svc");
    let (a, b) = (support::state("A", 2, 1), support::state("B", 5, 2));
    s.put("svc/default.tfstate", a.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    s.put("svc/dev.tfstate", b.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    let to = format!("gs://{}/nightly", snaps.bucket());
    let run =
        support::run(tfsync(&ep, dir.path()).args(["--output", "json", "backup", "--to", &to]));
    ok(&run);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (v["copied"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    let snap = v["snapshot"].as_str().expect("snapshot").to_string();
    let id = snap.rsplit('/').next().expect("id").to_string();
    let objects: Vec<String> = snaps
        .list("nightly/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(
        objects.contains(&format!("nightly/{id}/svc/default.tfstate")),
        "{objects:?}"
    );
    assert!(
        objects.contains(&format!("nightly/manifests/{id}.json")),
        "{objects:?}"
    );
    assert_eq!(
        snaps
            .get(&format!("nightly/{id}/svc/dev.tfstate"))
            .await
            .expect("get")
            .bytes,
        b
    );
    ok(&support::run(
        tfsync(&ep, dir.path()).args(["backup", "verify", "--from", &to]),
    ));
    // A damaged object is found.
    snaps
        .put(
            &format!("nightly/{id}/svc/dev.tfstate"),
            b"damaged".to_vec(),
            PutMode::Overwrite,
        )
        .await
        .expect("damage");
    let bad = support::run(tfsync(&ep, dir.path()).args(["backup", "verify", "--from", &to]));
    assert_ne!(bad.code, 0, "{bad:?}");
    // Restore the default workspace from the snapshot.
    s.put(
        "svc/default.tfstate",
        support::state("A", 3, 0),
        PutMode::Overwrite,
    )
    .await
    .expect("put");
    ok(&support::run(tfsync(&ep, dir.path()).args([
        "restore",
        "--force",
        "--from",
        &format!("{to}/{id}"),
    ])));
    assert_eq!(s.get("svc/default.tfstate").await.expect("get").bytes, a);
    // A migration destination in gcs's own layout: `<prefix>/<W>.tfstate`
    // under the location's prefix. (Old code refused gs:// destinations.)
    let moved = format!("gs://{}/moved", snaps.bucket());
    ok(&support::run(tfsync(&ep, dir.path()).args([
        "migrate",
        "--all-workspaces",
        "--to",
        &moved,
    ])));
    assert_eq!(
        snaps.get("moved/default.tfstate").await.expect("get").bytes,
        a
    );
    assert_eq!(snaps.get("moved/dev.tfstate").await.expect("get").bytes, b);
    for lock in [
        "moved/default.tflock",
        "moved/dev.tflock",
        "svc/default.tflock",
    ] {
        assert!(
            snaps.head(lock).await.is_err() && s.head(lock).await.is_err(),
            "{lock} released"
        );
    }
    let k =
        support::run(tfsync(&ep, dir.path()).args(["migrate", "--to", &moved, "--to-key", "x"]));
    assert_eq!(k.code, 2, "--to-key has no meaning in gcs's layout: {k:?}");
}

/// Between backends, each in its own layout: three workspaces of an s3
/// backend (SeaweedFS) migrate into a gcs bucket (`<prefix>/<W>.tfstate`)
/// and back into another s3 bucket, byte for byte; no lock is left on any
/// side.
#[tokio::test]
async fn three_workspaces_migrate_s3_to_gcs_and_back() {
    let Some(server) = server() else { return };
    let Some(weed) = support::server("seaweedfs") else {
        return;
    };
    let g = new_bucket(&server, "gcs-s3").await;
    let ep = endpoint(&server);
    let src = weed.new_bucket("to-gcs").await;
    let back = weed.new_bucket("from-gcs").await;
    let key = "net/terraform.tfstate";
    let states = [
        ("default", key.to_string(), support::state("L3", 3, 1)),
        ("dev", format!("env:/dev/{key}"), support::state("L3", 5, 2)),
        ("qa", format!("env:/qa/{key}"), support::state("L3", 8, 3)),
    ];
    for (_, k, bytes) in &states {
        src.put(k, bytes.clone(), PutMode::Create)
            .await
            .expect("seed");
    }
    let to = format!("gs://{}/stacks/net", g.bucket());
    let out = support::run(
        weed.tfsync(src.bucket(), key)
            .env("TFSYNC_GCS_ENDPOINT", &ep)
            .args(["migrate", "--all-workspaces", "--to", &to]),
    );
    ok(&out);
    for (w, k, bytes) in &states {
        assert_eq!(
            &g.get(&format!("stacks/net/{w}.tfstate"))
                .await
                .expect("in gcs")
                .bytes,
            bytes,
            "{w}"
        );
        assert!(g.head(&format!("stacks/net/{w}.tflock")).await.is_err());
        assert!(src.head(&format!("{k}.tflock")).await.is_err());
    }

    // Back, from a backend "gcs" block, into another bucket on SeaweedFS.
    let dir = backend_dir(g.bucket(), "stacks/net");
    let mut cmd = tfsync(&ep, dir.path());
    for (k, v) in &weed.env {
        cmd.env(k, v);
    }
    let out = support::run(cmd.args([
        "migrate",
        "--all-workspaces",
        "--to",
        &format!("s3://{}", back.bucket()),
        "--to-endpoint",
        &weed.env["AWS_ENDPOINT_URL_S3"],
        "--to-key",
        key,
    ]));
    ok(&out);
    for (w, k, bytes) in &states {
        assert_eq!(
            &back.get(k).await.expect("back in s3").bytes,
            bytes,
            "{w} at {k}"
        );
        assert!(back.head(&format!("{k}.tflock")).await.is_err());
        assert!(g.head(&format!("stacks/net/{w}.tflock")).await.is_err());
    }
}
