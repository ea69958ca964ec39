//! Request budgets, counted through the proxy on each real server:
//! lock 1, unlock <= 2, pull 1, push <= 4, status <= 2; with a DynamoDB
//! table (moto) the S3 requests and DynamoDB operations of each, exactly.
//!
//! Ceph RGW refuses `If-Match` with the quoted ETag the SDKs send, so its
//! first state write costs a HEAD and a second PUT (see store/s3.rs): its
//! push budget is 6.

use crate::support::proxy::Proxy;
use crate::support::{Server, run, state};
use tfsync::store::{ObjectStore, PutMode};

const KEY: &str = "budget/terraform.tfstate";

async fn budgets(server: Server) {
    let store = server.new_bucket("budget").await;
    let proxy = Proxy::start(server.endpoint().trim_start_matches("http://").to_string()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    store
        .put(KEY, state("B", 1, 1), PutMode::Create)
        .await
        .expect("seed");
    let file = dir.path().join("s.tfstate");
    std::fs::write(&file, state("B", 2, 1)).expect("write");
    let file = file.to_string_lossy().into_owned();

    let push_budget = if server.name == "ceph" { 6 } else { 4 };
    let mut id = String::new();
    let steps: Vec<(&str, Vec<String>, usize)> = vec![
        ("status", vec!["status".into()], 2),
        ("pull", vec!["pull".into()], 1),
        ("push", vec!["push".into(), file.clone()], push_budget),
        ("lock", vec!["lock".into()], 1),
        ("unlock", vec!["unlock".into(), "<id>".into()], 2),
    ];
    let mut report = Vec::new();
    for (name, args, budget) in steps {
        proxy.clear();
        let args: Vec<String> = args
            .into_iter()
            .map(|a| if a == "<id>" { id.clone() } else { a })
            .collect();
        let r = run(server
            .tfsync(store.bucket(), KEY)
            .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
            .args(&args));
        assert_eq!(r.code, 0, "{name}: {r:?}");
        if name == "lock" {
            id = r.stdout.trim().to_string();
        }
        let seen = proxy.seen();
        report.push(format!("{name}={}", seen.len()));
        assert!(
            seen.len() <= budget,
            "{name} on {} made {} requests (budget {budget}): {seen:?}",
            server.name,
            seen.len()
        );
    }
    eprintln!("requests on {}: {}", server.name, report.join(" "));
}

on_each_server!(budgets);

/// The budgets with a DynamoDB table (moto, whose DynamoDB shares its S3
/// port: one proxy counts both): each command's S3 requests and DynamoDB
/// operations (`X-Amz-Target`), asserted exactly.
async fn budgets_with_table(server: Server) {
    let store = server.new_bucket("budget-t").await;
    let endpoint = server
        .env
        .get("AWS_ENDPOINT_URL_DYNAMODB")
        .cloned()
        .expect("moto's env file names its DynamoDB endpoint");
    let opts = tfsync::store::dynamo::LockTableOptions {
        table: crate::support::unique_name("budget"),
        endpoint: Some(endpoint.clone()),
    };
    let with_table = server
        .builder(store.bucket())
        .with_lock_table(Some(opts.clone()))
        .build()
        .await
        .expect("connect");
    with_table
        .lock_table()
        .expect("table")
        .create_if_missing()
        .await
        .expect("create table");
    let proxy = Proxy::start(endpoint.trim_start_matches("http://").to_string()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.tfstate");
    let file = file.to_string_lossy().into_owned();

    // (command, S3 requests, DynamoDB operations in order)
    let steps: Vec<(&str, Vec<String>, usize, &[&str])> = vec![
        // .tflock PUT, state GET, state PUT, .tflock DELETE; the lock item,
        // the digest, the item's release.
        (
            "push",
            vec!["push".into(), file.clone()],
            4,
            &["PutItem", "PutItem", "DeleteItem"],
        ),
        ("status", vec!["status".into()], 2, &["GetItem", "GetItem"]),
        ("pull", vec!["pull".into()], 1, &["GetItem"]),
        ("lock", vec!["lock".into()], 1, &["PutItem"]),
        // Both records are read and compared first (either may hold
        // another ID), then each is read again and deleted by its release.
        (
            "unlock",
            vec!["unlock".into(), "<id>".into()],
            3,
            &["GetItem", "GetItem", "DeleteItem"],
        ),
    ];
    let mut id = String::new();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, args, s3_budget, dynamo_ops) in steps {
        if name == "push" {
            std::fs::write(&file, state("BT", 1, 1)).expect("write");
        }
        proxy.clear();
        let args: Vec<String> = args
            .into_iter()
            .map(|a| if a == "<id>" { id.clone() } else { a })
            .collect();
        let r = run(server
            .tfsync(store.bucket(), KEY)
            .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
            .env("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint())
            .env("TFSYNC_DYNAMODB_TABLE", &opts.table)
            .args(&args));
        assert_eq!(r.code, 0, "{name}: {r:?}");
        if name == "lock" {
            id = r.stdout.trim().to_string();
        }
        let seen = proxy.seen();
        let ops: Vec<String> = seen
            .iter()
            .filter_map(|s| s.header("x-amz-target"))
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
            .collect();
        let s3 = seen.len() - ops.len();
        report.push(format!("{name}: {s3} S3 + {ops:?}"));
        if s3 != s3_budget || ops != dynamo_ops {
            failures.push(format!(
                "{name}: {s3} S3 requests (want {s3_budget}), DynamoDB {ops:?} (want {dynamo_ops:?}): {seen:?}"
            ));
        }
    }
    eprintln!(
        "requests with a table on {}: {}",
        server.name,
        report.join("; ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

on_each_server!([moto] budgets_with_table);
