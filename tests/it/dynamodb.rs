//! Terraform's DynamoDB table (`dynamodb_table`), on two independent
//! DynamoDB implementations: moto's (with moto's S3) and dynalite's (with
//! moto's S3 beside it). Locks are written by the tests the way Terraform's
//! client writes them (hashicorp/terraform
//! `internal/backend/remote-state/s3/client.go`): the `.tflock` with
//! `If-None-Match: *`, then PutItem `{LockID: "<bucket>/<key>", Info: <the
//! same JSON>}` with `attribute_not_exists(LockID)`.

use crate::support::env::{Env, KEY};
use crate::support::proxy::{Fault, Proxy, Rule};
use crate::support::{Run, Server, run, state, unique_name};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use tfsync::store::dynamo::{LockTable, LockTableOptions};
use tfsync::store::{ObjectStore, PutMode, md5_hex};

/// A bucket on an S3 server and a new table on a DynamoDB server, and the
/// tfsync binary configured with both.
struct Dyn {
    env: Env,
    table: LockTable,
    endpoint: String,
}

/// The DynamoDB endpoint of `server`, and the server whose S3 goes with it
/// (its own, or moto's for dynalite, which serves DynamoDB only).
async fn setup(server: Server, tag: &str) -> Option<Dyn> {
    let Some(endpoint) = server.env.get("AWS_ENDPOINT_URL_DYNAMODB").cloned() else {
        panic!(
            "{} serves no DynamoDB: its env file has no AWS_ENDPOINT_URL_DYNAMODB (restart it with scripts/test-servers)",
            server.name
        )
    };
    let s3 = if server.env.contains_key("AWS_ENDPOINT_URL_S3") {
        server
    } else {
        crate::support::server("moto")?
    };
    let env = Env::new(s3, tag).await;
    let opts = LockTableOptions {
        table: unique_name(tag),
        endpoint: Some(endpoint.clone()),
    };
    let store = env
        .server
        .builder(env.bucket())
        .with_lock_table(Some(opts))
        .build()
        .await
        .expect("connect");
    let table = store.lock_table().expect("table").clone();
    table.create_if_missing().await.expect("create table");
    Some(Dyn {
        env,
        table,
        endpoint,
    })
}

impl Dyn {
    fn bucket(&self) -> &str {
        self.env.bucket()
    }

    fn tfsync_at(&self, endpoint: &str, args: &[&str]) -> Run {
        run(self
            .env
            .server
            .tfsync(self.bucket(), KEY)
            .env("TFSYNC_DYNAMODB_TABLE", self.table.name())
            .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            .args(args))
    }

    fn tfsync(&self, args: &[&str]) -> Run {
        self.tfsync_at(&self.endpoint, args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--output", "json"];
        a.extend_from_slice(args);
        let r = self.tfsync(&a);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {r:?}"))
    }

    /// A string attribute of the item `lock_id`, `None` without the item.
    async fn attr(&self, lock_id: &str, attr: &str) -> Option<String> {
        let got = self.table.get(lock_id).await.expect("get item")?;
        Some(got.get(attr).cloned().unwrap_or_default())
    }

    async fn item_info(&self, key: &str) -> Option<String> {
        self.attr(&format!("{}/{key}", self.bucket()), "Info").await
    }

    async fn digest(&self, key: &str) -> Option<String> {
        self.attr(&format!("{}/{key}-md5", self.bucket()), "Digest")
            .await
    }

    async fn tflock(&self, key: &str) -> Option<Vec<u8>> {
        self.env.remote(&format!("{key}.tflock")).await
    }

    /// PutItem as Terraform's client does it.
    async fn put_item(&self, key: &str, info: &[u8]) {
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .item(
                "LockID",
                AttributeValue::S(format!("{}/{key}", self.bucket())),
            )
            .item(
                "Info",
                AttributeValue::S(String::from_utf8(info.to_vec()).expect("utf8")),
            )
            .condition_expression("attribute_not_exists(LockID)")
            .send()
            .await
            .expect("terraform's PutItem");
    }

    async fn put_tflock(&self, key: &str, info: &[u8]) {
        self.env
            .store
            .put(&format!("{key}.tflock"), info.to_vec(), PutMode::Create)
            .await
            .expect("terraform's .tflock");
    }

    /// The pair, as Terraform takes it with both `use_lockfile = true` and
    /// `dynamodb_table`: the `.tflock` first, then the item.
    async fn terraform_pair(&self, key: &str) -> (String, Vec<u8>) {
        let (id, info) = terraform_info(self.bucket(), key, "alice@ci-runner-7");
        self.put_tflock(key, &info).await;
        self.put_item(key, &info).await;
        (id, info)
    }
}

/// A LockInfo exactly as Terraform 1.11 marshals it (not a v4 UUID).
fn terraform_info(bucket: &str, key: &str, who: &str) -> (String, Vec<u8>) {
    let id = format!("59fef1d5-d094-c52e-6aa5-{:012x}", rand_u48());
    let body = format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.11.0","Created":"2026-01-11T09:55:24.570354123Z","Path":"{bucket}/{key}"}}"#
    );
    (id, body.into_bytes())
}

fn rand_u48() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    (u64::from(std::process::id()) << 24 | n) & 0xffff_ffff_ffff
}

fn assert_held(r: &Run, id: &str, store: &str) {
    assert_eq!(r.code, 3, "held: {r:?}");
    for needle in [id, "alice@ci-runner-7", "OperationTypeApply", store] {
        assert!(r.stderr.contains(needle), "{needle:?} in {r:?}");
    }
}

async fn pair_lock_blocks_and_needs_its_id(server: Server) {
    let Some(d) = setup(server, "ddb-pair").await else {
        return;
    };
    let (id, info) = d.terraform_pair(KEY).await;
    let f = d.env.file("s.tfstate", &state("L", 1, 1));

    assert_held(&d.tfsync(&["lock"]), &id, ".tflock");
    assert_held(&d.tfsync(&["push", &f]), &id, ".tflock");
    assert_eq!(d.env.remote(KEY).await, None, "nothing pushed");
    let r = d.tfsync(&[
        "force-unlock",
        "--yes",
        "00000000-0000-0000-0000-000000000000",
    ]);
    assert_eq!(r.code, 3, "another ID: {r:?}");
    assert!(r.stderr.contains(&id), "{r:?}");
    assert_eq!(d.tflock(KEY).await.as_deref(), Some(info.as_slice()));
    assert_eq!(
        d.item_info(KEY).await.as_deref().map(str::as_bytes),
        Some(info.as_slice()),
        "both records left as they were"
    );

    let r = d.tfsync(&["force-unlock", "--yes", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.tflock(KEY).await, None, ".tflock released");
    assert_eq!(d.item_info(KEY).await, None, "item released");
    let r = d.tfsync(&["push", &f]);
    assert_eq!(r.code, 0, "free again: {r:?}");
}

/// A teammate whose backend has `dynamodb_table` without `use_lockfile`
/// holds the item only.
async fn item_only_lock_blocks(server: Server) {
    let Some(d) = setup(server, "ddb-item").await else {
        return;
    };
    let (id, info) = terraform_info(d.bucket(), KEY, "alice@ci-runner-7");
    d.put_item(KEY, &info).await;

    assert_held(&d.tfsync(&["lock"]), &id, "DynamoDB lock item");
    assert_eq!(
        d.tflock(KEY).await,
        None,
        "the refused item left no .tflock behind"
    );
    let f = d.env.file("s.tfstate", &state("L", 1, 1));
    assert_held(&d.tfsync(&["push", &f]), &id, "DynamoDB lock item");
    assert_eq!(d.tflock(KEY).await, None, "push rolled back its .tflock");
    assert_eq!(d.env.remote(KEY).await, None, "nothing pushed");

    let r = d.tfsync(&["--output", "json", "status"]);
    assert_eq!(r.code, 5, "no state yet: {r:?}");
    let st: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(st["lock"]["ID"], id, "status shows the item's holder: {st}");
    assert_eq!(st["dynamodb"]["lock"]["id"], id, "{st}");

    let r = d.tfsync(&["force-unlock", "--yes", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.item_info(KEY).await, None);
}

/// A teammate with `use_lockfile = true` and no table holds the `.tflock`
/// only.
async fn tflock_only_lock_blocks(server: Server) {
    let Some(d) = setup(server, "ddb-tfl").await else {
        return;
    };
    let (id, info) = terraform_info(d.bucket(), KEY, "alice@ci-runner-7");
    d.put_tflock(KEY, &info).await;
    assert_held(&d.tfsync(&["lock"]), &id, ".tflock");
    assert_eq!(d.item_info(KEY).await, None, "no item taken");
    let r = d.tfsync(&["force-unlock", "--yes", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.tflock(KEY).await, None);
}

async fn lock_then_unlock_leaves_neither(server: Server) {
    let Some(d) = setup(server, "ddb-lu").await else {
        return;
    };
    let r = d.tfsync(&["lock", "--operation", "maintenance"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let tflock = d.tflock(KEY).await.expect(".tflock");
    let item = d.item_info(KEY).await.expect("item");
    assert_eq!(item.as_bytes(), tflock.as_slice(), "the same Info bytes");
    let v: Value = serde_json::from_slice(&tflock).expect("json");
    assert_eq!(v["ID"], id);
    assert_eq!(v["Path"], format!("{}/{KEY}", d.bucket()));

    // Terraform (pair mode) is refused by either record: the item is there.
    let (_, theirs) = terraform_info(d.bucket(), KEY, "bob@laptop");
    let refused = d
        .table
        .client()
        .put_item()
        .table_name(d.table.name())
        .item("LockID", AttributeValue::S(format!("{}/{KEY}", d.bucket())))
        .item(
            "Info",
            AttributeValue::S(String::from_utf8(theirs).expect("utf8")),
        )
        .condition_expression("attribute_not_exists(LockID)")
        .send()
        .await;
    assert!(refused.is_err(), "Terraform's PutItem is refused");

    let r = d.tfsync(&["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.tflock(KEY).await, None);
    assert_eq!(d.item_info(KEY).await, None);
    let r = d.tfsync(&["unlock", &id]);
    assert_eq!(r.code, 5, "nothing left to release: {r:?}");
}

async fn push_stores_the_digest_of_the_stored_object(server: Server) {
    let Some(d) = setup(server, "ddb-dig").await else {
        return;
    };
    for (workspace, key) in [("default", KEY.to_string()), ("W", format!("env:/W/{KEY}"))] {
        for serial in [1, 2] {
            let f = d
                .env
                .file("s.tfstate", &state("L", serial, serial as usize));
            let r = d.tfsync(&["-w", workspace, "push", &f]);
            assert_eq!(r.code, 0, "{r:?}");
            let stored = d.env.remote(&key).await.expect("state");
            assert_eq!(
                d.digest(&key).await,
                Some(md5_hex(&stored)),
                "{workspace} serial {serial}: the -md5 item is the stored object's MD5"
            );
            assert_eq!(d.tflock(&key).await, None);
            assert_eq!(d.item_info(&key).await, None, "push released its item");
        }
    }
}

/// The response to our own PutItem is lost: the SDK's retry meets our own
/// item, which is recognised by its ID (and released after the push).
async fn a_lost_put_item_response_is_ours(server: Server) {
    let Some(d) = setup(server, "ddb-lost").await else {
        return;
    };
    let host = d
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(host).await;
    proxy.add(Rule {
        method: "POST",
        path_ends: "/".into(),
        times: 1,
        fault: Fault::DropResponse,
    });
    let f = d.env.file("s.tfstate", &state("L", 1, 1));
    let r = d.tfsync_at(&proxy.endpoint(), &["push", &f]);
    assert_eq!(r.code, 0, "our own item is ours: {r:?}");
    assert!(
        proxy.seen().len() >= 3,
        "PutItem, its retry, GetItem: {:?}",
        proxy.seen()
    );
    assert_eq!(d.item_info(KEY).await, None, "and released");
    assert_eq!(d.tflock(KEY).await, None);
    let stored = d.env.remote(KEY).await.expect("state");
    assert_eq!(d.digest(KEY).await, Some(md5_hex(&stored)));
}

async fn a_stale_digest_is_shown_and_fixed(server: Server) {
    let Some(d) = setup(server, "ddb-fix").await else {
        return;
    };
    let f = d.env.file("s.tfstate", &state("L", 1, 1));
    assert_eq!(d.tfsync(&["push", &f]).code, 0);
    let actual = md5_hex(&d.env.remote(KEY).await.expect("state"));
    let st = d.json(&["status"]);
    assert_eq!(st["dynamodb"]["table"], d.table.name(), "{st}");
    assert_eq!(
        st["dynamodb"]["digest"],
        serde_json::json!({"stored": actual, "actual": actual, "matches": true})
    );

    // Without a table, status says nothing about DynamoDB.
    let r = run(d
        .env
        .server
        .tfsync(d.bucket(), KEY)
        .args(["--output", "json", "status"]));
    let plain: Value = serde_json::from_str(&r.stdout).expect("json");
    assert!(plain.get("dynamodb").is_none(), "{plain}");

    // Someone writes the state without tfsync or Terraform.
    let other = state("L", 2, 3);
    d.env
        .store
        .put(KEY, other.clone(), PutMode::Overwrite)
        .await
        .expect("put");
    let actual = md5_hex(&other);
    let st = d.json(&["status"]);
    assert_eq!(st["dynamodb"]["digest"]["matches"], false, "{st}");
    assert_eq!(st["dynamodb"]["digest"]["actual"], actual.as_str());
    let r = d.tfsync(&["status"]);
    assert!(r.stdout.contains("MISMATCH"), "{r:?}");
    let r = d.tfsync(&["pull"]);
    assert_eq!(r.code, 0, "pull still pulls: {r:?}");
    assert_eq!(r.stdout.as_bytes(), other.as_slice());
    assert!(
        r.stderr.contains("digest") && r.stderr.contains(&actual),
        "pull warns: {r:?}"
    );
    let r = d.tfsync(&["--output", "json", "digest"]);
    assert_eq!(r.code, 4, "a stale digest is a conflict until fixed: {r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["states"][0]["matches"], false, "{v}");
    assert_eq!(v["states"][0]["actual"], actual.as_str(), "{v}");

    let r = d.tfsync(&["digest", "--fix"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.digest(KEY).await, Some(actual.clone()), "repaired");
    assert_eq!(d.tflock(KEY).await, None, "under the lock, released");
    assert_eq!(d.item_info(KEY).await, None);
    let st = d.json(&["status"]);
    assert_eq!(st["dynamodb"]["digest"]["matches"], true, "{st}");
}

async fn locks_shows_both_kinds(server: Server) {
    let Some(d) = setup(server, "ddb-locks").await else {
        return;
    };
    let pair = "a/terraform.tfstate";
    let item_only = "b/terraform.tfstate";
    let tflock_only = "c/terraform.tfstate";
    let (pair_id, _) = d.terraform_pair(pair).await;
    let (item_id, info) = terraform_info(d.bucket(), item_only, "alice@ci-runner-7");
    d.put_item(item_only, &info).await;
    let (tfl_id, info) = terraform_info(d.bucket(), tflock_only, "alice@ci-runner-7");
    d.put_tflock(tflock_only, &info).await;
    // Two writers, one record each: the IDs differ.
    let mixed = "e/terraform.tfstate";
    let (mixed_a, info) = terraform_info(d.bucket(), mixed, "alice@ci-runner-7");
    d.put_tflock(mixed, &info).await;
    let (_, info) = terraform_info(d.bucket(), mixed, "bob@laptop");
    d.put_item(mixed, &info).await;
    // A digest is no lock.
    let f = d.env.file("s.tfstate", &state("L", 1, 1));
    assert_eq!(
        d.tfsync(&["--key", "d/terraform.tfstate", "push", &f]).code,
        0
    );

    let v = d.json(&["locks"]);
    let locks = v["locks"].as_array().expect("locks");
    assert_eq!(locks.len(), 4, "{v}");
    let by_key = |k: &str| {
        locks
            .iter()
            .find(|l| l["state_key"] == k)
            .unwrap_or_else(|| panic!("{k} in {v}"))
    };
    assert_eq!(by_key(pair)["lock"]["id"], pair_id.as_str());
    assert_eq!(by_key(pair)["dynamodb"]["lock"]["id"], pair_id.as_str());
    assert_eq!(by_key(pair)["pair"], "both");
    assert_eq!(by_key(item_only)["lock"], Value::Null);
    assert_eq!(
        by_key(item_only)["dynamodb"]["lock"]["id"],
        item_id.as_str()
    );
    assert_eq!(by_key(item_only)["pair"], "item_only");
    assert_eq!(by_key(tflock_only)["lock"]["id"], tfl_id.as_str());
    assert_eq!(by_key(tflock_only)["dynamodb"]["lock"], Value::Null);
    assert_eq!(by_key(tflock_only)["pair"], "tflock_only");
    assert_eq!(by_key(mixed)["pair"], "different_ids");
    // Breaking one writer's .tflock while another's item is there is
    // refused: nothing is deleted.
    let r = d.tfsync(&["--key", mixed, "force-unlock", "--yes", &mixed_a]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(d.tflock(mixed).await.is_some() && d.item_info(mixed).await.is_some());
    let r = d.tfsync(&["locks"]);
    assert_eq!(r.code, 0, "{r:?}");
    for needle in [
        "item only",
        ".tflock only",
        "both",
        &pair_id,
        &item_id,
        &tfl_id,
    ] {
        assert!(r.stdout.contains(needle), "{needle:?}: {r:?}");
    }

    // --all breaks both kinds (and leaves the mixed pair, reported: exit 3).
    let r = d.tfsync(&["force-unlock", "--all", "--older-than", "1h", "--yes"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(mixed), "{r:?}");
    for k in [pair, item_only, tflock_only] {
        assert_eq!(d.tflock(k).await, None, "{k}");
        assert_eq!(d.item_info(k).await, None, "{k}");
    }
}

/// Every state write stores the digest of what it wrote: `restore
/// --version-id`, `restore --from`, the destination of `migrate`; and
/// `migrate --delete-source` removes the source's digest with the state.
async fn every_state_write_stores_its_digest(server: Server) {
    let Some(d) = setup(server, "ddb-w").await else {
        return;
    };
    crate::support::enable_versioning(&d.env.store).await;
    let check = async |key: &str, what: &str| {
        let stored = d.env.remote(key).await.expect("state");
        assert_eq!(
            d.digest(key).await,
            Some(md5_hex(&stored)),
            "{what}: the digest is the stored object's MD5"
        );
        assert_eq!(d.item_info(key).await, None, "{what}: lock item released");
    };
    for serial in [1, 2] {
        let f = d.env.file("s.tfstate", &state("L", serial, 1));
        assert_eq!(d.tfsync(&["push", &f]).code, 0);
    }
    let h = d.json(&["history"]);
    let oldest = h["versions"]
        .as_array()
        .and_then(|v| v.last())
        .and_then(|v| v["version_id"].as_str())
        .expect("oldest version")
        .to_string();
    let r = d.tfsync(&["restore", "--version-id", &oldest]);
    assert_eq!(r.code, 0, "{r:?}");
    check(KEY, "restore --version-id").await;

    let dir = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", dir.path().display());
    let r = d.tfsync(&["backup", "--to", &to]);
    assert_eq!(r.code, 0, "{r:?}");
    let snap = std::fs::read_dir(dir.path())
        .expect("snapshots")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n != "manifests")
        .expect("a snapshot");
    let f = d.env.file("s.tfstate", &state("L", 9, 2));
    assert_eq!(d.tfsync(&["push", &f]).code, 0);
    let r = d.tfsync(&["restore", "--force", "--from", &format!("{to}/{snap}")]);
    assert_eq!(r.code, 0, "{r:?}");
    check(KEY, "restore --from").await;

    // Another bucket on the same server: the same table.
    let dst = d.env.server.new_bucket("ddb-w-dst").await;
    let r = d.tfsync(&[
        "migrate",
        "--to",
        &format!("s3://{}", dst.bucket()),
        "--delete-source",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let moved = dst.get(KEY).await.expect("migrated").bytes;
    assert_eq!(
        d.attr(&format!("{}/{KEY}-md5", dst.bucket()), "Digest")
            .await,
        Some(md5_hex(&moved)),
        "the destination's digest"
    );
    assert_eq!(
        d.attr(&format!("{}/{KEY}", dst.bucket()), "Info").await,
        None,
        "the destination's lock item released"
    );
    assert_eq!(d.env.remote(KEY).await, None, "source deleted");
    assert_eq!(d.digest(KEY).await, None, "and its digest with it");
}

async fn doctor_probes_the_table(server: Server) {
    let Some(d) = setup(server, "ddb-doc").await else {
        return;
    };
    let checks = |v: &Value| -> std::collections::HashMap<String, String> {
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or("").to_string(),
                    c["verdict"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let f = d.env.file("s.tfstate", &state("L", 1, 1));
    assert_eq!(d.tfsync(&["push", &f]).code, 0);
    let v = d.json(&["doctor"]);
    let c = checks(&v);
    for id in [
        "dynamodb_create_only",
        "dynamodb_conditional_delete",
        "dynamodb_cleanup",
        "dynamodb_digests",
        "dynamodb_drop_ready",
    ] {
        assert_eq!(c.get(id).map(String::as_str), Some("pass"), "{id}: {v}");
    }
    let probe_items: Vec<_> = d
        .table
        .scan_prefix("")
        .await
        .expect("scan")
        .into_iter()
        .filter(|(id, _)| id.contains(".tfsync-doctor/"))
        .collect();
    assert!(
        probe_items.is_empty(),
        "scratch items left: {probe_items:?}"
    );

    // A stale digest and an item-only lock: warnings, still safe.
    d.table
        .put(
            &format!("{}/{KEY}-md5", d.bucket()),
            &[("Digest", &md5_hex(b"something else"))],
        )
        .await
        .expect("stale digest");
    let (_, info) = terraform_info(d.bucket(), "other/terraform.tfstate", "alice@ci-runner-7");
    d.put_item("other/terraform.tfstate", &info).await;
    let v = d.json(&["doctor"]);
    let c = checks(&v);
    assert_eq!(c["dynamodb_digests"], "warn", "{v}");
    assert_eq!(c["dynamodb_drop_ready"], "warn", "{v}");
    assert_eq!(v["safe"], true, "{v}");
    let r = d.tfsync(&["doctor"]);
    assert!(
        r.stdout.contains("other/terraform.tfstate") && r.stdout.contains(KEY),
        "names the held lock and the stale digest: {r:?}"
    );
}

on_each_server!(
    [moto, dynalite] doctor_probes_the_table,
    every_state_write_stores_its_digest,
    pair_lock_blocks_and_needs_its_id,
    item_only_lock_blocks,
    tflock_only_lock_blocks,
    lock_then_unlock_leaves_neither,
    push_stores_the_digest_of_the_stored_object,
    a_lost_put_item_response_is_ours,
    a_stale_digest_is_shown_and_fixed,
    locks_shows_both_kinds,
);
