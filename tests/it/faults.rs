//! Faults between tfsync and a real server, injected by `support::proxy`:
//! lost responses, server errors, signals while the lock is held.

use crate::support::proxy::{Fault, Proxy, Rule};
use crate::support::{Server, run, state};
use std::time::Duration;
use tfsync::store::s3::S3Store;
use tfsync::store::{ObjectStore, PutMode, StoreError};

const KEY: &str = "faults/terraform.tfstate";
const LOCK: &str = "faults/terraform.tfstate.tflock";

struct Env {
    server: Server,
    store: S3Store,
    proxy: Proxy,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(server: Server) -> Env {
        let store = server.new_bucket("fault").await;
        let upstream = server.endpoint().trim_start_matches("http://").to_string();
        let proxy = Proxy::start(upstream).await;
        Env {
            server,
            store,
            proxy,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.server.tfsync(self.store.bucket(), KEY);
        c.env("AWS_ENDPOINT_URL_S3", self.proxy.endpoint())
            .args(args);
        c
    }
    fn path(&self, p: &str) -> String {
        format!("/{}/{p}", self.store.bucket())
    }
    fn rule(&self, method: &'static str, key: &str, times: usize, fault: Fault) {
        self.proxy.add(Rule {
            method,
            path_ends: self.path(key),
            times,
            fault,
        });
    }
    fn count(&self, method: &str, key: &str) -> usize {
        let want = self.path(key);
        self.proxy
            .seen()
            .iter()
            .filter(|s| s.method == method && s.path.split('?').next() == Some(want.as_str()))
            .count()
    }
    async fn remote(&self, key: &str) -> Option<Vec<u8>> {
        match self.store.get(key).await {
            Ok(g) => Some(g.bytes),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    }
    fn file(&self, bytes: &[u8]) -> String {
        let p = self.dir.path().join("in.tfstate");
        std::fs::write(&p, bytes).expect("write");
        p.to_string_lossy().into_owned()
    }
}

/// The response to our lock PUT is lost; the SDK's retry meets our own lock.
async fn lost_lock_response_is_our_own_lock(server: Server) {
    let env = Env::new(server).await;
    env.rule("PUT", LOCK, 1, Fault::DropResponse);
    let r = run(&mut env.cmd(&["lock"]));
    assert_eq!(r.code, 0, "our own lock must be recognised: {r:?}");
    assert_eq!(
        env.count("PUT", LOCK),
        2,
        "the scenario happened: a PUT applied, a retry refused"
    );
    let id = r.stdout.trim();
    let held = env.remote(LOCK).await.expect("lock object");
    assert!(
        String::from_utf8_lossy(&held).contains(id),
        "the lock is ours"
    );
    let r = run(&mut env.cmd(&["unlock", id]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.remote(LOCK).await, None, "nothing left locked");
}

/// The response to our state PUT is lost; the retry's If-Match fails because
/// our own write changed the ETag. tfsync must see its own bytes.
async fn lost_state_response_is_recognised(server: Server) {
    let env = Env::new(server).await;
    env.store
        .put(KEY, state("L", 1, 1), PutMode::Create)
        .await
        .expect("seed");
    let new = state("L", 2, 1);
    env.rule("PUT", KEY, 1, Fault::DropResponse);
    let r = run(&mut env.cmd(&["push", &env.file(&new)]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(env.count("PUT", KEY) >= 2, "the state PUT was retried");
    assert_eq!(env.remote(KEY).await.as_deref(), Some(new.as_slice()));
    assert_eq!(env.remote(LOCK).await, None, "lock released");
}

/// 503 SlowDown on every GET: retried up to --max-attempts, then a clear error.
async fn server_errors_are_retried_then_reported(server: Server) {
    let env = Env::new(server).await;
    env.store
        .put(KEY, state("L", 1, 1), PutMode::Create)
        .await
        .expect("seed");
    env.rule("GET", KEY, 100, Fault::Respond(503));
    let r = run(&mut env.cmd(&["--max-attempts", "3", "pull"]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(KEY) && r.stderr.contains("503"), "{r:?}");
    assert_eq!(env.count("GET", KEY), 3, "exactly the configured attempts");

    // A push whose state read fails still releases its lock.
    env.proxy.clear();
    env.rule("GET", KEY, 100, Fault::Respond(500));
    let r = run(&mut env.cmd(&["push", &env.file(&state("L", 2, 1))]));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        env.remote(LOCK).await,
        None,
        "lock released after the error"
    );
    assert_eq!(
        env.remote(KEY).await.as_deref(),
        Some(state("L", 1, 1).as_slice()),
        "state untouched"
    );
}

/// SIGINT / SIGTERM while push holds the lock: the lock is released, the
/// exit code says so, and the state is whole (old or new, never partial).
async fn signals_release_the_lock(server: Server) {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let env = Env::new(server.clone()).await;
        let old = state("L", 1, 1);
        env.store
            .put(KEY, old.clone(), PutMode::Create)
            .await
            .expect("seed");
        let new = state("L", 2, 3);
        env.rule("PUT", KEY, 1, Fault::Delay(Duration::from_secs(3)));
        let child = env
            .cmd(&["push", &env.file(&new)])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Wait until the lock is held and the state write is in flight.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while env.count("PUT", LOCK) == 0 || env.count("GET", KEY) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "push never reached the write"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            env.remote(LOCK).await.is_some(),
            "{name}: the lock is held during the write"
        );
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, sig) };
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}: {stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert_eq!(env.remote(LOCK).await, None, "{name}: lock released");
        tokio::time::sleep(Duration::from_secs(4)).await; // the delayed PUT lands or not
        let now = env.remote(KEY).await.expect("state");
        assert!(now == old || now == new, "{name}: the state is whole");
    }
}

/// A connection reset in the middle of a body: no partial local file, no
/// partial remote state, the lock released.
async fn resets_mid_body_leave_nothing_partial(server: Server) {
    let env = Env::new(server).await;
    let old = state("L", 1, 40);
    env.store
        .put(KEY, old.clone(), PutMode::Create)
        .await
        .expect("seed");

    // Pull: every attempt is cut after 1000 bytes of the response.
    let out = env.dir.path().join("pulled.tfstate");
    std::fs::write(&out, b"previous local copy").expect("write");
    env.rule("GET", KEY, 100, Fault::ResetAfter(1000));
    let r = run(&mut env.cmd(&["pull", "-o", &out.to_string_lossy()]));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        b"previous local copy",
        "local file untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

    // Pull once cut, then retried by the SDK: the whole file arrives.
    env.proxy.clear();
    env.rule("GET", KEY, 1, Fault::ResetAfter(1000));
    let r = run(&mut env.cmd(&["pull", "-o", &out.to_string_lossy()]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read(&out).expect("read"), old);

    // Push: every attempt is cut after 500 bytes of the request body.
    env.proxy.clear();
    let new = state("L", 2, 40);
    env.rule("PUT", KEY, 100, Fault::ResetRequestAfter(500));
    let r = run(&mut env.cmd(&["push", &env.file(&new)]));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        env.remote(KEY).await.as_deref(),
        Some(old.as_slice()),
        "remote state whole and unchanged"
    );
    assert_eq!(env.remote(LOCK).await, None, "lock released");

    // Push cut once: the SDK retries and the state lands whole.
    env.proxy.clear();
    env.rule("PUT", KEY, 1, Fault::ResetRequestAfter(500));
    let r = run(&mut env.cmd(&["push", &env.file(&new)]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.remote(KEY).await.as_deref(), Some(new.as_slice()));
}

/// 503 SlowDown / 500 on each kind of request a command makes: retried, then
/// a clear error with the key and exit code 1; nothing left locked.
async fn every_request_kind_fails_cleanly(server: Server) {
    let env = Env::new(server).await;
    let v1 = state("L", 1, 1);
    env.store
        .put(KEY, v1.clone(), PutMode::Create)
        .await
        .expect("seed");
    let f = env.file(&state("L", 2, 1));
    let cases: [(&'static str, &str, &[&str]); 5] = [
        ("PUT", LOCK, &["push", &f]),
        ("GET", KEY, &["status"]),
        ("PUT", KEY, &["push", &f]),
        ("DELETE", LOCK, &["push", &f]),
        ("PUT", LOCK, &["lock"]),
    ];
    for (code, (method, key, args)) in [503u16, 500, 503, 500, 503].into_iter().zip(cases) {
        env.proxy.clear();
        env.rule(method, key, 100, Fault::Respond(code));
        let mut all = vec!["--max-attempts", "2"];
        all.extend_from_slice(args);
        let r = run(&mut env.cmd(&all));
        assert_eq!(r.code, 1, "{code} on {method} {key} during {args:?}: {r:?}");
        assert!(r.stderr.contains(key), "names the key: {r:?}");
        assert_eq!(env.count(method, key), 2, "retried up to --max-attempts");
        if method == "DELETE" {
            // The release failed: the lock ID is printed so it can be released.
            let held = env.remote(LOCK).await.expect("still locked");
            let info = tfsync::tfstate::lock::LockInfo::from_json(&held).expect("lock");
            assert!(
                r.stderr.contains(&format!("tfsync unlock {}", info.id)),
                "{r:?}"
            );
            env.store.delete(LOCK, None).await.expect("cleanup");
        } else {
            assert_eq!(
                env.remote(LOCK).await,
                None,
                "nothing left locked after {method} {key}"
            );
        }
    }
}

on_each_server!(
    lost_lock_response_is_our_own_lock,
    lost_state_response_is_recognised,
    server_errors_are_retried_then_reported,
    resets_mid_body_leave_nothing_partial,
    every_request_kind_fails_cleanly,
    signals_release_the_lock,
);
