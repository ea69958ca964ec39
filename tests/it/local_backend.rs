//! Terraform's local backend: a working directory with no backend block (or
//! a `backend "local"` block), its states written in place, its workspaces
//! under `terraform.tfstate.d/`, and its lock taken as Terraform takes it:
//! an `fcntl` lock on the state file plus `.terraform.tfstate.lock.info`.
//!
//! "Terraform" here is a python3 child that does what
//! `statemgr.Filesystem.Lock` does: open the state `O_RDWR|O_CREAT`, take a
//! whole-file `F_SETLK` write lock (`fcntl.lockf`), write the lock info.

use crate::support::{run, state};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tfsync::store::ObjectStore;

/// A Terraform lock as `statemgr.LockInfo` marshals it.
const TF_LOCK_ID: &str = "6f1d3c39-3a61-c3be-64b2-8a2c1c0e1f7d";

fn tf_lock_info(path: &str) -> String {
    format!(
        r#"{{"ID":"{TF_LOCK_ID}","Operation":"OperationTypeApply","Info":"","Who":"alice@build-7","Version":"1.11.0","Created":"2026-11-30T09:55:24.570354Z","Path":"{path}"}}"#
    )
}

/// The Terraform lock: hold (`hold`) until stdin closes, printing `locked
/// <pid>`; or `try`: exit 0 if the lock can be taken now, 3 if not.
const PY: &str = r#"
import fcntl, os, sys
mode, state = sys.argv[1], sys.argv[2]
fd = os.open(state, os.O_RDWR | os.O_CREAT, 0o666)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(3)
if mode == "try":
    sys.exit(0)
with open(sys.argv[3], "w") as f:
    f.write(sys.argv[4])
print("locked", os.getpid(), flush=True)
sys.stdin.read()
"#;

/// Terraform holding the lock of `state` (relative to `dir`), with its
/// lock info beside it; released when the child is dropped (killed).
struct Terraform {
    child: Child,
    pid: u32,
}

impl Terraform {
    fn lock(dir: &Path, state: &str) -> Terraform {
        let (parent, name) = state.rsplit_once('/').unwrap_or(("", state));
        let info = if parent.is_empty() {
            format!(".{name}.lock.info")
        } else {
            format!("{parent}/.{name}.lock.info")
        };
        let mut child = Command::new("python3")
            .current_dir(dir)
            .args(["-c", PY, "hold", state, &info, &tf_lock_info(state)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (the Terraform stand-in) runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert!(line.starts_with("locked "), "the holder: {line:?}");
        let pid = child.id();
        Terraform { child, pid }
    }
}

impl Drop for Terraform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Can Terraform take the lock of `state` right now?
fn terraform_can_lock(dir: &Path, state: &str) -> bool {
    let out = Command::new("python3")
        .current_dir(dir)
        .args(["-c", PY, "try", state])
        .output()
        .expect("python3 runs");
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        other => panic!(
            "python3: {other:?} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The binary in `dir`, in a clean environment (no bucket anywhere).
fn tfsync(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfsync"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(dir);
    cmd
}

/// A working directory with a configuration that names no backend.
fn workdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("main.tf"),
        "terraform {\n  required_version = \">= 1.5\"\n}\nresource \"null_resource\" \"a\" {}\n",
    )
    .expect("main.tf");
    d
}

fn json(r: &crate::support::Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

#[test]
fn a_directory_without_a_backend_block_is_the_local_backend() {
    let d = workdir();
    let dir = d.path();
    let v1 = state("local-lineage", 3, 2);
    std::fs::write(dir.join("terraform.tfstate"), &v1).expect("seed");
    let ino = std::fs::metadata(dir.join("terraform.tfstate"))
        .expect("stat")
        .ino();

    let r = run(tfsync(dir).args(["--output", "json", "status"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(v["state"]["serial"], 3, "{v}");
    assert!(v["lock"].is_null(), "{v}");
    assert_eq!(v["key"], "terraform.tfstate", "{v}");

    let r = run(tfsync(dir).args(["pull"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.as_bytes(), &v1[..], "pull is byte for byte");

    let r = run(tfsync(dir).args(["config"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("backend") && r.stdout.contains("no backend block"),
        "{r:?}"
    );

    // Push: in place (the same inode, as Terraform writes it under its
    // fcntl lock), the old state kept in terraform.tfstate.backup, and no
    // lock left behind.
    let v2 = state("local-lineage", 4, 3);
    std::fs::write(dir.join("next.json"), &v2).expect("next");
    let r = run(tfsync(dir).args(["push", "next.json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let now = std::fs::read(dir.join("terraform.tfstate")).expect("read");
    assert_eq!(now, v2);
    assert_eq!(
        std::fs::metadata(dir.join("terraform.tfstate"))
            .expect("stat")
            .ino(),
        ino,
        "written in place, not replaced"
    );
    assert_eq!(
        std::fs::read(dir.join("terraform.tfstate.backup")).expect("backup"),
        v1
    );
    assert!(!dir.join(".terraform.tfstate.lock.info").exists());
    assert!(terraform_can_lock(dir, "terraform.tfstate"), "released");

    // A lower serial is refused as everywhere (exit 4), nothing written.
    let r = run(tfsync(dir).args(["push", "next.json"]));
    assert_eq!(r.code, 0, "same bytes again: nothing to do ({r:?})");
    std::fs::write(dir.join("old.json"), state("local-lineage", 2, 1)).expect("old");
    let r = run(tfsync(dir).args(["push", "old.json"]));
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(std::fs::read(dir.join("terraform.tfstate")).expect("r"), v2);

    // `tfsync lock` cannot keep an OS lock after it exits: refused.
    let r = run(tfsync(dir).args(["lock"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("OS lock"), "{r:?}");
}

#[test]
fn a_backend_local_block_names_the_path_and_the_workspaces() {
    let d = tempfile::tempdir().expect("tmp");
    let dir = d.path();
    std::fs::write(
        dir.join("backend.tf"),
        "terraform {\n  backend \"local\" {\n    path          = \"states/main.tfstate\"\n    workspace_dir = \"ws\"\n  }\n}\n",
    )
    .expect("tf");
    std::fs::create_dir_all(dir.join("states")).expect("mkdir");
    std::fs::write(dir.join("states/main.tfstate"), state("l", 1, 1)).expect("default");
    for w in ["prod", "dev"] {
        std::fs::create_dir_all(dir.join("ws").join(w)).expect("mkdir");
        std::fs::write(
            dir.join("ws").join(w).join("terraform.tfstate"),
            state(&format!("l-{w}"), 2, 1),
        )
        .expect("ws");
    }
    // Debris that is no workspace state, and a lock info file.
    std::fs::write(dir.join("ws/dev/notes.txt"), "x").expect("debris");
    std::fs::write(
        dir.join("ws/dev/.terraform.tfstate.lock.info"),
        tf_lock_info("ws/dev/terraform.tfstate"),
    )
    .expect("stale info");

    let r = run(tfsync(dir).args(["--output", "json", "list"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    let names: Vec<&str> = v["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["default", "dev", "prod"], "{v}");
    // The info file without an OS lock is debris of a dead run: unlocked.
    assert!(
        v["workspaces"]
            .as_array()
            .expect("ws")
            .iter()
            .all(|w| w["locked"] == false),
        "{v}"
    );

    let r = run(tfsync(dir).args(["-w", "dev", "pull"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.as_bytes(), &state("l-dev", 2, 1)[..]);

    std::fs::write(dir.join("new.json"), state("l-new", 1, 1)).expect("new");
    let r = run(tfsync(dir).args(["-w", "new", "push", "new.json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(dir.join("ws/new/terraform.tfstate")).expect("new ws"),
        state("l-new", 1, 1)
    );

    // The dead run's info file is no lock: nothing to force-unlock (exit 5),
    // and the next lock of that state replaces it, its unlock removes it.
    let r = run(tfsync(dir).args(["-w", "dev", "force-unlock", "--yes", TF_LOCK_ID]));
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("not locked"), "{r:?}");
    std::fs::write(dir.join("dev.json"), state("l-dev", 3, 1)).expect("dev");
    let r = run(tfsync(dir).args(["-w", "dev", "push", "dev.json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!dir.join("ws/dev/.terraform.tfstate.lock.info").exists());

    let r = run(tfsync(dir).args(["config"]));
    for needle in ["states/main.tfstate", "workspace_dir", "backend \"local\""] {
        assert!(r.stdout.contains(needle), "{needle}: {r:?}");
    }
}

#[test]
fn a_terraform_lock_blocks_tfsync_and_is_shown_with_its_holder() {
    let d = workdir();
    let dir = d.path();
    let v1 = state("tf-held", 5, 1);
    std::fs::write(dir.join("terraform.tfstate"), &v1).expect("seed");
    std::fs::write(dir.join("next.json"), state("tf-held", 6, 1)).expect("next");
    let tf = Terraform::lock(dir, "terraform.tfstate");

    let r = run(tfsync(dir).args(["push", "next.json"]));
    assert_eq!(r.code, 3, "{r:?}");
    for needle in [TF_LOCK_ID, "alice@build-7", "OperationTypeApply"] {
        assert!(r.stderr.contains(needle), "{needle}: {r:?}");
    }
    assert_eq!(
        std::fs::read(dir.join("terraform.tfstate")).expect("r"),
        v1,
        "nothing written"
    );

    let r = run(tfsync(dir).args(["--output", "json", "status"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(v["lock"]["ID"], TF_LOCK_ID, "{v}");

    // `locks` finds it (the local lock is no object), with its holder.
    let r = run(tfsync(dir).args(["locks"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(TF_LOCK_ID) || r.stdout.contains("alice@build-7"),
        "{r:?}"
    );
    let r = run(tfsync(dir).args(["--output", "json", "locks"]));
    assert!(r.stdout.contains(TF_LOCK_ID), "{r:?}");
    // `force-unlock --all` never breaks it (it cannot): exit 3, kept.
    let r = run(tfsync(dir).args(["force-unlock", "--all", "--older-than", "1s", "--yes"]));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(dir.join(".terraform.tfstate.lock.info").exists());

    // A lock a running process holds cannot be broken: said with its pid.
    let r = run(tfsync(dir).args(["force-unlock", "--yes", TF_LOCK_ID]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(&format!("process {}", tf.pid)), "{r:?}");
    assert!(dir.join(".terraform.tfstate.lock.info").exists());

    // Terraform dies: its info file stays, its OS lock goes. Unlocked.
    drop(tf);
    let r = run(tfsync(dir).args(["--output", "json", "status"]));
    assert!(json(&r)["lock"].is_null(), "{r:?}");
    let r = run(tfsync(dir).args(["push", "next.json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!dir.join(".terraform.tfstate.lock.info").exists());
}

#[test]
fn a_lock_info_file_alone_is_no_lock_but_a_held_lock_without_one_is() {
    let d = workdir();
    let dir = d.path();
    std::fs::write(dir.join("terraform.tfstate"), state("x", 1, 1)).expect("seed");
    // Held, with the info file removed: shown as locked, unreadable.
    let tf = Terraform::lock(dir, "terraform.tfstate");
    std::fs::remove_file(dir.join(".terraform.tfstate.lock.info")).expect("rm");
    let r = run(tfsync(dir).args(["--output", "json", "status"]));
    let v = json(&r);
    assert!(
        v["lock"]["unreadable"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("process {}", tf.pid))),
        "{v}"
    );
    drop(tf);
}

/// tfsync's lock excludes Terraform: while tfsync holds it, Terraform's
/// `F_SETLK` fails, and the lock info says who (Terraform's format).
#[tokio::test]
async fn a_tfsync_lock_blocks_terraform() {
    use tfsync::store::fs::FsStore;
    use tfsync::store::local::{LocalLayout, LocalStore};
    use tfsync::tfstate::guard::{LockSpec, under_lock};
    let d = workdir();
    let dir = d.path().to_path_buf();
    let store = LocalStore::new(
        FsStore::open(&dir).expect("fs"),
        LocalLayout {
            path: "terraform.tfstate".into(),
            workspace_dir: "terraform.tfstate.d".into(),
        },
    );
    let key = "terraform.tfstate.d/dev/terraform.tfstate";
    let seen = under_lock(
        LockSpec::new(&store, key, "OperationTypeApply"),
        std::time::Duration::ZERO,
        &|_| {},
        async {
            let info = std::fs::read_to_string(
                dir.join("terraform.tfstate.d/dev/.terraform.tfstate.lock.info"),
            )
            .expect("lock info written");
            Ok((terraform_can_lock(&dir, key), info))
        },
    )
    .await
    .expect("locked");
    assert!(
        !seen.0,
        "Terraform's F_SETLK must fail while tfsync holds it"
    );
    let info: serde_json::Value = serde_json::from_str(&seen.1).expect("json");
    assert_eq!(info["Path"], key, "{info}");
    assert_eq!(info["Operation"], "OperationTypeApply");
    // Released: Terraform gets it; the file the lock created is gone again.
    assert!(terraform_can_lock(&dir, "terraform.tfstate"));
    assert!(
        !dir.join("terraform.tfstate.d/dev/terraform.tfstate")
            .exists()
    );
    assert!(
        !dir.join("terraform.tfstate.d/dev/.terraform.tfstate.lock.info")
            .exists()
    );
}

#[tokio::test]
async fn listing_sees_the_layout_only() {
    use tfsync::store::fs::FsStore;
    use tfsync::store::local::{LocalLayout, LocalStore};
    let d = workdir();
    let dir = d.path();
    for (p, body) in [
        ("terraform.tfstate", &b"{}"[..]),
        ("terraform.tfstate.backup", b"{}"),
        ("terraform.tfstate.d/a/terraform.tfstate", b"{}"),
        ("terraform.tfstate.d/b/terraform.tfstate", b""),
        ("terraform.tfstate.d/c/other.tfstate", b"{}"),
        (".terraform/providers/big", b"binary"),
    ] {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
    let store = LocalStore::new(
        FsStore::open(dir).expect("fs"),
        LocalLayout {
            path: "terraform.tfstate".into(),
            workspace_dir: "terraform.tfstate.d".into(),
        },
    );
    let keys: Vec<String> = store
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        keys,
        [
            "terraform.tfstate",
            "terraform.tfstate.d/a/terraform.tfstate"
        ]
    );
    assert!(
        store
            .get("terraform.tfstate.d/b/terraform.tfstate")
            .await
            .is_err_and(|e| e.is_not_found()),
        "an empty file is no state"
    );
}

fn setting(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
        .min(d)
}

/// Processes racing on one local state: each pulls, adds one to the
/// serial and pushes (under the lock push takes), while readers pull. Every
/// push that succeeds had the serial one above the state it replaced (a
/// push that lost the race is refused, exit 4): the successful serials are
/// exactly 4..4+n, none twice, the final serial is the last, and no reader
/// ever sees a partial state.
#[test]
fn racing_processes_on_a_local_state() {
    let procs = setting("TFSYNC_RACE_PROCS", 8);
    let cycles = setting("TFSYNC_RACE_CYCLES", 5);
    let d = workdir();
    let dir = d.path().to_path_buf();
    std::fs::write(dir.join("terraform.tfstate"), state("race", 3, 1)).expect("seed");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (dir, done) = (dir.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let r = run(tfsync(&dir).args(["pull"]));
                assert_eq!(r.code, 0, "reader: {r:?}");
                let v: serde_json::Value =
                    serde_json::from_str(&r.stdout).expect("a reader sees a whole state");
                assert_eq!(v["lineage"], "race");
                reads += 1;
            }
            reads
        })
    };
    let workers: Vec<_> = (0..procs)
        .map(|w| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut won = Vec::new();
                for c in 0..cycles {
                    let file = format!("w{w}.json");
                    let r = run(tfsync(&dir).args(["pull", "-o", &file]));
                    assert_eq!(r.code, 0, "pull: {r:?}");
                    let mut v: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(dir.join(&file)).expect("r"))
                            .expect("json");
                    let serial = v["serial"].as_u64().expect("serial") + 1;
                    v["serial"] = serde_json::json!(serial);
                    v["outputs"]["by"] =
                        serde_json::json!({"value": format!("w{w} c{c}"), "type": "string"});
                    std::fs::write(dir.join(&file), serde_json::to_vec_pretty(&v).expect("ser"))
                        .expect("w");
                    let r = run(tfsync(&dir).args(["push", "--lock-timeout", "60s", &file]));
                    match r.code {
                        0 => won.push(serial),
                        4 => {}
                        _ => panic!("worker {w} cycle {c} push: {r:?}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut won: Vec<u64> = workers
        .into_iter()
        .flat_map(|t| t.join().expect("worker"))
        .collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().expect("reader");
    won.sort();
    let expected: Vec<u64> = (4..4 + won.len() as u64).collect();
    assert_eq!(
        won, expected,
        "each successful push one serial above the last"
    );
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("terraform.tfstate")).expect("r"))
            .expect("final");
    assert_eq!(last["serial"], 3 + won.len() as u64);
    assert!(!won.is_empty() && reads > 0);
    assert!(!dir.join(".terraform.tfstate.lock.info").exists());
    eprintln!(
        "local race: {procs} x {cycles}: {} pushes won, {reads} reads",
        won.len()
    );
}

#[test]
fn an_openmcf_manifest_of_type_local_drives_status() {
    let d = tempfile::tempdir().expect("tmp");
    let dir = d.path();
    std::fs::write(dir.join("terraform.tfstate"), state("mcf-local", 7, 1)).expect("seed");
    std::fs::write(
        dir.join("manifest.yaml"),
        "apiVersion: aws.openmcf.org/v1\nkind: AwsVpc\nmetadata:\n  name: net\n  labels:\n    terraform.openmcf.org/backend.type: local\n",
    )
    .expect("manifest");
    let r = run(tfsync(dir).args(["-f", "manifest.yaml", "--output", "json", "status"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(v["state"]["serial"], 7, "{v}");
    assert!(
        v["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("file://")),
        "{v}"
    );
    // Another type is refused, naming it.
    std::fs::write(
        dir.join("other.yaml"),
        "metadata:\n  labels:\n    terraform.openmcf.org/backend.type: consul\n",
    )
    .expect("manifest");
    let r = run(tfsync(dir).args(["-f", "other.yaml", "status"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("consul"), "{r:?}");
}

/// `migrate` from a local state to a bucket on SeaweedFS: the bytes, and
/// both locks released (the local OS lock and its info file, the .tflock).
#[tokio::test]
async fn migrate_from_local_to_s3() {
    let Some(server) = crate::support::server("seaweedfs") else {
        return;
    };
    let bucket = server.new_bucket("fromlocal").await;
    let d = workdir();
    let dir = d.path();
    let v1 = state("to-s3", 9, 3);
    std::fs::write(dir.join("terraform.tfstate"), &v1).expect("seed");
    let to = format!("s3://{}/moved", bucket.bucket());
    let cmd = |args: &[&str]| {
        let mut c = tfsync(dir);
        for (k, v) in &server.env {
            c.env(k, v);
        }
        c.args(args);
        run(&mut c)
    };
    let r = cmd(&["migrate", "--to", &to, "--to-endpoint", &server.endpoint()]);
    assert_eq!(r.code, 0, "{r:?}");
    let got = bucket
        .get("moved/terraform.tfstate")
        .await
        .expect("migrated");
    assert_eq!(got.bytes, v1, "byte for byte");
    assert!(
        bucket
            .head("moved/terraform.tfstate.tflock")
            .await
            .is_err_and(|e| e.is_not_found()),
        "the destination's .tflock released"
    );
    assert!(!dir.join(".terraform.tfstate.lock.info").exists());
    assert!(terraform_can_lock(dir, "terraform.tfstate"));
    // The workspaces move too, each from the local layout
    // (`terraform.tfstate.d/W/terraform.tfstate`) to the s3 one
    // (`env:/W/<key>`), under both locks, byte for byte.
    let (dev, qa) = (state("to-s3-dev", 2, 1), state("to-s3-qa", 4, 2));
    for (w, v) in [("dev", &dev), ("qa", &qa)] {
        let d = dir.join("terraform.tfstate.d").join(w);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("terraform.tfstate"), v).expect("ws");
    }
    // Debris the local listing must not take for a workspace.
    std::fs::create_dir_all(dir.join("terraform.tfstate.d/x/y")).expect("mkdir");
    std::fs::write(dir.join("terraform.tfstate.d/x/y/terraform.tfstate"), &dev).expect("x");
    let r = cmd(&[
        "--output",
        "json",
        "migrate",
        "--all-workspaces",
        "--to",
        &to,
        "--to-endpoint",
        &server.endpoint(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let mapping: Vec<(String, String, String)> = v["mapping"]
        .as_array()
        .expect("mapping")
        .iter()
        .map(|m| {
            let f = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (f("workspace"), f("source_key"), f("destination_key"))
        })
        .collect();
    let want = [
        ("default", "terraform.tfstate", "moved/terraform.tfstate"),
        (
            "dev",
            "terraform.tfstate.d/dev/terraform.tfstate",
            "env:/dev/moved/terraform.tfstate",
        ),
        (
            "qa",
            "terraform.tfstate.d/qa/terraform.tfstate",
            "env:/qa/moved/terraform.tfstate",
        ),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(mapping, want, "{v}");
    for (key, bytes) in [
        ("moved/terraform.tfstate", &v1),
        ("env:/dev/moved/terraform.tfstate", &dev),
        ("env:/qa/moved/terraform.tfstate", &qa),
    ] {
        assert_eq!(&bucket.get(key).await.expect(key).bytes, bytes, "{key}");
        assert!(
            bucket
                .head(&format!("{key}.tflock"))
                .await
                .is_err_and(|e| e.is_not_found()),
            "{key}: the destination's .tflock released"
        );
    }
    for w in ["dev", "qa"] {
        let rel = format!("terraform.tfstate.d/{w}/terraform.tfstate");
        assert!(
            !dir.join(format!(
                "terraform.tfstate.d/{w}/.terraform.tfstate.lock.info"
            ))
            .exists(),
            "{w}: the local lock info removed"
        );
        assert!(terraform_can_lock(dir, &rel), "{w}: the OS lock released");
    }
}

/// `backup` of a local working directory takes its states (default and
/// workspaces, nothing else of the directory), and `restore --force` puts
/// one back in place under the local lock.
#[test]
fn backup_and_restore_of_a_local_backend() {
    let d = workdir();
    let dir = d.path();
    let v1 = state("bk-local", 2, 1);
    std::fs::write(dir.join("terraform.tfstate"), &v1).expect("seed");
    std::fs::create_dir_all(dir.join("terraform.tfstate.d/dev")).expect("mkdir");
    std::fs::write(
        dir.join("terraform.tfstate.d/dev/terraform.tfstate"),
        state("bk-dev", 1, 1),
    )
    .expect("dev");
    std::fs::create_dir_all(dir.join(".terraform/providers")).expect("mkdir");
    std::fs::write(dir.join(".terraform/providers/p.tfstate"), b"{}").expect("debris");
    let out = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", out.path().display());
    let r = run(tfsync(dir).args(["--output", "json", "backup", "--to", &to]));
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(
        (v["seen"].as_u64(), v["copied"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    let snap = v["snapshot"].as_str().expect("snapshot id").to_string();
    assert_eq!(
        std::fs::read(
            out.path()
                .join(&snap)
                .join("terraform.tfstate.d/dev/terraform.tfstate")
        )
        .expect("the workspace's state in the snapshot"),
        state("bk-dev", 1, 1)
    );

    let ino = std::fs::metadata(dir.join("terraform.tfstate"))
        .expect("stat")
        .ino();
    std::fs::write(dir.join("newer.json"), state("bk-local", 5, 1)).expect("newer");
    let r = run(tfsync(dir).args(["push", "newer.json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let from = format!("{to}/{snap}");
    let r = run(tfsync(dir).args(["restore", "--force", "--from", &from]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read(dir.join("terraform.tfstate")).expect("r"), v1);
    assert_eq!(
        std::fs::metadata(dir.join("terraform.tfstate"))
            .expect("stat")
            .ino(),
        ino,
        "restored in place"
    );
    assert!(!dir.join(".terraform.tfstate.lock.info").exists());
    assert!(terraform_can_lock(dir, "terraform.tfstate"));
}

/// `migrate --to file://` naming the local backend's own working directory
/// (by another path) is refused before any lock or write: the local store
/// knows its files' identities, so the destination is recognised as the
/// source, and `--delete-source` cannot delete the only copy.
#[test]
fn migrating_a_local_backend_onto_its_own_directory_is_refused() {
    let d = workdir();
    let dir = d.path();
    let v1 = state("self", 3, 1);
    std::fs::write(dir.join("terraform.tfstate"), &v1).expect("seed");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let to = format!("file://{}/sub/..", dir.display());
    let r = run(tfsync(dir).args(["migrate", "--delete-source", "--to", &to]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("onto itself"), "{r:?}");
    assert_eq!(
        std::fs::read(dir.join("terraform.tfstate")).expect("kept"),
        v1
    );
    assert!(!dir.join(".terraform.tfstate.lock.info").exists());
}
