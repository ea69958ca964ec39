//! What an S3-compatible provider really does with the requests a lock and a
//! state write rely on, measured with scratch objects under a reserved
//! prefix (`tfsync doctor`). Everything written is removed afterwards,
//! including object versions and delete markers.
//!
//! Each check ends in a verdict. `Fail` is reserved for what makes locking
//! unsafe (two writers could both get the lock); what only costs a feature
//! or a request is a `Warn`.

use super::s3::{S3Store, Versioning};
use super::{ObjectStore, PutMode, StoreError};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ChecksumAlgorithm;
use base64::Engine;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier (for scripts).
    pub id: &'static str,
    pub title: &'static str,
    pub verdict: Verdict,
    /// What was observed.
    pub detail: String,
    /// What to change, when something should change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    /// `enabled`, `suspended`, `off`, or `unknown` when it cannot be read.
    pub versioning: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// Locking is safe when no check failed.
    pub fn safe(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// The failed checks, each with its fix.
    pub fn reasons(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| match &c.fix {
                Some(f) => format!("{}: {} ({f})", c.title, c.detail),
                None => format!("{}: {}", c.title, c.detail),
            })
            .collect()
    }
}

pub(crate) fn check(
    id: &'static str,
    title: &'static str,
    verdict: Verdict,
    detail: impl Into<String>,
) -> Check {
    Check {
        id,
        title,
        verdict,
        detail: detail.into(),
        fix: None,
    }
}

impl Check {
    pub(crate) fn fix(mut self, f: impl Into<String>) -> Check {
        self.fix = Some(f.into());
        self
    }
}

/// Run every check on `store` under `prefix` (which should end with `/` and
/// be unique to this run), then remove everything written there.
pub async fn run(store: &S3Store, prefix: &str) -> Report {
    let versioning = store.versioning().await;
    let mut checks = Vec::new();

    let can_write = permissions(store, prefix, &S3_REQUESTS, &mut checks).await;
    checks.push(versioning_check(&versioning));
    if can_write {
        let versioned = matches!(versioning, Ok(Versioning::Enabled | Versioning::Suspended));
        checks.push(create_only(store, &format!("{prefix}create-only")).await);
        checks.push(create_after_delete(store, &format!("{prefix}recreate"), versioned).await);
        checks.extend(if_match(store, &format!("{prefix}if-match")).await);
        checks.push(conditional_delete(store, &format!("{prefix}delete")).await);
        checks.extend(checksums(store, prefix).await);
    } else {
        for (id, title) in [
            ("create_only", "create-only PUT refused the second time"),
            ("create_after_delete", "create-only PUT after a delete"),
            ("if_match", "If-Match compare-and-swap"),
            ("conditional_delete", "conditional DELETE"),
            ("checksums", "request checksums"),
        ] {
            checks.push(check(
                id,
                title,
                Verdict::Skip,
                "not probed: cannot write under the prefix",
            ));
        }
    }
    checks.push(cleanup(store, prefix).await);

    Report {
        bucket: store.bucket().to_string(),
        prefix: prefix.to_string(),
        versioning: match versioning {
            Ok(Versioning::Off) => "off",
            Ok(Versioning::Enabled) => "enabled",
            Ok(Versioning::Suspended) => "suspended",
            Err(_) => "unknown",
        }
        .into(),
        checks,
    }
}

/// How one provider names the four requests of [`permissions`], and what
/// to grant when one is refused.
pub(crate) struct Requests {
    pub put: &'static str,
    pub get: &'static str,
    pub list: &'static str,
    pub delete: &'static str,
    pub title: &'static str,
    pub fix: &'static str,
}

const S3_REQUESTS: Requests = Requests {
    put: "PUT",
    get: "GET",
    list: "LIST",
    delete: "DELETE",
    title: "list, get, put, delete on the prefix",
    fix: "grant s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on the state's bucket and prefix",
};

/// Write, read, list and delete a scratch object under the prefix (the
/// delete checked with a HEAD). Returns whether the write works.
pub(crate) async fn permissions(
    store: &dyn ObjectStore,
    prefix: &str,
    words: &Requests,
    checks: &mut Vec<Check>,
) -> bool {
    let key = format!("{prefix}permissions");
    let body = b"tfsync doctor".to_vec();
    let mut denied = Vec::new();
    let put = store.put(&key, body.clone(), PutMode::Overwrite).await;
    if let Err(e) = &put {
        denied.push(format!("{}: {e}", words.put));
    }
    let can_write = put.is_ok();
    if can_write {
        match store.get(&key).await {
            Ok(g) if g.bytes == body => {}
            Ok(_) => denied.push(format!(
                "{} returned other bytes than were written",
                words.get
            )),
            Err(e) => denied.push(format!("{}: {e}", words.get)),
        }
    }
    match store.list(prefix).await {
        Ok(l) if !can_write || l.iter().any(|m| m.key == key) => {}
        Ok(_) => denied.push(format!(
            "{} does not show the object just written",
            words.list
        )),
        Err(e) => denied.push(format!("{}: {e}", words.list)),
    }
    if can_write {
        match store.delete(&key, None).await {
            Ok(()) => match store.head(&key).await {
                Err(StoreError::NotFound { .. }) => {}
                Ok(_) => denied.push(format!(
                    "{} answered OK but the object is still there",
                    words.delete
                )),
                Err(e) => denied.push(format!("HEAD after {}: {e}", words.delete)),
            },
            Err(e) => denied.push(format!("{}: {e}", words.delete)),
        }
    }
    checks.push(if denied.is_empty() {
        check("permissions", words.title, Verdict::Pass, "all four work")
    } else {
        check("permissions", words.title, Verdict::Fail, denied.join("; ")).fix(words.fix)
    });
    can_write
}

fn versioning_check(v: &Result<Versioning, StoreError>) -> Check {
    let title = "bucket versioning";
    match v {
        Ok(Versioning::Off) => check("versioning", title, Verdict::Pass, "off"),
        Ok(state) => check(
            "versioning",
            title,
            Verdict::Warn,
            format!(
                "{}: some S3-compatible servers (Ceph RGW) stop honouring If-None-Match on versioned buckets; the create-only checks below tell whether this one does",
                if *state == Versioning::Enabled {
                    "enabled"
                } else {
                    "suspended"
                }
            ),
        ),
        Err(e) => check(
            "versioning",
            title,
            Verdict::Warn,
            format!(
                "cannot be read ({e}); the create-only checks below still tell whether locking works"
            ),
        ),
    }
}

/// Create-only PUT twice on the same key: the second must be refused.
async fn create_only(store: &S3Store, key: &str) -> Check {
    let title = "create-only PUT (If-None-Match: *) refused the second time";
    if let Err(e) = store.put(key, b"first".to_vec(), PutMode::Create).await {
        return check(
            "create_only",
            title,
            Verdict::Fail,
            format!("the first create-only PUT failed: {e}"),
        )
        .fix("this provider does not support conditional writes: use another lock store");
    }
    match store.put(key, b"second".to_vec(), PutMode::Create).await {
        Err(StoreError::AlreadyExists { .. }) => {
            check("create_only", title, Verdict::Pass, "second PUT refused (412/409)")
        }
        Ok(_) => check(
            "create_only",
            title,
            Verdict::Fail,
            "the second create-only PUT succeeded: this provider ignores If-None-Match, so every writer would get the lock",
        )
        .fix("this provider ignores If-None-Match: use another lock store"),
        Err(e) => check(
            "create_only",
            title,
            Verdict::Fail,
            format!("the second create-only PUT failed with something other than 412/409: {e}"),
        )
        .fix("this provider does not answer conditional writes as S3 does: use another lock store"),
    }
}

/// Create, delete, create again, create a fourth time: catches servers that
/// honour the condition only until the first delete.
async fn create_after_delete(store: &S3Store, key: &str, versioned: bool) -> Check {
    let title = "create-only PUT after a delete (lock, release, lock, lock)";
    let fix = if versioned {
        "disable versioning on this bucket (or use an unversioned bucket for the state and its lock)"
    } else {
        "this provider does not honour If-None-Match reliably: use another lock store"
    };
    let steps = async {
        store
            .put(key, b"1".to_vec(), PutMode::Create)
            .await
            .map_err(|e| format!("first create failed: {e}"))?;
        store
            .delete(key, None)
            .await
            .map_err(|e| format!("delete failed: {e}"))?;
        store
            .put(key, b"3".to_vec(), PutMode::Create)
            .await
            .map_err(|e| format!("create after the delete was refused ({e}): a released lock could not be taken again"))?;
        Ok::<_, String>(store.put(key, b"4".to_vec(), PutMode::Create).await)
    };
    match steps.await {
        Err(detail) => check("create_after_delete", title, Verdict::Fail, detail).fix(fix),
        Ok(Err(StoreError::AlreadyExists { .. })) => check(
            "create_after_delete",
            title,
            Verdict::Pass,
            "the fourth create-only PUT was refused",
        ),
        Ok(Ok(_)) => check(
            "create_after_delete",
            title,
            Verdict::Fail,
            "the fourth create-only PUT succeeded: after a lock has once been released, every writer gets it",
        )
        .fix(fix),
        Ok(Err(e)) => check(
            "create_after_delete",
            title,
            Verdict::Fail,
            format!("the fourth create-only PUT failed with something other than 412/409: {e}"),
        )
        .fix(fix),
    }
}

/// The HTTP status of a failed SDK call, if a response came back.
fn status<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn content_md5(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// A PUT with an explicit `If-Match` value, sent exactly as given (the
/// store's own `put` adds its Ceph workaround, which would hide the answer).
async fn put_if_match(
    store: &S3Store,
    key: &str,
    body: &[u8],
    if_match: &str,
) -> Result<(), Option<u16>> {
    store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .content_md5(content_md5(body))
        .if_match(if_match)
        .body(body.to_vec().into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| status(&e))
}

/// `If-Match` with a stale ETag (must be refused), then with the current one
/// quoted and unquoted (one of them must be accepted).
async fn if_match(store: &S3Store, key: &str) -> Vec<Check> {
    let title_stale = "If-Match with a stale ETag refused";
    let title_current = "If-Match with the current ETag accepted";
    let etag = match store.put(key, b"v1".to_vec(), PutMode::Overwrite).await {
        Ok(Some(e)) => e,
        Ok(None) | Err(_) => match store.head(key).await.ok().and_then(|m| m.etag) {
            Some(e) => e,
            None => {
                return vec![check(
                    "if_match",
                    "If-Match compare-and-swap",
                    Verdict::Warn,
                    "the store reports no ETag: pushes cannot be compare-and-swap",
                )];
            }
        },
    };
    let stale = match put_if_match(store, key, b"stale", "\"0123456789abcdef0123456789abcdef\"").await {
        Err(Some(412)) => check("if_match_stale", title_stale, Verdict::Pass, "412"),
        Err(s) => check(
            "if_match_stale",
            title_stale,
            Verdict::Pass,
            format!("refused with {}", s.map_or("no response".into(), |s| s.to_string())),
        ),
        Ok(()) => check(
            "if_match_stale",
            title_stale,
            Verdict::Warn,
            "accepted: this provider ignores If-Match, so a writer that ignores the lock could overwrite a state unnoticed; the lock alone protects the state",
        )
        .fix("make sure every writer takes the lock (Terraform with use_lockfile = true, tfsync)"),
    };
    // After an accepted stale write the ETag changed: read it again.
    let etag = store
        .head(key)
        .await
        .ok()
        .and_then(|m| m.etag)
        .unwrap_or(etag);
    let quoted = put_if_match(store, key, b"v2", &format!("\"{etag}\"")).await;
    let etag = store
        .head(key)
        .await
        .ok()
        .and_then(|m| m.etag)
        .unwrap_or(etag);
    let bare = put_if_match(store, key, b"v3", &etag).await;
    let show = |r: &Result<(), Option<u16>>| match r {
        Ok(()) => "accepted".to_string(),
        Err(Some(s)) => format!("refused with {s}"),
        Err(None) => "no response".to_string(),
    };
    let detail = format!("quoted: {}; unquoted: {}", show(&quoted), show(&bare));
    let current = match (&quoted, &bare) {
        (Ok(()), _) => check("if_match_current", title_current, Verdict::Pass, detail),
        (Err(_), Ok(())) => check(
            "if_match_current",
            title_current,
            Verdict::Pass,
            format!("{detail} (the Ceph RGW quirk: tfsync retries with the unquoted ETag)"),
        ),
        (Err(_), Err(_)) => check("if_match_current", title_current, Verdict::Warn, detail).fix(
            "pushes that update a state will be refused as conflicts here; use another state store",
        ),
    };
    vec![stale, current]
}

/// DELETE with a stale `If-Match`: honoured (412, object kept) or ignored.
async fn conditional_delete(store: &S3Store, key: &str) -> Check {
    let title = "conditional DELETE (If-Match) honoured";
    if let Err(e) = store.put(key, b"d".to_vec(), PutMode::Overwrite).await {
        return check(
            "conditional_delete",
            title,
            Verdict::Warn,
            format!("could not set up: {e}"),
        );
    }
    match store
        .delete(key, Some("0123456789abcdef0123456789abcdef"))
        .await
    {
        Err(StoreError::Precondition { .. }) => check(
            "conditional_delete",
            title,
            Verdict::Pass,
            "a stale If-Match was refused and the object kept",
        ),
        Ok(()) => match store.head(key).await {
            Err(StoreError::NotFound { .. }) => check(
                "conditional_delete",
                title,
                Verdict::Warn,
                "ignored: the object was deleted despite a stale If-Match. tfsync never relies on it (it compares the lock ID before every delete)",
            ),
            _ => check(
                "conditional_delete",
                title,
                Verdict::Pass,
                "the object was kept",
            ),
        },
        Err(e) => check("conditional_delete", title, Verdict::Warn, format!("{e}")),
    }
}

/// A CRC32 checksum as a header, and the SDK's default aws-chunked upload
/// with a trailing checksum.
async fn checksums(store: &S3Store, prefix: &str) -> Vec<Check> {
    let body = b"checksum probe".to_vec();
    let crc =
        base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&body).to_be_bytes());
    let header = store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key(format!("{prefix}checksum-header"))
        .checksum_crc32(crc)
        .body(body.clone().into())
        .send()
        .await;
    let describe = |e: SdkError<_, _>| {
        let code = e.code().map(str::to_string);
        format!(
            "{} {}",
            status(&e).map_or("no response".into(), |s| s.to_string()),
            code.unwrap_or_default()
        )
        .trim()
        .to_string()
    };
    // The SDK sends a trailing checksum (aws-chunked) only for a streaming
    // body, such as a file; an in-memory body gets the header instead.
    let trailer = match streaming_body(&body).await {
        Ok((_file, stream)) => store
            .client()
            .put_object()
            .bucket(store.bucket())
            .key(format!("{prefix}checksum-trailer"))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(stream)
            .send()
            .await
            .map(|_| ())
            .map_err(describe),
        Err(e) => Err(format!("could not prepare the upload: {e}")),
    };
    let verdict = |r: Result<(), String>, what: &str| match r {
        Ok(()) => (Verdict::Pass, "accepted".to_string()),
        Err(e) => (
            Verdict::Warn,
            format!(
                "rejected ({e}); tfsync sends {what} only when an operation requires it and a Content-MD5 instead, so this costs nothing"
            ),
        ),
    };
    let (hv, hd) = verdict(header.map(|_| ()).map_err(describe), "checksums");
    let (tv, td) = verdict(trailer, "trailing checksums");
    vec![
        check(
            "checksum_header",
            "x-amz-checksum-crc32 header accepted",
            hv,
            hd,
        ),
        check(
            "checksum_trailer",
            "aws-chunked upload with a trailing CRC32 accepted",
            tv,
            td,
        ),
    ]
}

/// `body` as a file-backed stream (the file lives as long as the handle).
async fn streaming_body(
    body: &[u8],
) -> std::io::Result<(tempfile::NamedTempFile, aws_sdk_s3::primitives::ByteStream)> {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(body)?;
    file.flush()?;
    let stream = aws_sdk_s3::primitives::ByteStream::from_path(file.path())
        .await
        .map_err(std::io::Error::other)?;
    Ok((file, stream))
}

/// Remove every version and delete marker under the prefix, then make sure
/// nothing is left.
async fn cleanup(store: &S3Store, prefix: &str) -> Check {
    let title = "scratch objects removed (with versions and delete markers)";
    let mut problems = Vec::new();
    let mut listing_error = None;
    match store.list_versions(prefix).await {
        Ok(versions) => {
            for v in versions {
                if let Err(e) = store.delete_version(&v.key, &v.version_id).await {
                    problems.push(format!("{} version {}: {e}", v.key, v.version_id));
                }
            }
        }
        // Servers without versioning support (s3rver answers 405): the
        // plain listing below is all there is.
        Err(e) => listing_error = Some(format!("listing versions: {e}")),
    }
    // Unversioned stores, or a listing that missed something: plain deletes.
    if let Ok(left) = store.list(prefix).await {
        for m in left {
            if let Err(e) = store.delete(&m.key, None).await {
                problems.push(format!("{}: {e}", m.key));
            }
        }
    }
    let left_versions = store
        .list_versions(prefix)
        .await
        .map(|v| v.len())
        .unwrap_or(0);
    let left_objects = store.list(prefix).await.map(|v| v.len()).unwrap_or(0);
    if left_versions + left_objects > 0 {
        problems.push(format!(
            "{left_objects} object(s) and {left_versions} version(s) or delete marker(s) remain"
        ));
        problems.extend(listing_error);
    }
    if problems.is_empty() {
        check(
            "cleanup",
            title,
            Verdict::Pass,
            "nothing left under the prefix",
        )
    } else {
        check("cleanup", title, Verdict::Warn, problems.join("; ")).fix(format!(
            "remove what is left under {} with your S3 tool",
            store.location(prefix)
        ))
    }
}
