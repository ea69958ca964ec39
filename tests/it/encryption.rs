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

    // aws:kms from the environment's KMS key, with TFSYNC_SSE (tfsync's
    // `encrypt`): a KMS key alone is not applied, as in Terraform.
    std::fs::write(&f, state("enc", 2, 1)).expect("w");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("TFSYNC_KMS_KEY_ID", "alias/tfsync-test")
        .env("TFSYNC_SSE", "aws:kms")
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

    // SSE-C: written and read back with the customer key (and --sse AES256,
    // tfsync's `encrypt = true`).
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    std::fs::write(&f, state("enc", 3, 1)).expect("w");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", &key)
        .args(["--sse", "AES256", "push"])
        .arg(&f));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(server
        .tfsync(&bucket, KEY)
        .env("AWS_SSE_CUSTOMER_KEY", &key)
        .args(["--sse", "AES256", "pull"]));
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

/// A customer key (from the block or AWS_SSE_CUSTOMER_KEY).
fn customer_key(byte: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// A directory whose backend "s3" block has `attrs` (bucket, key and the
/// endpoint come from the environment).
fn backend_dir(attrs: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("backend.tf"),
        format!("terraform {{\n  backend \"s3\" {{\n    use_lockfile = true\n{attrs}  }}\n}}\n"),
    )
    .expect("backend.tf");
    d
}

/// The SSE headers of one request, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sent {
    sse: Option<String>,
    kms: Option<String>,
    /// SSE-C: (algorithm, key, key MD5) all sent.
    customer_key: Option<String>,
}

fn sent(s: &crate::support::proxy::Seen) -> Sent {
    let h = |n: &str| s.header(n).map(str::to_string);
    let algorithm = h("x-amz-server-side-encryption-customer-algorithm");
    let key = h("x-amz-server-side-encryption-customer-key");
    let md5 = h("x-amz-server-side-encryption-customer-key-md5");
    assert_eq!(
        (algorithm.is_some(), md5.is_some()),
        (key.is_some(), key.is_some()),
        "the SSE-C headers go together: {s:?}"
    );
    if key.is_some() {
        assert_eq!(algorithm.as_deref(), Some("AES256"), "{s:?}");
    }
    Sent {
        sse: h("x-amz-server-side-encryption"),
        kms: h("x-amz-server-side-encryption-aws-kms-key-id"),
        customer_key: key,
    }
}

/// Terraform's rules (`internal/backend/remote-state/s3/client.go`: `put`,
/// `lockWithFile`, `get`, `unlockWithFile`), checked on the wire through a
/// recording proxy in front of moto: for each configuration, the headers of
/// every PUT (lock and state) and every GET/HEAD that `push`, `pull`,
/// `lock`, `status` and `unlock` send. A KMS key or a customer key without
/// `encrypt` is not sent (and warned about); `encrypt` with a customer key
/// is SSE-C on writes and reads.
async fn terraforms_encryption_rules_on_the_wire(server: Server) {
    use crate::support::proxy::Proxy;
    let store = server.new_bucket("encwire").await;
    let bucket = store.bucket().to_string();
    let proxy = Proxy::start(server.endpoint().trim_start_matches("http://").to_string()).await;
    let (k1, k2) = (customer_key(1), customer_key(2));
    let aes = Sent {
        sse: Some("AES256".into()),
        ..Default::default()
    };
    let kms = Sent {
        sse: Some("aws:kms".into()),
        kms: Some("alias/tfsync-wire".into()),
        ..Default::default()
    };
    let ssec = |k: &str| Sent {
        customer_key: Some(k.to_string()),
        ..Default::default()
    };
    struct Row<'a> {
        name: &'a str,
        block: String,
        env: Vec<(&'a str, &'a str)>,
        flags: Vec<&'a str>,
        /// Headers on every PUT, and on every GET / HEAD.
        put: Sent,
        read: Sent,
        /// A warning that a key is not applied.
        warned: bool,
    }
    let kms_attr = "    kms_key_id = \"alias/tfsync-wire\"\n";
    let rows = vec![
        Row {
            name: "nothing",
            block: String::new(),
            env: vec![],
            flags: vec![],
            put: Sent::default(),
            read: Sent::default(),
            warned: false,
        },
        Row {
            name: "encrypt",
            block: "    encrypt = true\n".into(),
            env: vec![],
            flags: vec![],
            put: aes.clone(),
            read: Sent::default(),
            warned: false,
        },
        Row {
            name: "encrypt + kms_key_id",
            block: format!("    encrypt = true\n{kms_attr}"),
            env: vec![],
            flags: vec![],
            put: kms.clone(),
            read: Sent::default(),
            warned: false,
        },
        Row {
            name: "kms_key_id without encrypt",
            block: kms_attr.into(),
            env: vec![],
            flags: vec![],
            put: Sent::default(),
            read: Sent::default(),
            warned: true,
        },
        Row {
            name: "encrypt + sse_customer_key",
            block: format!("    encrypt = true\n    sse_customer_key = \"{k1}\"\n"),
            env: vec![("AWS_SSE_CUSTOMER_KEY", k2.as_str())],
            flags: vec![],
            put: ssec(&k1),
            read: ssec(&k1),
            warned: false,
        },
        Row {
            name: "encrypt + AWS_SSE_CUSTOMER_KEY",
            block: "    encrypt = true\n".into(),
            env: vec![("AWS_SSE_CUSTOMER_KEY", k2.as_str())],
            flags: vec![],
            put: ssec(&k2),
            read: ssec(&k2),
            warned: false,
        },
        Row {
            name: "--sse AES256 + AWS_SSE_CUSTOMER_KEY",
            block: String::new(),
            env: vec![("AWS_SSE_CUSTOMER_KEY", k2.as_str())],
            flags: vec!["--sse", "AES256"],
            put: ssec(&k2),
            read: ssec(&k2),
            warned: false,
        },
        Row {
            name: "AWS_SSE_CUSTOMER_KEY without encrypt",
            block: String::new(),
            env: vec![("AWS_SSE_CUSTOMER_KEY", k2.as_str())],
            flags: vec![],
            put: Sent::default(),
            read: Sent::default(),
            warned: true,
        },
        Row {
            name: "sse_customer_key without encrypt",
            block: format!("    encrypt = false\n    sse_customer_key = \"{k1}\"\n"),
            env: vec![],
            flags: vec![],
            put: Sent::default(),
            read: Sent::default(),
            warned: true,
        },
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.tfstate");
    // Every row is checked; the failures are reported together.
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let key = format!("wire/{i}/terraform.tfstate");
        let d = backend_dir(&row.block);
        let tfsync = |args: &[&str]| {
            let mut c = server.tfsync(&bucket, &key);
            c.env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
                .arg("--chdir")
                .arg(d.path())
                .args(&row.flags)
                .args(args);
            for (k, v) in &row.env {
                c.env(k, v);
            }
            run(&mut c)
        };
        let check = || -> Result<(), String> {
            std::fs::write(&f, state("wire", 1, 1)).expect("w");
            proxy.clear();
            let r = tfsync(&["push", &f.to_string_lossy()]);
            if r.code != 0 {
                return Err(format!("push: {r:?}"));
            }
            if r.stderr.contains("is not applied") != row.warned {
                return Err(format!("warning expected: {}: {r:?}", row.warned));
            }
            for args in [&["pull"][..], &["status"], &["lock"]] {
                let r = tfsync(args);
                if r.code != 0 {
                    return Err(format!("{args:?}: {r:?}"));
                }
                if args == ["lock"] {
                    let r = tfsync(&["unlock", r.stdout.trim()]);
                    if r.code != 0 {
                        return Err(format!("unlock: {r:?}"));
                    }
                }
            }
            let seen = proxy.seen();
            let (mut puts, mut reads) = (0, 0);
            for s in &seen {
                let (want, n) = match s.method.as_str() {
                    "PUT" => (&row.put, &mut puts),
                    "GET" | "HEAD" if !s.path.contains("list-type") => (&row.read, &mut reads),
                    _ => continue,
                };
                *n += 1;
                let got = sent(s);
                if got != *want {
                    return Err(format!(
                        "{} {}: sent {got:?}, want {want:?}",
                        s.method, s.path
                    ));
                }
            }
            // push: the lock and the state; lock: the lock. Reads of the
            // state (push, pull, status) and of the lock (unlock).
            if puts < 3 || reads < 4 {
                return Err(format!("too few requests seen: {seen:?}"));
            }
            Ok(())
        };
        if let Err(e) = check() {
            failures.push(format!("{}: {e}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A KMS key with a customer key: refused before any request (exit 2),
    // encrypt or not, as Terraform refuses it; the key is never echoed.
    for block in [
        format!("    encrypt = true\n{kms_attr}"),
        kms_attr.to_string(),
    ] {
        let d = backend_dir(&block);
        proxy.clear();
        let r = run(server
            .tfsync(&bucket, "wire/refused/terraform.tfstate")
            .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
            .env("AWS_SSE_CUSTOMER_KEY", &k2)
            .arg("--chdir")
            .arg(d.path())
            .arg("status"));
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains("kms_key_id") && !r.stderr.contains(&k2),
            "{r:?}"
        );
        assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    }
}

/// SSE-C round trip on SeaweedFS, which enforces it (an object written with
/// the key cannot be read without it): `encrypt = true` + the customer key
/// in the block; push, pull, lock, status, unlock all with the key; neither
/// the state nor the lock is readable without it.
async fn sse_c_round_trip(server: Server) {
    let store = server.new_bucket("ssec").await;
    let bucket = store.bucket().to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.tfstate");
    let bytes = state("ssec", 1, 1);
    std::fs::write(&f, &bytes).expect("w");
    let key = customer_key(9);
    let d = backend_dir(&format!(
        "    encrypt = true\n    sse_customer_key = \"{key}\"\n"
    ));
    let with_key = |args: &[&str]| {
        run(server
            .tfsync(&bucket, KEY)
            .arg("--chdir")
            .arg(d.path())
            .args(args))
    };
    let r = with_key(&["push", &f.to_string_lossy()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("sets sse_customer_key"), "{r:?}");
    assert!(!r.stderr.contains(&key), "{r:?}");
    let r = with_key(&["pull"]);
    assert_eq!(
        (r.code, r.stdout.as_bytes()),
        (0, bytes.as_slice()),
        "{r:?}"
    );
    let r = with_key(&["lock", "--info", "ssec"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let r = with_key(&["--output", "json", "status"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["lock"]["ID"], id.as_str(), "{v}");
    assert_eq!(v["state"]["serial"], 1, "{v}");
    // Without the key (no `encrypt`, no key): neither object can be read.
    let r = run(server.tfsync(&bucket, KEY).arg("pull"));
    assert_ne!(r.code, 0, "state readable without the key: {r:?}");
    assert!(
        store.get(&format!("{KEY}.tflock")).await.is_err(),
        "lock readable without the key"
    );
    let r = with_key(&["unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = with_key(&["--output", "json", "status"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert!(v["lock"].is_null(), "{v}");
}

on_each_server!([moto] sse_and_acl_apply_to_lock_and_state, terraforms_encryption_rules_on_the_wire);
on_each_server!([seaweedfs] sse_c_round_trip);
