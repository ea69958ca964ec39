//! `--provider` presets on the wire: a one-shot local HTTP listener records
//! the lock's create-only PUT exactly as tfsync sends it. (No GCS or OSS
//! server is available here: this shows what is sent, not how they answer.)

use std::io::{Read, Write};
use std::net::TcpListener;

/// Serve one request with `200 OK`; return its request line and headers.
fn one_request(listener: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut chunk).expect("read");
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let head_end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(buf.len());
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        // Read the body too (Content-Length), then answer.
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut have = buf.len().saturating_sub(head_end + 4);
        while have < len {
            let n = conn.read(&mut chunk).expect("read body");
            if n == 0 {
                break;
            }
            have += n;
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nETag: \"0123456789abcdef0123456789abcdef\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("answer");
        head
    })
}

fn lock_with(provider: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = one_request(listener);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir().join("tfsync-test-home"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
        .args([
            "--provider",
            provider,
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--bucket",
            "b",
            "--key",
            "k.tfstate",
            "--max-attempts",
            "1",
            "lock",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.join().expect("listener")
}

#[test]
fn gcs_sends_its_create_only_header() {
    let head = lock_with("gcs");
    assert!(head.starts_with("put /b/k.tfstate.tflock"), "{head}");
    assert!(head.contains("\r\nx-goog-if-generation-match: 0"), "{head}");
    assert!(head.contains("\r\nif-none-match: *"), "{head}");
    assert!(
        head.contains("/auto/s3/aws4_request"),
        "GCS signs for region auto: {head}"
    );
}

#[test]
fn minio_sends_only_the_standard_condition() {
    let head = lock_with("minio");
    assert!(head.contains("\r\nif-none-match: *"), "{head}");
    assert!(
        !head.contains("x-goog") && !head.contains("x-oss"),
        "{head}"
    );
}
