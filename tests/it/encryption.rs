//! Server-side encryption and ACL settings reach the lock and the state
//! alike (as in Terraform's s3 backend). moto applies and reports them over
//! plain http; Ceph RGW refuses SSE without TLS and SeaweedFS 4.48 answers
//! 500 to SSE-S3 (README, Configuration), so this runs on moto.

use crate::support::{Server, run, state};
use tfsync::store::ObjectStore;

const KEY: &str = "enc/terraform.tfstate";

/// The server-side encryption a HEAD reports.
fn sse(h: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> Option<&str> {
    h.server_side_encryption().map(|s| s.as_str())
}

async fn sse_and_acl_apply_to_lock_and_state(server: Server) {
    let store = server.new_bucket("enc").await;
    let bucket = store.bucket().to_string();
    let head = |key: &'static str| {
        let c = store.client().clone();
        let b = bucket.clone();
        async move {
            c.head_object()
                .bucket(b)
                .key(key)
                .send()
                .await
                .expect("head")
        }
    };
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.tfstate");

    // AES256 + ACL, from flags: the lock (held by `lock`) and the state.
    std::fs::write(&f, state("enc", 1, 1)).expect("w");
    let r = run(server.tfsync(&bucket, KEY).args([
        "--sse",
        "AES256",
        "--acl",
        "bucket-owner-full-control",
        "lock",
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let h = head("enc/terraform.tfstate.tflock").await;
    assert_eq!(sse(&h), Some("AES256"));
    let r = run(server
        .tfsync(&bucket, KEY)
        .args(["--sse", "AES256", "push", "--lock-id", &id])
        .arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    let h = head(KEY).await;
    assert_eq!(sse(&h), Some("AES256"));
    assert_eq!(
        run(server.tfsync(&bucket, KEY).args(["unlock", &id])).code,
        0
    );

    // aws:kms from the environment's KMS key (implies aws:kms).
    std::fs::write(&f, state("enc", 2, 1)).expect("w");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("TFSYNC_KMS_KEY_ID", "alias/tfsync-test")
        .arg("push")
        .arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    let h = head(KEY).await;
    assert_eq!(sse(&h), Some("aws:kms"));
    assert!(
        h.ssekms_key_id().is_some_and(|k| k.contains("tfsync-test")),
        "{h:?}"
    );

    // Bad settings are configuration errors, and never echo a customer key.
    let r = run(server
        .tfsync(&bucket, KEY)
        .args(["--sse", "rot13", "status"]));
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", "c2VjcmV0LWJ1dC10b28tc2hvcnQ=")
        .arg("status"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("c2VjcmV0"), "{r:?}");

    // SSE-C: written and read back with the customer key.
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    std::fs::write(&f, state("enc", 3, 1)).expect("w");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", &key)
        .arg("push")
        .arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", &key)
        .arg("pull"));
    assert_eq!(
        (r.code, r.stdout.as_bytes()),
        (0, state("enc", 3, 1).as_slice()),
        "{r:?}"
    );
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", &key)
        .args(["--output", "json", "config"]));
    assert!(
        r.stdout.contains("never shown") && !r.stdout.contains(&key),
        "{r:?}"
    );
}

/// SeaweedFS enforces SSE-C: an object written with the customer key cannot
/// be read without it, which shows the key really travels with the PUT.
/// (Reading it back *with* the key fails in the SDK: SeaweedFS 4.48 repeats
/// the key-MD5 header, which aws-sdk-s3 cannot parse.)
async fn sse_c_key_is_sent(server: Server) {
    let store = server.new_bucket("ssec").await;
    let bucket = store.bucket().to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.tfstate");
    std::fs::write(&f, state("ssec", 1, 1)).expect("w");
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", &key)
        .arg("push")
        .arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(server.tfsync(&bucket, KEY).arg("pull"));
    assert_ne!(r.code, 0, "readable without the key: {r:?}");
    assert!(r.stderr.contains("customer"), "{r:?}");
}

on_each_server!([moto] sse_and_acl_apply_to_lock_and_state);
on_each_server!([seaweedfs] sse_c_key_is_sent);
