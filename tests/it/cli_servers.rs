//! End to end through the binary, on each real server: the state round trip,
//! Terraform compatibility of the lock in both directions, the push rules,
//! workspaces.

use crate::support::env::{Env, KEY};
use crate::support::{Server, run, state};
use tfsync::store::{ObjectStore, PutMode, StoreError};
use tfsync::tfstate::lock::LockInfo;

/// A lock exactly as Terraform 1.11 writes it (its IDs are not v4 UUIDs).
fn terraform_lock(bucket: &str, key: &str) -> (String, Vec<u8>) {
    let id = "59fef1d5-d094-c52e-6aa5-e30279394a88".to_string();
    let body = format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"alice@ci-runner-7","Version":"1.11.0","Created":"2026-01-11T09:55:24.570354123Z","Path":"{bucket}/{key}"}}"#
    );
    (id, body.into_bytes())
}

async fn push_pull_round_trip(server: Server) {
    let env = Env::new(server, "rt").await;
    let st = state("lin-1", 3, 2);
    let r = env.tfsync(&["pull"]);
    assert_eq!(r.code, 5, "pull of a missing state: {r:?}");

    let f = env.file("in.tfstate", &st);
    let r = env.tfsync(&["push", &f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        env.remote(KEY).await.as_deref(),
        Some(st.as_slice()),
        "remote bytes are exactly the file"
    );
    assert_eq!(
        env.remote(&format!("{KEY}.tflock")).await,
        None,
        "push released its lock"
    );

    let r = env.tfsync(&["pull"]);
    assert_eq!(
        (r.code, r.stdout.as_bytes()),
        (0, st.as_slice()),
        "pull to stdout byte-exact"
    );

    let out = env.dir.path().join("pulled.tfstate");
    let r = env.tfsync(&["pull", "-o", &out.to_string_lossy()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read(&out).expect("read"), st);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777,
        0o600
    );

    let r = env.tfsync(&["status", "--output", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("status json");
    assert_eq!(v["state"]["serial"], 3);
    assert_eq!(v["state"]["lineage"], "lin-1");
    assert_eq!(v["state"]["resources"], 2);
    assert_eq!(v["state"]["outputs"], 1);
    assert_eq!(v["state"]["size"], st.len());
    assert_eq!(v["lock"], serde_json::Value::Null);
}

async fn terraform_lock_blocks_tfsync(server: Server) {
    let env = Env::new(server, "tflock").await;
    let (id, body) = terraform_lock(env.bucket(), KEY);
    let lock_key = format!("{KEY}.tflock");
    env.store
        .put(&lock_key, body.clone(), PutMode::Create)
        .await
        .expect("terraform takes the lock");

    let r = env.tfsync(&["lock"]);
    assert_eq!(r.code, 3, "lock held by Terraform: {r:?}");
    for needle in [
        id.as_str(),
        "alice@ci-runner-7",
        "OperationTypeApply",
        "1.11.0",
        "2026-01-11T09:55:24.570354123Z",
    ] {
        assert!(
            r.stderr.contains(needle),
            "holder detail {needle:?} missing: {r:?}"
        );
    }
    let f = env.file("s.tfstate", &state("l", 1, 1));
    let r = env.tfsync(&["push", &f]);
    assert_eq!(r.code, 3, "push under Terraform's lock: {r:?}");
    assert_eq!(env.remote(KEY).await, None, "nothing written");

    let r = env.tfsync(&["status"]);
    assert!(
        r.stdout.contains(&id) && r.stdout.contains("LOCKED"),
        "{r:?}"
    );

    for cmd in [
        &["unlock", "0000-wrong"][..],
        &["force-unlock", "--yes", "0000-wrong"],
    ] {
        let r = env.tfsync(cmd);
        assert_eq!(r.code, 3, "{cmd:?} with a wrong ID: {r:?}");
        assert!(r.stderr.contains("does not match"), "{r:?}");
    }
    let r = env.tfsync(&["force-unlock", &id]);
    assert_eq!(r.code, 2, "no terminal and no --yes: {r:?}");
    assert_eq!(
        env.remote(&lock_key).await.as_deref(),
        Some(body.as_slice()),
        "lock untouched"
    );

    let r = env.tfsync(&["force-unlock", "--yes", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("alice@ci-runner-7"),
        "shows the holder: {r:?}"
    );
    assert_eq!(env.remote(&lock_key).await, None, "released");
    let r = env.tfsync(&["unlock", &id]);
    assert_eq!(r.code, 5, "nothing left to unlock: {r:?}");
}

async fn tfsync_lock_blocks_terraform(server: Server) {
    let env = Env::new(server, "tfslock").await;
    let r = env.tfsync(&["lock", "--operation", "maintenance", "--info", "moving VPC"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let lock_key = format!("{KEY}.tflock");

    // What Terraform does to take the lock: a create-only PUT. It must fail.
    let (_, tf_body) = terraform_lock(env.bucket(), KEY);
    match env.store.put(&lock_key, tf_body, PutMode::Create).await {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!("Terraform's conditional PUT must be refused, got {other:?}"),
    }
    // And what Terraform then reads and prints must parse as its LockInfo.
    let raw = env.remote(&lock_key).await.expect("lock object");
    let text = String::from_utf8(raw.clone()).expect("utf8");
    assert!(
        text.starts_with(&format!(
            r#"{{"ID":"{id}","Operation":"maintenance","Info":"moving VPC","Who":""#
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(r#","Path":"{}/{KEY}"}}"#, env.bucket())),
        "{text}"
    );
    let info = LockInfo::from_json(&raw).expect("parse");
    assert_eq!(info.id, id);

    let r = env.tfsync(&["lock", "--output", "json"]);
    assert_eq!(r.code, 3, "second lock refused: {r:?}");
    assert!(r.stderr.contains(&id), "{r:?}");

    let r = env.tfsync(&["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.remote(&lock_key).await, None);
}

async fn push_rules(server: Server) {
    let env = Env::new(server, "rules").await;
    let push = |name: &str, bytes: &[u8], extra: &[&str]| {
        let f = env.file(name, bytes);
        let mut args = vec!["push"];
        args.extend_from_slice(extra);
        args.push(&f);
        env.tfsync(&args)
    };
    let v5 = state("A", 5, 1);
    assert_eq!(push("v5", &v5, &[]).code, 0);
    for (name, bytes, why) in [
        ("lower", state("A", 4, 1), "lower serial"),
        ("other-lineage", state("B", 6, 1), "other lineage"),
        (
            "same-serial",
            state("A", 5, 3),
            "same serial, other content",
        ),
    ] {
        let r = push(name, &bytes, &[]);
        assert_eq!(r.code, 4, "{why} must be refused: {r:?}");
        assert!(r.stderr.contains("--force"), "says what to do: {r:?}");
        assert_eq!(
            env.remote(KEY).await.as_deref(),
            Some(v5.as_slice()),
            "{why}: remote untouched"
        );
        assert_eq!(
            env.remote(&format!("{KEY}.tflock")).await,
            None,
            "{why}: lock released"
        );
    }
    let r = push("same", &v5, &[]);
    assert_eq!(r.code, 0, "same content is a no-op: {r:?}");
    let lower = state("A", 4, 1);
    let r = push("forced", &lower, &["--force"]);
    assert_eq!(r.code, 0, "--force: {r:?}");
    assert_eq!(env.remote(KEY).await.as_deref(), Some(lower.as_slice()));
    let v6 = state("A", 6, 2);
    assert_eq!(push("v6", &v6, &[]).code, 0);
    assert_eq!(env.remote(KEY).await.as_deref(), Some(v6.as_slice()));

    let r = push(
        "bad",
        b"{\"version\":4,\"serial\":\"7\",\"lineage\":\"A\"}",
        &[],
    );
    assert_eq!(r.code, 1, "invalid input: {r:?}");
    assert!(r.stderr.contains("serial"), "{r:?}");
    assert_eq!(env.remote(KEY).await.as_deref(), Some(v6.as_slice()));

    // Under a lock taken beforehand.
    let id = env.tfsync(&["lock"]).stdout.trim().to_string();
    let v7 = state("A", 7, 2);
    assert_eq!(push("v7-no-id", &v7, &[]).code, 3, "the lock is held");
    let r = push("v7", &v7, &["--lock-id", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        push("v7-wrong", &state("A", 8, 2), &["--lock-id", "nope"]).code,
        3
    );
    assert_eq!(env.remote(KEY).await.as_deref(), Some(v7.as_slice()));
    assert_eq!(env.tfsync(&["unlock", &id]).code, 0);
}

async fn workspaces(server: Server) {
    let env = Env::new(server, "ws").await;
    let st = state("W", 1, 1);
    let f = env.file("w.tfstate", &st);
    let r = env.tfsync(&["--workspace", "dev", "push", &f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        env.remote(&format!("env:/dev/{KEY}")).await.as_deref(),
        Some(st.as_slice())
    );
    assert_eq!(env.remote(KEY).await, None, "default workspace untouched");

    let id = env
        .tfsync(&["--workspace", "dev", "lock"])
        .stdout
        .trim()
        .to_string();
    let lock = env
        .remote(&format!("env:/dev/{KEY}.tflock"))
        .await
        .expect("workspace lock");
    assert!(
        String::from_utf8_lossy(&lock)
            .contains(&format!("\"Path\":\"{}/env:/dev/{KEY}\"", env.bucket()))
    );
    assert_eq!(
        env.tfsync(&["lock"]).code,
        0,
        "default workspace has its own lock"
    );

    let r = run(env
        .server
        .tfsync(env.bucket(), KEY)
        .env("TFSYNC_WORKSPACE", "dev")
        .args(["unlock", &id]));
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.tfsync(&[
        "--workspace",
        "prod",
        "--workspace-key-prefix",
        "workspaces",
        "push",
        &f,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        env.remote(&format!("workspaces/prod/{KEY}"))
            .await
            .is_some()
    );
}

on_each_server!(
    push_pull_round_trip,
    terraform_lock_blocks_tfsync,
    tfsync_lock_blocks_terraform,
    push_rules,
    workspaces,
);
