//! Data safety of the directory store and of local files (issue 9): links,
//! FIFOs and devices, the store's internal lock, size bounds, names that are
//! not UTF-8, terminal escapes in lock fields, temporary files, a missing
//! `--dir`, and what `pull -o` writes to. No server needed: every test runs
//! the binary on a temporary directory, each with a timeout so that a hang
//! is a failure, not a stuck test.

use assert_cmd::cargo::CommandCargoExt;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const KEY: &str = "net.tfstate";

/// A small valid state.
fn state(lineage: &str, serial: u64) -> Vec<u8> {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.0\",\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{}},\n  \"resources\": [{{\"mode\":\"managed\",\"type\":\"null_resource\",\"name\":\"r\",\"provider\":\"provider[\\\"registry.terraform.io/hashicorp/null\\\"]\",\"instances\":[]}}]\n}}\n"
    )
    .into_bytes()
}

/// A lock object as Terraform writes it.
fn lock_json(id: &str, who: &str, operation: &str, info: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ID": id,
        "Operation": operation,
        "Info": info,
        "Who": who,
        "Version": "1.11.0",
        "Created": "2026-01-01T00:00:00.123Z",
        "Path": format!("store/{KEY}"),
    }))
    .expect("json")
}

/// The binary with a clean environment, on the directory store `store`.
fn tfsync(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tfsync").expect("binary");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", store.parent().unwrap_or(store))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TFSYNC_DIR", store)
        .env("TFSYNC_KEY", KEY)
        .stdin(Stdio::null());
    cmd
}

struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} (signal {:?}) after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.signal,
            self.took,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

/// Wait for `child` at most `limit`; a child still running then is killed
/// and the test fails (a hang is a defect).
fn finish(mut child: Child, started: Instant, limit: Duration, what: &str) -> Run {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Run {
                code: status.code(),
                signal: status.signal(),
                stdout: out_reader.join().unwrap_or_default(),
                stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default())
                    .into_owned(),
                took: started.elapsed(),
            };
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (it hangs)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(cmd: &mut Command) -> (Child, Instant) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tfsync");
    (child, Instant::now())
}

/// Run to completion within `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Run {
    let what = format!("{cmd:?}");
    let (child, started) = spawn(cmd);
    finish(child, started, limit, &what)
}

fn run(cmd: &mut Command) -> Run {
    run_within(cmd, Duration::from_secs(30))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// A store directory (created) inside a fresh temporary directory.
fn new_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    fs::create_dir(&store).expect("store");
    (tmp, store)
}

fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).expect("mkdir");
    }
    fs::write(path, bytes).expect("write");
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn temp_files_in(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(".tfsync-") && n != ".tfsync-store.lock")
        .collect()
}

fn set_mtime(path: &Path, ago: Duration) {
    let f = fs::File::options().write(true).open(path).expect("open");
    f.set_modified(SystemTime::now() - ago).expect("mtime");
}

// ---------------------------------------------------------------- item 2

/// A linked directory inside the store: `push` must not write through it.
#[test]
fn push_does_not_follow_a_linked_directory() {
    let (tmp, store) = new_store();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("outside");
    std::os::unix::fs::symlink(&outside, store.join("prod")).expect("symlink");
    let f = tmp.path().join("s.tfstate");
    write_file(&f, &state("l", 1));
    let r = run(tfsync(&store)
        .env("TFSYNC_KEY", "prod/net.tfstate")
        .arg("push")
        .arg(&f));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "{r:?}");
    assert!(
        names_in(&outside).is_empty(),
        "wrote outside the store: {:?}",
        names_in(&outside)
    );
}

/// A linked file inside the store: `pull` and `status` must not read it.
#[test]
fn pull_does_not_follow_a_linked_file() {
    let (tmp, store) = new_store();
    let secret = tmp.path().join("secret.tfstate");
    write_file(&secret, &state("outside", 7));
    std::os::unix::fs::symlink(&secret, store.join(KEY)).expect("symlink");
    for cmd in ["pull", "status"] {
        let r = run(tfsync(&store).arg(cmd));
        assert_eq!(r.code, Some(1), "{cmd}: {r:?}");
        assert!(r.stderr.contains("symbolic link"), "{cmd}: {r:?}");
        assert!(!r.out().contains("outside"), "{cmd} read outside: {r:?}");
    }
}

/// A lock under a linked directory is not silently missed: `locks`,
/// `force-unlock --all` and `backup` fail naming the link.
#[test]
fn a_link_inside_the_store_is_reported_not_followed() {
    let (tmp, store) = new_store();
    let outside = tmp.path().join("outside");
    write_file(
        &outside.join("net.tfstate.tflock"),
        &lock_json(
            "7d4c3e4e-0000-4000-8000-000000000001",
            "eve@x",
            "OperationTypeApply",
            "",
        ),
    );
    write_file(&outside.join("net.tfstate"), &state("outside", 3));
    std::os::unix::fs::symlink(&outside, store.join("prod")).expect("symlink");
    write_file(&store.join("ok/net.tfstate"), &state("inside", 1));

    let r = run(tfsync(&store).arg("locks"));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("store/prod") && r.stderr.contains("symbolic link"),
        "{r:?}"
    );
    let r = run(tfsync(&store).args(["force-unlock", "--all", "--older-than", "0s", "--yes"]));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "{r:?}");
    assert!(
        outside.join("net.tfstate.tflock").exists(),
        "lock broken through the link"
    );
    // A prefix that cannot reach the link lists normally.
    let r = run(tfsync(&store).args(["locks", "--prefix", "ok/"]));
    assert_eq!(r.code, Some(0), "{r:?}");

    let dst = tmp.path().join("dst");
    let r = run(tfsync(&store)
        .arg("backup")
        .arg("--to")
        .arg(format!("file://{}", dst.display())));
    assert_ne!(r.code, Some(0), "{r:?}");
    let copied = walk(&dst)
        .iter()
        .any(|p| fs::read(p).is_ok_and(|b| String::from_utf8_lossy(&b).contains("outside")));
    assert!(!copied, "backup copied a file from outside the store");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// --------------------------------------------------------------- item 10

fn hold_store_lock(store: &Path) -> fs::File {
    let f = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store.join(".tfsync-store.lock"))
        .expect("open store lock");
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; released when it is closed.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

/// Pushes an update under a held store lock: a first push creates the
/// state (create-only needs no store lock), the second replaces it.
fn store_with_state(tmp: &Path, store: &Path) -> PathBuf {
    let f1 = tmp.join("s1.tfstate");
    write_file(&f1, &state("l", 1));
    let r = run(tfsync(store).arg("push").arg(&f1));
    assert_eq!(r.code, Some(0), "{r:?}");
    let f2 = tmp.join("s2.tfstate");
    write_file(&f2, &state("l", 2));
    f2
}

#[test]
fn the_store_lock_is_private() {
    let (tmp, store) = new_store();
    let f2 = store_with_state(tmp.path(), &store);
    let mut cmd = tfsync(&store);
    // A permissive umask: the lock file must still be 0600.
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::umask(0o002);
            Ok(())
        });
    }
    let r = run(cmd.arg("push").arg(&f2));
    assert_eq!(r.code, Some(0), "{r:?}");
    let mode = fs::metadata(store.join(".tfsync-store.lock"))
        .expect("lock file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn a_held_store_lock_times_out_with_a_clear_message() {
    let (tmp, store) = new_store();
    let f2 = store_with_state(tmp.path(), &store);
    let _held = hold_store_lock(&store);
    let r = run_within(
        tfsync(&store)
            .args(["push", "--lock-timeout", "1s"])
            .arg(&f2),
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains(".tfsync-store.lock") && r.stderr.contains("held by another process"),
        "{r:?}"
    );
    assert!(r.took < Duration::from_secs(12), "took {:?}", r.took);
    assert_eq!(
        fs::read(store.join(KEY)).expect("state"),
        state("l", 1),
        "the state changed"
    );
    assert!(temp_files_in(&store).is_empty(), "{:?}", names_in(&store));
}

#[test]
fn sigterm_ends_a_wait_for_the_store_lock() {
    let (tmp, store) = new_store();
    let f2 = store_with_state(tmp.path(), &store);
    let _held = hold_store_lock(&store);
    let (child, started) = spawn(
        tfsync(&store)
            .args(["push", "--lock-timeout", "1h"])
            .arg(&f2),
    );
    // The push has its state lock and waits for the store lock.
    let lock = store.join(format!("{KEY}.tflock"));
    while !lock.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    signal(&child, libc::SIGTERM);
    let r = finish(
        child,
        started,
        Duration::from_secs(30),
        "push under SIGTERM",
    );
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?} after SIGTERM",
        sent.elapsed()
    );
    assert_eq!(r.code, Some(130), "{r:?}");
    assert!(
        temp_files_in(&store).is_empty(),
        "temp left: {:?}",
        names_in(&store)
    );
    assert_eq!(fs::read(store.join(KEY)).expect("state"), state("l", 1));
}

/// A command without a signal handler of its own (`unlock`) also gives up
/// its wait for the store lock on SIGTERM. A guard, not a regression test:
/// on the old code SIGTERM killed it (default action); once a wait catches
/// signals to stay responsive, they must still end it.
#[test]
fn sigterm_ends_an_unlock_waiting_for_the_store_lock() {
    let (_tmp, store) = new_store();
    let r = run(tfsync(&store).arg("lock"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let id = r.out().trim().to_string();
    let _held = hold_store_lock(&store);
    let (child, started) = spawn(tfsync(&store).args(["unlock", &id]));
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    signal(&child, libc::SIGTERM);
    let r = finish(
        child,
        started,
        Duration::from_secs(30),
        "unlock under SIGTERM",
    );
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?} after SIGTERM",
        sent.elapsed()
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        store.join(format!("{KEY}.tflock")).exists(),
        "released without the store lock"
    );
}

// --------------------------------------------------------------- item 11

#[test]
fn a_fifo_at_a_lock_or_state_key_is_refused_at_once() {
    let (_tmp, store) = new_store();
    mkfifo(&store.join(format!("{KEY}.tflock")));
    let r = run_within(tfsync(&store).arg("lock"), Duration::from_secs(15));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("FIFO"), "{r:?}");
    let r = run_within(tfsync(&store).arg("status"), Duration::from_secs(15));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("FIFO"), "{r:?}");

    let (_tmp, store) = new_store();
    mkfifo(&store.join(KEY));
    for cmd in ["pull", "status"] {
        let r = run_within(tfsync(&store).arg(cmd), Duration::from_secs(15));
        assert_eq!(r.code, Some(1), "{cmd}: {r:?}");
        assert!(r.stderr.contains("FIFO"), "{cmd}: {r:?}");
    }
    // Still a FIFO: nothing replaced it.
    assert!(
        fs::symlink_metadata(store.join(KEY))
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
}

// --------------------------------------------------------------- item 12

#[test]
fn push_of_an_endless_input_is_bounded() {
    let (_tmp, store) = new_store();
    let r = run_within(
        tfsync(&store)
            .env("TFSYNC_MAX_STATE_SIZE", "1MiB")
            .args(["push", "/dev/zero"]),
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("--max-state-size"), "{r:?}");
}

#[test]
fn push_of_a_file_over_the_bound_is_refused_before_reading() {
    let (tmp, store) = new_store();
    // Sparse: 512 MiB + 1 byte on no disk space; refused by its size.
    let big = tmp.path().join("big.tfstate");
    fs::File::create(&big)
        .and_then(|f| f.set_len(512 * 1024 * 1024 + 1))
        .expect("sparse file");
    let r = run(tfsync(&store).arg("push").arg(&big));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("536870913 bytes") && r.stderr.contains("--max-state-size"),
        "{r:?}"
    );
    // The flag: 1 KiB + 1 is refused, 1 KiB is read (and then judged).
    let small = tmp.path().join("small.tfstate");
    fs::write(&small, vec![b' '; 1025]).expect("write");
    let r = run(tfsync(&store)
        .args(["--max-state-size", "1KiB", "push"])
        .arg(&small));
    assert!(r.stderr.contains("1025 bytes"), "{r:?}");
    fs::write(&small, vec![b' '; 1024]).expect("write");
    let r = run(tfsync(&store)
        .args(["--max-state-size", "1KiB", "push"])
        .arg(&small));
    assert!(!r.stderr.contains("--max-state-size"), "{r:?}");
    let r = run(tfsync(&store)
        .args(["--max-state-size", "lots", "push"])
        .arg(&small));
    assert_eq!(r.code, Some(2), "{r:?}");
}

// --------------------------------------------------------------- item 13

#[test]
fn a_name_that_is_not_utf8_is_skipped_with_a_warning() {
    let (tmp, store) = new_store();
    let bad = store.join(OsStr::from_bytes(b"caf\xe9.tfstate.tflock"));
    fs::write(
        &bad,
        lock_json("11111111-0000-4000-8000-000000000001", "x@y", "op", ""),
    )
    .expect("write");
    write_file(
        &store.join("ok.tfstate.tflock"),
        &lock_json(
            "22222222-0000-4000-8000-000000000002",
            "a@b",
            "OperationTypeApply",
            "",
        ),
    );
    write_file(&store.join("ok.tfstate"), &state("l", 1));
    let r = run(tfsync(&store).arg("locks"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.out().contains("22222222-0000-4000-8000-000000000002"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("caf\\xe9.tfstate.tflock") && r.stderr.contains("not valid UTF-8"),
        "{r:?}"
    );
    let dst = tmp.path().join("dst");
    let r = run(tfsync(&store)
        .arg("backup")
        .arg("--to")
        .arg(format!("file://{}", dst.display())));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("not valid UTF-8"), "{r:?}");
}

// --------------------------------------------------------------- item 14

const EVIL_ID: &str = "9a1b-\x1b]0;pwned\x07";
const EVIL_WHO: &str = "eve\x1b[2K\rroot@prod";
const EVIL_OP: &str = "\u{202e}ylppa\u{9b}";
const EVIL_INFO: &str = "x\nLock:      unlocked";

fn assert_no_raw_controls(what: &str, text: &str) {
    for bad in ['\x1b', '\r', '\x07', '\u{202e}', '\u{9b}'] {
        assert!(!text.contains(bad), "{what} prints {bad:?} raw:\n{text}");
    }
    assert!(
        !text.contains("\nLock:      unlocked"),
        "{what} prints a fake line:\n{text}"
    );
}

#[test]
fn lock_fields_are_escaped_in_text_output() {
    let (_tmp, store) = new_store();
    write_file(&store.join(KEY), &state("l", 1));
    write_file(
        &store.join(format!("{KEY}.tflock")),
        &lock_json(EVIL_ID, EVIL_WHO, EVIL_OP, EVIL_INFO),
    );
    let r = run(tfsync(&store).arg("status"));
    assert_no_raw_controls("status", &r.out());
    assert!(r.out().contains("eve\\x1b[2K\\rroot@prod"), "{r:?}");
    assert!(r.out().contains("\\u{202e}ylppa"), "{r:?}");
    for args in [&["locks"][..], &["list"]] {
        let r = run(tfsync(&store).args(args));
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        assert_no_raw_controls(&format!("{args:?}"), &r.out());
        assert!(r.out().contains("eve\\x1b[2K"), "{args:?}: {r:?}");
    }
    let r = run(tfsync(&store).arg("lock"));
    assert_eq!(r.code, Some(3), "{r:?}");
    assert_no_raw_controls("the holder of a refused lock", &r.stderr);
    assert!(r.stderr.contains("eve\\x1b[2K"), "{r:?}");
    let r = run(tfsync(&store).args(["force-unlock", "--all", "--older-than", "0s"]));
    assert_no_raw_controls("force-unlock --all", &r.stderr);
    // JSON stays exact.
    let r = run(tfsync(&store).args(["--output", "json", "locks"]));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    assert_eq!(v["locks"][0]["lock"]["who"], EVIL_WHO);
    assert_eq!(v["locks"][0]["lock"]["id"], EVIL_ID);
    // The confirmation and the report of force-unlock.
    let r = run(tfsync(&store).args(["force-unlock", "--yes", EVIL_ID]));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_no_raw_controls("force-unlock", &r.stderr);
    assert!(r.stderr.contains("eve\\x1b[2K"), "{r:?}");
}

// --------------------------------------------------------------- item 15

#[test]
fn stale_temporary_files_are_collected_by_the_next_write() {
    let (tmp, store) = new_store();
    write_file(&store.join("prod/.keep-dir"), b"");
    let old = store.join("prod/.tfsync-tmp-0ld0ld");
    let young = store.join("prod/.tfsync-tmp-y0ung1");
    write_file(&old, b"half a state");
    write_file(&young, b"a write in progress");
    set_mtime(&old, Duration::from_secs(2 * 3600));
    let f = tmp.path().join("s.tfstate");
    write_file(&f, &state("l", 1));
    let r = run(tfsync(&store)
        .env("TFSYNC_KEY", "prod/net.tfstate")
        .arg("push")
        .arg(&f));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!old.exists(), "a stale temporary file was left");
    assert!(
        young.exists(),
        "a young temporary file (a write in progress) was removed"
    );

    // Beside a `pull -o` target: ours (this and the older naming), old.
    let out = tmp.path().join("out");
    fs::create_dir(&out).expect("out");
    let legacy = out.join(".tfsync-Ab3dE9");
    let current = out.join(".tfsync-tmp-Zz9yY8");
    for p in [&legacy, &current] {
        write_file(p, b"partial");
        set_mtime(p, Duration::from_secs(2 * 3600));
    }
    let r = run(tfsync(&store)
        .env("TFSYNC_KEY", "prod/net.tfstate")
        .args(["pull", "-o"])
        .arg(out.join("net.tfstate")));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(names_in(&out), vec!["net.tfstate".to_string()]);
}

/// Ctrl-C while `pull -o` waits for the server: no partial file is left.
#[test]
fn ctrl_c_during_pull_to_a_file_leaves_no_temporary_file() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    // Accept and never answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    fs::create_dir(&out).expect("out");
    let mut cmd = Command::cargo_bin("tfsync").expect("binary");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .args(["--bucket", "b", "--key", KEY, "--max-attempts", "1"])
        .arg("--endpoint")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["pull", "-o"])
        .arg(out.join("net.tfstate"))
        .stdin(Stdio::null());
    let (child, started) = spawn(&mut cmd);
    while temp_files_in(&out).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !temp_files_in(&out).is_empty(),
        "no temporary file appeared"
    );
    signal(&child, libc::SIGINT);
    let r = finish(child, started, Duration::from_secs(20), "pull under SIGINT");
    assert!(
        r.code == Some(130) || r.signal == Some(libc::SIGINT),
        "{r:?}"
    );
    assert!(
        names_in(&out).is_empty(),
        "left behind: {:?}",
        names_in(&out)
    );
}

// --------------------------------------------------------------- item 16

#[test]
fn a_missing_dir_is_an_error_not_a_new_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let typo = tmp.path().join("stroe");
    let r = run(tfsync(&typo).arg("lock"));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("does not exist") && r.stderr.contains("mkdir -p"),
        "{r:?}"
    );
    assert!(!typo.exists(), "created the mistyped directory");

    // restore --from and backup verify --from read: they create nothing.
    let (_t2, store) = new_store();
    let missing = tmp.path().join("backups/nightly");
    let from = format!("file://{}", missing.display());
    let r = run(tfsync(&store).args(["restore", "--from", &from]));
    assert_ne!(r.code, Some(0), "{r:?}");
    let r = run(tfsync(&store).args(["backup", "verify", "--from", &from]));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        !tmp.path().join("backups").exists(),
        "a reader created its source"
    );

    // The destination of a backup is created, explicitly.
    write_file(&store.join(KEY), &state("l", 1));
    let dst = tmp.path().join("new/dest");
    let r = run(tfsync(&store)
        .arg("backup")
        .arg("--to")
        .arg(format!("file://{}", dst.display())));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(dst.is_dir());
}

// ---------------------------------------------------------------- item 4

fn store_with_a_state() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let (tmp, store) = new_store();
    let st = state("l", 1);
    write_file(&store.join(KEY), &st);
    (tmp, store, st)
}

#[test]
fn pull_dash_o_dash_is_stdout() {
    let (tmp, store, st) = store_with_a_state();
    let r = run(tfsync(&store)
        .current_dir(tmp.path())
        .args(["pull", "-o", "-"]));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, st);
    assert!(!tmp.path().join("-").exists(), "created a file named '-'");
}

#[test]
fn pull_into_a_fifo_writes_through_it() {
    let (tmp, store, st) = store_with_a_state();
    let fifo = tmp.path().join("pipe");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).expect("read fifo"))
    };
    let r = run_within(
        tfsync(&store).args(["pull", "-o"]).arg(&fifo),
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        fs::symlink_metadata(&fifo)
            .expect("fifo")
            .file_type()
            .is_fifo(),
        "the FIFO was replaced"
    );
    assert_eq!(reader.join().expect("reader"), st);
}

#[test]
fn pull_into_a_device_writes_through_it() {
    let (tmp, store, _) = store_with_a_state();
    let null = tmp.path().join("null");
    let c = std::ffi::CString::new(null.as_os_str().as_bytes()).expect("path");
    // SAFETY: mknod with a valid path: the null device (1, 3), as /dev/null.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if rc != 0 {
        // Not root: a FIFO covers writing through (test above).
        eprintln!("skipped: mknod needs root");
        return;
    }
    let r = run(tfsync(&store).args(["pull", "-o"]).arg(&null));
    assert_eq!(r.code, Some(0), "{r:?}");
    let ft = fs::symlink_metadata(&null).expect("dev").file_type();
    assert!(ft.is_char_device(), "the device was replaced by a file");
    assert!(temp_files_in(tmp.path()).is_empty());
}

#[test]
fn pull_refuses_to_replace_or_follow_a_link() {
    let (tmp, store, _) = store_with_a_state();
    let target = tmp.path().join("real.json");
    fs::write(&target, b"keep me").expect("write");
    let link = tmp.path().join("state.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let r = run(tfsync(&store).args(["pull", "-o"]).arg(&link));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("symbolic link") && r.stderr.contains("-o -"),
        "{r:?}"
    );
    assert!(
        fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&target).expect("target"), b"keep me");
}

#[test]
fn pull_replaces_a_regular_file_atomically_and_privately() {
    let (tmp, store, st) = store_with_a_state();
    let out = tmp.path().join("out.tfstate");
    fs::write(&out, b"old").expect("write");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).expect("chmod");
    let r = run(tfsync(&store).args(["pull", "-o"]).arg(&out));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fs::read(&out).expect("out"), st);
    assert_eq!(
        fs::metadata(&out).expect("meta").permissions().mode() & 0o777,
        0o600
    );
}

// ---------------------------------------------------------------- item 1

/// No `.tflock` anywhere under `dir`.
fn no_lock_files(dir: &Path) {
    let locks: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tflock"))
        .collect();
    assert!(locks.is_empty(), "locks left: {locks:?}");
}

/// `migrate --delete-source` onto a hard link of the source state (or a
/// symbolic link to it): refused before anything is written or deleted.
#[test]
fn migrate_delete_source_onto_the_source_itself_is_refused() {
    let (tmp, store) = new_store();
    let bytes = state("lin", 3);
    write_file(&store.join(KEY), &bytes);

    let hard = tmp.path().join("hard");
    fs::create_dir(&hard).expect("mkdir");
    fs::hard_link(store.join(KEY), hard.join(KEY)).expect("link");
    let r = run(tfsync(&store).args([
        "migrate",
        "--delete-source",
        "--to",
        &format!("file://{}", hard.display()),
    ]));
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("same file")
            && r.stderr.contains("device and inode")
            && r.stderr.contains("Nothing was changed"),
        "{r:?}"
    );
    assert_eq!(fs::read(store.join(KEY)).expect("source"), bytes);
    assert_eq!(names_in(&hard), [KEY], "nothing written at the destination");
    assert_eq!(names_in(&store), [KEY], "no lock taken, nothing written");

    // A symbolic link to the source state: refused (the store follows no
    // link), the source still there.
    let soft = tmp.path().join("soft");
    fs::create_dir(&soft).expect("mkdir");
    std::os::unix::fs::symlink(store.join(KEY), soft.join(KEY)).expect("symlink");
    let r = run(tfsync(&store).args([
        "migrate",
        "--delete-source",
        "--to",
        &format!("file://{}", soft.display()),
    ]));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("link"), "{r:?}");
    assert_eq!(fs::read(store.join(KEY)).expect("source"), bytes);
    no_lock_files(tmp.path());
}

// --------------------------------------------------------------- item 18

/// `migrate` into the directory the state is in, named another way
/// (`file:///S/`, a link to it): refused before any lock is taken, naming
/// no lock as the holder (it used to report our own, already released
/// source lock as held by someone else, exit 3).
#[test]
fn migrate_into_the_same_directory_is_refused_naming_no_lock() {
    let (tmp, store) = new_store();
    let bytes = state("lin", 3);
    write_file(&store.join(KEY), &bytes);
    let linked = tmp.path().join("linked");
    std::os::unix::fs::symlink(&store, &linked).expect("symlink");
    let cases = [
        (format!("file://{}/", store.display()), "default"),
        (format!("file://{}", linked.display()), "default"),
        // A workspace without a state: still the same directory.
        (format!("file://{}/", store.display()), "qa"),
    ];
    for (to, workspace) in cases {
        for extra in [&[][..], &["--delete-source"][..]] {
            let r = run(tfsync(&store)
                .args(["--workspace", workspace, "migrate", "--to", &to])
                .args(extra));
            assert_eq!(r.code, Some(2), "{to} {workspace} {extra:?}: {r:?}");
            assert!(
                r.stderr.contains("same key of the same directory")
                    && !r.stderr.contains("held by")
                    && !r.stderr.contains("force-unlock"),
                "{to} {workspace}: {r:?}"
            );
            assert_eq!(fs::read(store.join(KEY)).expect("state"), bytes);
            assert_eq!(names_in(&store), [KEY], "{to}: nothing written, no lock");
        }
    }
}
