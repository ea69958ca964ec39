//! Request budgets, counted through the proxy on each real server:
//! lock 1, unlock <= 2, pull 1, push <= 4, status <= 2.
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
