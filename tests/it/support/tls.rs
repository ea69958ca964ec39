//! A local HTTPS server with a certificate of the test's choosing (it answers
//! 501 to every S3 request), and openssl to make such certificates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Run `openssl ARGS` in `dir`; it must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl {args:?} failed");
}

/// A new key `keyout` and a self-signed certificate `out` for `subj`, both
/// valid one day, in `dir`; `extra` goes to `openssl req` as well.
pub fn self_signed(dir: &Path, subj: &str, extra: &[&str], keyout: &str, out: &str) {
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", subj,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-keyout", keyout, "-out", out]);
    openssl(dir, &args);
}

/// A private CA (`ca.pem`) and a certificate for 127.0.0.1 it signs
/// (`cert.pem`, key `key.pem`), in `dir`. Returns their paths.
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    self_signed(dir, "/CN=tfsync test CA", &[], "ca.key", "ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// Python's toy HTTPS server on 127.0.0.1, killed when dropped.
pub struct TlsServer {
    child: Child,
    /// `https://127.0.0.1:<port>`
    pub endpoint: String,
}

const SERVER: &str = r#"
import http.server, ssl, sys
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

impl TlsServer {
    /// Serve with the PEM certificate `cert` and its key `key`.
    pub fn start(cert: &Path, key: &Path) -> TlsServer {
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("port");
        let endpoint = format!("https://127.0.0.1:{}", line.trim());
        TlsServer { child, endpoint }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
