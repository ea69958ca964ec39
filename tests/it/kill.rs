//! The kill test (issue 9): SIGKILL at random moments during `push`,
//! `backup` and `restore` on the directory store. After every run the state
//! is exactly the old bytes or the new ones, a stale lock is a whole lock
//! object, and every manifest's objects are there with the manifest's MD5.
//! At the end, what the killed runs left (temporary files, partial snapshot
//! directories) is collected by the next ordinary runs once older than an
//! hour, as the README promises.
//!
//! `TFSYNC_KILL_RUNS` sets the number of runs (default 100),
//! `TFSYNC_KILL_SEED` the seed of the delays (default fixed: a failure can
//! be replayed).

use md5::{Digest, Md5};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const KEY: &str = "net.tfstate";
const LINEAGE: &str = "kill-lineage";

/// A state of about 256 KiB (a write that takes a moment).
fn state(serial: u64) -> Vec<u8> {
    let pad = format!("{serial:08}").repeat(32 * 1024);
    format!(
        "{{\"version\":4,\"terraform_version\":\"1.11.0\",\"serial\":{serial},\"lineage\":\"{LINEAGE}\",\"outputs\":{{\"pad\":{{\"value\":\"{pad}\",\"type\":\"string\"}}}},\"resources\":[]}}\n"
    )
    .into_bytes()
}

fn serial_of(bytes: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("the state is JSON");
    v["serial"].as_u64().expect("serial")
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

struct World {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    store: PathBuf,
    backups: PathBuf,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().expect("tmp");
        let (home, store, backups) = (
            tmp.path().to_path_buf(),
            tmp.path().join("store"),
            tmp.path().join("backups"),
        );
        fs::create_dir(&store).expect("store");
        World {
            _tmp: tmp,
            home,
            store,
            backups,
        }
    }

    fn tfsync(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfsync"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("TFSYNC_DIR", &self.store)
            .env("TFSYNC_KEY", KEY)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Run to completion; it must succeed. Returns how long it took.
    fn ok(&self, args: &[String]) -> Duration {
        let started = Instant::now();
        let out = self.tfsync(args).output().expect("run tfsync");
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    }

    fn state(&self) -> Vec<u8> {
        fs::read(self.store.join(KEY)).expect("the state is always there")
    }

    fn to(&self) -> String {
        format!("file://{}", self.backups.display())
    }

    /// A lock left by a killed run is a whole lock object; remove it as an
    /// operator would after `force-unlock`.
    fn clear_stale_lock(&self) {
        let lock = self.store.join(format!("{KEY}.tflock"));
        if let Ok(bytes) = fs::read(&lock) {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("a half-written lock: {e}: {bytes:?}"));
            assert!(v["ID"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
            fs::remove_file(&lock).expect("remove the stale lock");
        }
    }

    fn manifests(&self) -> Vec<(String, serde_json::Value)> {
        let dir = self.backups.join("manifests");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if name.starts_with(".tfsync-") {
                continue;
            }
            let bytes = fs::read(e.path()).expect("manifest");
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("a half-written manifest {name}: {e}"));
            out.push((id.to_string(), v));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every manifest's objects exist with its size and MD5.
    fn check_manifests(&self, run: usize) {
        for (id, m) in self.manifests() {
            let states = m["states"].as_array().expect("states");
            assert_eq!(states.len(), 2, "run {run}: snapshot {id}: {m}");
            for e in states {
                let object = self.backups.join(e["object"].as_str().expect("object"));
                let raw = fs::read(&object).unwrap_or_else(|err| {
                    panic!(
                        "run {run}: snapshot {id} without its object {}: {err}",
                        object.display()
                    )
                });
                let bytes = if e["gzip"].as_bool() == Some(true) {
                    gunzip(&raw)
                } else {
                    raw
                };
                assert_eq!(
                    (bytes.len() as u64, md5_hex(&bytes)),
                    (
                        e["size"].as_u64().expect("size"),
                        e["md5"].as_str().expect("md5").to_string()
                    ),
                    "run {run}: snapshot {id}: {}",
                    object.display()
                );
            }
        }
    }

    /// The bytes of KEY in the newest snapshot (what `restore` would write).
    fn newest_snapshot_state(&self) -> Vec<u8> {
        let (_, m) = self.manifests().pop().expect("a snapshot");
        let e = m["states"]
            .as_array()
            .expect("states")
            .iter()
            .find(|e| e["key"] == KEY)
            .expect("the key in the snapshot")
            .clone();
        let raw =
            fs::read(self.backups.join(e["object"].as_str().expect("object"))).expect("object");
        if e["gzip"].as_bool() == Some(true) {
            gunzip(&raw)
        } else {
            raw
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_under(&p)),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
    out
}

fn dirs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            out.extend(dirs_under(&e.path()));
        }
    }
    out
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tfsync-tmp-"))
        })
        .collect()
}

fn age(path: &Path) {
    if let Ok(f) = fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now() - Duration::from_secs(7200));
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Push,
    Backup,
    Restore,
}

#[test]
fn sigkill_during_push_backup_and_restore() {
    let runs: usize = std::env::var("TFSYNC_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("TFSYNC_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7f5_2026);
    let mut rng = StdRng::seed_from_u64(seed);
    let w = World::new();
    let input = w.home.join("input.tfstate");
    let s = |v: &str| v.to_string();

    // Seed the store and the backups; how long each command takes unkilled
    // bounds the random delays.
    fs::write(&input, state(1)).expect("input");
    let push_took = w.ok(&[s("push"), input.display().to_string()]);
    fs::write(&input, state(1)).expect("input");
    w.ok(&[
        s("--workspace"),
        s("w"),
        s("push"),
        input.display().to_string(),
    ]);
    let backup_args = |gzip: bool| {
        let mut a = vec![s("backup"), s("--to"), w.to(), s("--keep"), s("3")];
        if gzip {
            a.push(s("--gzip"));
        }
        a
    };
    let backup_took = w.ok(&backup_args(false));
    let restore_args = vec![s("restore"), s("--force"), s("--from"), w.to()];
    let restore_took = w.ok(&restore_args);
    w.check_manifests(0);

    let mut current = w.state();
    let (mut completed, mut killed) = (0, 0);
    let started = Instant::now();
    for run in 1..=runs {
        let op = match run % 3 {
            0 => Op::Push,
            1 => Op::Backup,
            _ => Op::Restore,
        };
        let (args, new, took) = match op {
            Op::Push => {
                let new = state(serial_of(&current) + 1);
                fs::write(&input, &new).expect("input");
                (
                    vec![s("push"), input.display().to_string()],
                    Some(new),
                    push_took,
                )
            }
            Op::Backup => (backup_args(run % 2 == 0), None, backup_took),
            Op::Restore => (
                restore_args.clone(),
                Some(w.newest_snapshot_state()),
                restore_took,
            ),
        };
        let limit = (took.as_micros() as u64).max(1000) * 13 / 10;
        let delay = Duration::from_micros(rng.random_range(0..limit));
        let mut child = w
            .tfsync(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let status = child.wait().expect("wait");
        if status.code().is_some() {
            completed += 1;
        } else {
            killed += 1;
        }

        w.clear_stale_lock();
        let now = w.state();
        assert!(
            now == current || new.as_ref().is_some_and(|n| *n == now),
            "run {run} ({op:?} killed after {delay:?}): the state is neither the old nor the new bytes (serial {}, {} bytes)",
            serde_json::from_slice::<serde_json::Value>(&now)
                .ok()
                .and_then(|v| v["serial"].as_u64())
                .map_or_else(|| "unreadable".to_string(), |s| s.to_string()),
            now.len()
        );
        current = now;
        w.check_manifests(run);
    }
    eprintln!(
        "kill: {runs} runs in {:?} (seed {seed}): {killed} killed, {completed} finished first",
        started.elapsed()
    );
    assert!(killed > 0, "no run was killed: the delays are too long");

    // What the killed runs left is collected by the next ordinary runs once
    // older than an hour: a push (its directory) and a backup --keep (the
    // backup root).
    for p in files_under(&w.store)
        .into_iter()
        .chain(files_under(&w.backups))
    {
        age(&p);
    }
    let last = state(serial_of(&current) + 1);
    fs::write(&input, &last).expect("input");
    w.ok(&[s("push"), input.display().to_string()]);
    w.ok(&backup_args(false));
    assert_eq!(w.state(), last);
    assert_eq!(temp_files(&w.store), Vec::<PathBuf>::new(), "in the store");
    assert_eq!(
        temp_files(&w.backups),
        Vec::<PathBuf>::new(),
        "in the backups"
    );
    // Every object left is one a kept manifest references (those of killed
    // runs and pruned snapshots are gone; a pruned snapshot's object that a
    // kept incremental snapshot points to stays).
    let referenced: Vec<PathBuf> = w
        .manifests()
        .iter()
        .flat_map(|(_, m)| m["states"].as_array().cloned().unwrap_or_default())
        .map(|e| w.backups.join(e["object"].as_str().unwrap_or_default()))
        .collect();
    for p in files_under(&w.backups) {
        assert!(
            p.starts_with(w.backups.join("manifests")) || referenced.contains(&p),
            "{} was not collected",
            p.display()
        );
    }
    let empty: Vec<PathBuf> = dirs_under(&w.backups)
        .into_iter()
        .filter(|d| fs::read_dir(d).is_ok_and(|mut r| r.next().is_none()))
        .collect();
    assert_eq!(empty, Vec::<PathBuf>::new(), "empty directories left");
    w.check_manifests(runs + 1);
}
