//! What an Azure Blob endpoint really does with the requests Terraform's
//! azurerm lock and state writes rely on (`tfsync doctor` on an azurerm
//! backend), measured on scratch blobs under a reserved prefix and removed
//! afterwards. The lock is a lease: two holders are kept apart only if a
//! second acquire is refused while the lease is held and a write that does
//! not name the lease is refused too; tfsync's state writes also rely on
//! `If-None-Match: *` and `If-Match`.
//!
//! `Fail` is reserved for what lets two writers in; the rest warns.

use super::ObjectStore;
use super::azure::{AzureStore, BlobClient, BlobResponse};
use super::probe::{Check, Report, Verdict, check};
use hyper::Method;

/// Run every check under `prefix` (ending with `/`, unique to this run),
/// then remove what was written.
pub async fn run(store: &AzureStore, prefix: &str) -> Report {
    let c = store.client();
    let mut checks = Vec::new();
    let can_write = permissions(c, prefix, &mut checks).await;
    if can_write {
        checks.push(create_only(c, &format!("{prefix}create-only")).await);
        checks.push(if_match(c, &format!("{prefix}if-match")).await);
        checks.extend(lease(c, &format!("{prefix}lease")).await);
    } else {
        for (id, title) in [
            ("create_only", "create-only PUT refused the second time"),
            ("if_match", "If-Match compare-and-swap"),
            ("lease_exclusive", "a second lease is refused"),
            (
                "lease_guards_writes",
                "a write without the lease is refused",
            ),
            ("lease_break", "a lease can be broken"),
        ] {
            checks.push(check(
                id,
                title,
                Verdict::Skip,
                "not probed: cannot write under the prefix",
            ));
        }
    }
    checks.push(cleanup(c, prefix).await);
    Report {
        bucket: store.describe(),
        prefix: prefix.to_string(),
        versioning: "not probed (azurerm)".into(),
        checks,
    }
}

fn block_blob() -> (&'static str, String) {
    ("x-ms-blob-type", "BlockBlob".into())
}

async fn put(
    c: &BlobClient,
    blob: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> Result<BlobResponse, String> {
    let mut headers = vec![block_blob()];
    headers.extend(extra.iter().cloned());
    c.request(Method::PUT, Some(blob), &[], &headers, body.to_vec())
        .await
        .map_err(|e| e.to_string())
}

fn status_of(r: &BlobResponse) -> String {
    match r.error_code() {
        Some(code) => format!("HTTP {} {code}", r.status),
        None => format!("HTTP {}", r.status),
    }
}

/// PUT, GET, LIST and DELETE under the prefix. Returns whether PUT works.
async fn permissions(c: &BlobClient, prefix: &str, checks: &mut Vec<Check>) -> bool {
    let title = "write, read, list and delete under the prefix";
    let blob = format!("{prefix}permissions");
    let mut steps = Vec::new();
    let wrote = match put(c, &blob, &[], b"tfsync doctor").await {
        Ok(r) if r.status == 201 => true,
        Ok(r) => {
            steps.push(format!("PUT: {}", status_of(&r)));
            false
        }
        Err(e) => {
            steps.push(format!("PUT: {e}"));
            false
        }
    };
    if wrote {
        match c.request(Method::GET, Some(&blob), &[], &[], vec![]).await {
            Ok(r) if r.status == 200 && r.body == b"tfsync doctor" => {}
            Ok(r) => steps.push(format!("GET: {} ({} bytes)", status_of(&r), r.body.len())),
            Err(e) => steps.push(format!("GET: {e}")),
        }
        let list = c
            .request(
                Method::GET,
                None,
                &[
                    ("comp", "list"),
                    ("prefix", prefix),
                    ("restype", "container"),
                ],
                &[],
                vec![],
            )
            .await;
        match list {
            Ok(r) if r.status == 200 && String::from_utf8_lossy(&r.body).contains(&blob) => {}
            Ok(r) => steps.push(format!("LIST: {} without the blob", status_of(&r))),
            Err(e) => steps.push(format!("LIST: {e}")),
        }
        match c
            .request(Method::DELETE, Some(&blob), &[], &[], vec![])
            .await
        {
            Ok(r) if r.status == 202 => {}
            Ok(r) => steps.push(format!("DELETE: {}", status_of(&r))),
            Err(e) => steps.push(format!("DELETE: {e}")),
        }
    }
    if steps.iter().any(|s| s.contains("ContainerNotFound")) {
        checks.push(
            check("permissions", title, Verdict::Fail, steps.join("; ")).fix(
                "the container does not exist: create it (`az storage container create --name <container>`), or fix container_name",
            ),
        );
    } else if steps.is_empty() {
        checks.push(check(
            "permissions",
            title,
            Verdict::Pass,
            "PUT 201, GET 200, LIST 200, DELETE 202",
        ));
    } else {
        checks.push(
            check("permissions", title, Verdict::Fail, steps.join("; ")).fix(
                "give these credentials read, write, list and delete on the container (Storage Blob Data Contributor, or the account key)",
            ),
        );
    }
    wrote
}

/// `If-None-Match: *` twice: the second must be refused (409 or 412).
async fn create_only(c: &BlobClient, blob: &str) -> Check {
    let title = "create-only PUT refused the second time";
    let star = [("if-none-match", "*".to_string())];
    let first = put(c, blob, &star, b"1").await;
    let second = put(c, blob, &star, b"2").await;
    match (first, second) {
        (Ok(a), Ok(b)) if a.status == 201 && matches!(b.status, 409 | 412) => check(
            "create_only",
            title,
            Verdict::Pass,
            format!("first 201, second {}", status_of(&b)),
        ),
        (Ok(a), Ok(b)) => check(
            "create_only",
            title,
            Verdict::Fail,
            format!("first {}, second {}", status_of(&a), status_of(&b)),
        )
        .fix("this endpoint ignores If-None-Match: two creators of one blob could both win"),
        (Err(e), _) | (_, Err(e)) => check("create_only", title, Verdict::Fail, e),
    }
}

/// `If-Match` with the current ETag succeeds, with a stale one is refused.
async fn if_match(c: &BlobClient, blob: &str) -> Check {
    let title = "If-Match compare-and-swap";
    let first = match put(c, blob, &[], b"1").await {
        Ok(r) if r.status == 201 => r,
        Ok(r) => return check("if_match", title, Verdict::Fail, status_of(&r)),
        Err(e) => return check("if_match", title, Verdict::Fail, e),
    };
    let Some(etag) = first.header("etag").map(str::to_string) else {
        return check(
            "if_match",
            title,
            Verdict::Fail,
            "the PUT response carried no ETag",
        );
    };
    let good = put(c, blob, &[("if-match", etag.clone())], b"2").await;
    let stale = put(c, blob, &[("if-match", etag)], b"3").await;
    match (good, stale) {
        (Ok(g), Ok(s)) if g.status == 201 && s.status == 412 => check(
            "if_match",
            title,
            Verdict::Pass,
            "current ETag 201, stale ETag 412",
        ),
        (Ok(g), Ok(s)) => check(
            "if_match",
            title,
            Verdict::Fail,
            format!(
                "current ETag {}, stale ETag {}",
                status_of(&g),
                status_of(&s)
            ),
        )
        .fix("this endpoint ignores If-Match: a state write could overwrite a newer state"),
        (Err(e), _) | (_, Err(e)) => check("if_match", title, Verdict::Fail, e),
    }
}

/// Terraform's lock: an infinite lease with a proposed ID. While held, a
/// second acquire and a write without the lease are refused, a write with
/// it is accepted; a break ends it.
async fn lease(c: &BlobClient, blob: &str) -> Vec<Check> {
    let (t_excl, t_guard, t_break) = (
        "a second lease is refused",
        "a write without the lease is refused",
        "a lease can be broken",
    );
    if let Err(e) = put(c, blob, &[], b"").await {
        return vec![check("lease_exclusive", t_excl, Verdict::Fail, e)];
    }
    let (a, b) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let acquire = |id: String| async move {
        c.lease(
            blob,
            "acquire",
            &[
                ("x-ms-lease-duration", "-1".into()),
                ("x-ms-proposed-lease-id", id),
            ],
        )
        .await
        .map_err(|e| e.to_string())
    };
    let mut out = Vec::new();
    match acquire(a.clone()).await {
        Ok(r) if r.status == 201 && r.header("x-ms-lease-id") == Some(a.as_str()) => {}
        Ok(r) => {
            return vec![
                check(
                    "lease_exclusive",
                    t_excl,
                    Verdict::Fail,
                    format!("acquiring a lease: {}", status_of(&r)),
                )
                .fix("Terraform's azurerm lock needs blob leases"),
            ];
        }
        Err(e) => return vec![check("lease_exclusive", t_excl, Verdict::Fail, e)],
    }
    out.push(match acquire(b).await {
        Ok(r) if r.status == 409 => check(
            "lease_exclusive",
            t_excl,
            Verdict::Pass,
            format!("first acquire 201, second {}", status_of(&r)),
        ),
        Ok(r) => check(
            "lease_exclusive",
            t_excl,
            Verdict::Fail,
            format!("first acquire 201, second {}", status_of(&r)),
        )
        .fix("this endpoint grants two leases on one blob: two writers could both lock"),
        Err(e) => check("lease_exclusive", t_excl, Verdict::Fail, e),
    });
    let without = put(c, blob, &[], b"{}").await;
    let with = put(c, blob, &[("x-ms-lease-id", a.clone())], b"{}").await;
    out.push(match (without, with) {
        (Ok(w), Ok(l)) if w.status == 412 && l.status == 201 => check(
            "lease_guards_writes",
            t_guard,
            Verdict::Pass,
            format!("without the lease {}, with it 201", status_of(&w)),
        ),
        (Ok(w), Ok(l)) => check(
            "lease_guards_writes",
            t_guard,
            Verdict::Fail,
            format!(
                "without the lease {}, with it {}",
                status_of(&w),
                status_of(&l)
            ),
        )
        .fix("this endpoint lets writes through a lease: a lock would not keep writers out"),
        (Err(e), _) | (_, Err(e)) => check("lease_guards_writes", t_guard, Verdict::Fail, e),
    });
    let broke = c
        .lease(blob, "break", &[("x-ms-lease-break-period", "0".into())])
        .await;
    let after = c
        .request(Method::HEAD, Some(blob), &[], &[], vec![])
        .await
        .ok()
        .and_then(|r| r.header("x-ms-lease-state").map(str::to_string));
    out.push(match broke {
        Ok(r) if r.status == 202 && after.as_deref() == Some("broken") => check(
            "lease_break",
            t_break,
            Verdict::Pass,
            "break 202, lease state broken (force-unlock works)",
        ),
        Ok(r) => check(
            "lease_break",
            t_break,
            Verdict::Warn,
            format!(
                "break {}, lease state {}",
                status_of(&r),
                after.as_deref().unwrap_or("unknown")
            ),
        )
        .fix("force-unlock of a lease taken elsewhere may not work here"),
        Err(e) => check("lease_break", t_break, Verdict::Warn, e.to_string()),
    });
    out
}

/// Break any lease left, delete every scratch blob, check none is left.
async fn cleanup(c: &BlobClient, prefix: &str) -> Check {
    let title = "scratch blobs removed";
    let list = |c: &BlobClient| {
        let prefix = prefix.to_string();
        let c = c.clone();
        async move {
            c.request(
                Method::GET,
                None,
                &[
                    ("comp", "list"),
                    ("prefix", &prefix),
                    ("restype", "container"),
                ],
                &[],
                vec![],
            )
            .await
            .map(|r| names(&String::from_utf8_lossy(&r.body)))
        }
    };
    let mut problems = Vec::new();
    for blob in ["permissions", "create-only", "if-match", "lease"] {
        let blob = format!("{prefix}{blob}");
        let _ = c
            .lease(&blob, "break", &[("x-ms-lease-break-period", "0".into())])
            .await;
        match c
            .request(Method::DELETE, Some(&blob), &[], &[], vec![])
            .await
        {
            Ok(r) if matches!(r.status, 202 | 404) => {}
            Ok(r) => problems.push(format!("{blob}: {}", status_of(&r))),
            Err(e) => problems.push(format!("{blob}: {e}")),
        }
    }
    match list(c).await {
        Ok(left) if left.is_empty() => {}
        Ok(left) => problems.push(format!(
            "{} blob(s) remain: {}",
            left.len(),
            left.join(", ")
        )),
        Err(e) => problems.push(format!("listing: {e}")),
    }
    if problems.is_empty() {
        check(
            "cleanup",
            title,
            Verdict::Pass,
            "nothing left under the prefix",
        )
    } else {
        check("cleanup", title, Verdict::Warn, problems.join("; "))
            .fix(format!("delete the blobs under {prefix} by hand"))
    }
}

/// The blob names of a List Blobs answer, escaped for printing.
fn names(xml: &str) -> Vec<String> {
    super::azure::xml_all(xml, "Name")
        .into_iter()
        .map(|n| crate::output::escape_for_terminal(&super::azure::xml_unescape(n)).into_owned())
        .collect()
}
