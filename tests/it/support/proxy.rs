//! A fault-injecting HTTP/1.1 proxy for tests: it sits between tfsync and a
//! real server, forwards each request on its own upstream connection
//! (`Connection: close`), records it, and applies the first rule whose
//! matcher fits: delay, answer an error without forwarding, forward and then
//! drop the response (the server applied the request, the client never
//! hears), or reset the connection in the middle of the response body.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Fault {
    Delay(Duration),
    /// Answer this status without forwarding (e.g. 500, 503 SlowDown).
    Respond(u16),
    /// Forward, let the server apply it, then close without answering.
    DropResponse,
    /// Forward, pass on this many bytes of the response, then reset.
    ResetAfter(usize),
    /// Read this many bytes of the request body, then reset; never forward.
    ResetRequestAfter(usize),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    /// The request path (query string removed) ends with this.
    pub path_ends: String,
    /// Apply to this many matching requests (then forward normally).
    pub times: usize,
    pub fault: Fault,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    /// The request's header lines, names lowercased (`name: value`).
    pub headers: Vec<String>,
}

impl Seen {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
        })
    }
}

#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Start a proxy on 127.0.0.1 in front of `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Proxy {
            port,
            rules: Arc::default(),
            seen: Arc::default(),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (p, upstream) = (p.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = p.handle(client, &upstream).await;
                });
            }
        });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.rules.lock().expect("rules").push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().expect("rules").clear();
        self.seen.lock().expect("seen").clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("rules");
        let rule = rules.iter_mut().find(|r| {
            r.times > 0
                && r.method == method
                && path.split('?').next().unwrap_or("").ends_with(&r.path_ends)
        })?;
        rule.times -= 1;
        Some(rule.fault.clone())
    }

    async fn handle(&self, mut client: TcpStream, upstream: &str) -> std::io::Result<()> {
        // Read the request head.
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 8192];
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let len: usize = lines
            .clone()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let fault = self.take_fault(&method, &path);
        let headers = head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| format!("{}:{v}", k.to_ascii_lowercase()))
            .collect();
        let mut seen = Seen {
            method,
            path,
            status: None,
            headers,
        };
        if let Some(Fault::ResetRequestAfter(n)) = fault {
            while buf.len() < head_end + n.min(len) {
                let mut chunk = vec![0u8; 4096];
                let got = client.read(&mut chunk).await?;
                if got == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            self.seen.lock().expect("seen").push(seen);
            let _ = client.set_zero_linger();
            return Ok(());
        }
        while buf.len() < head_end + len {
            let mut chunk = vec![0u8; 65536];
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        // One request per connection: rewrite the head with Connection: close.
        let mut out = Vec::new();
        for (i, line) in head.trim_end_matches("\r\n").split("\r\n").enumerate() {
            if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
                continue;
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&buf[head_end..]);

        match fault {
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::Respond(code)) => {
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>injected</Message></Error>",
                    if code == 503 {
                        "SlowDown"
                    } else {
                        "InternalError"
                    }
                );
                let resp = format!(
                    "HTTP/1.1 {code} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                // Recorded before answering: the client may exit (and the
                // test count) as soon as it has the answer.
                seen.status = Some(code);
                self.seen.lock().expect("seen").push(seen);
                client.write_all(resp.as_bytes()).await?;
                return Ok(());
            }
            _ => {}
        }
        let mut up = TcpStream::connect(upstream).await?;
        up.write_all(&out).await?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp).await?;
        seen.status = std::str::from_utf8(&resp[..resp.len().min(12)])
            .ok()
            .and_then(|s| s.get(9..12))
            .and_then(|s| s.parse().ok());
        self.seen.lock().expect("seen").push(seen);
        match fault {
            Some(Fault::DropResponse) => {
                let _ = client.set_zero_linger();
                Ok(())
            }
            Some(Fault::ResetAfter(n)) => {
                client.write_all(&resp[..n.min(resp.len())]).await?;
                let _ = client.set_zero_linger();
                Ok(())
            }
            _ => client.write_all(&resp).await,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
