//! Google Cloud Storage over its JSON API, the calls Terraform's gcs backend
//! makes (`internal/backend/remote-state/gcs/client.go`), as an
//! [`ObjectStore`](super::ObjectStore).
//!
//! An object's ETag here is its **generation** (a decimal number GCS gives
//! every write of a name): `PutMode::Create` is an upload with
//! `ifGenerationMatch=0` (only if no live object has the name: the lock's
//! create), `PutMode::Update(g)` one with `ifGenerationMatch=g`, and a
//! conditional delete carries `ifGenerationMatch` too. A read is the object's
//! metadata (its generation) and then its bytes pinned to that generation
//! (`generation=` and `ifGenerationMatch=`), so the bytes are those of the
//! generation reported.
//!
//! Credentials (`gcp_auth` for service-account keys and Application Default
//! Credentials; a static OAuth access token) are sent only over https; an
//! `http://` endpoint (the emulator) gets no `Authorization` header at all.
//! No credential, token or key is ever in a message or a `Debug` output.
//!
//! Customer-supplied encryption keys (`encryption_key`) and a Cloud KMS key
//! (`kms_encryption_key`) apply to every object but locks (`*.tflock`), as
//! Terraform applies them to the state file only.

use super::{GetResult, ObjectId, ObjectMeta, PutMode, Result, StoreError};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;

/// GCS's own endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// The OAuth scope asked for (read and write objects).
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// Characters percent-encoded in an object name in a path or a query value
/// (RFC 3986 unreserved are kept; `/` is encoded, as GCS requires).
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum GcsAuth {
    /// No `Authorization` header (an emulator on plain http).
    Anonymous,
    /// A static OAuth 2 access token (`access_token`,
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`).
    Token(String),
    /// A service account key, as JSON (`credentials`,
    /// `GOOGLE_BACKEND_CREDENTIALS`, `GOOGLE_CREDENTIALS`).
    ServiceAccountJson(String),
    /// Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's, the metadata server), looked up at the first request.
    Default,
}

impl std::fmt::Debug for GcsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token or the key.
        f.write_str(match self {
            GcsAuth::Anonymous => "Anonymous",
            GcsAuth::Token(_) => "Token(..)",
            GcsAuth::ServiceAccountJson(_) => "ServiceAccountJson(..)",
            GcsAuth::Default => "Default",
        })
    }
}

impl PartialEq for GcsAuth {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
impl Eq for GcsAuth {}

/// Everything a GCS store is built from.
#[derive(Clone, PartialEq, Eq)]
pub struct GcsOptions {
    pub bucket: String,
    /// `scheme://host[:port]` (a path such as `/storage/v1/` is dropped:
    /// the API paths are fixed).
    pub endpoint: String,
    pub auth: GcsAuth,
    /// The customer-supplied AES-256 key, base64 (`encryption_key`).
    pub encryption_key: Option<String>,
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/K`.
    pub kms_key: Option<String>,
    pub verbose: bool,
}

impl std::fmt::Debug for GcsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GcsOptions(gs://{} at {}, auth {:?}, csek {}, kms {:?})",
            self.bucket,
            self.endpoint,
            self.auth,
            if self.encryption_key.is_some() {
                "set"
            } else {
                "none"
            },
            self.kms_key
        )
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

enum Tokens {
    None,
    Static(String),
    Provider(Arc<dyn gcp_auth::TokenProvider>),
    /// Application Default Credentials, found at the first request.
    Lazy(tokio::sync::OnceCell<Arc<dyn gcp_auth::TokenProvider>>),
}

/// A CSEK: the key and its SHA-256, both base64, as the headers want them.
#[derive(Clone)]
struct Csek {
    key: String,
    sha256: String,
}

/// One bucket of GCS (or of an emulator).
#[derive(Clone)]
pub struct GcsStore {
    bucket: String,
    origin: String,
    tokens: Arc<Tokens>,
    csek: Option<Csek>,
    kms_key: Option<String>,
    verbose: bool,
    http: Client<Https, Full<Bytes>>,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token or the key.
        write!(f, "GcsStore(gs://{} at {})", self.bucket, self.origin)
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct GcsResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl GcsResponse {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// GCS's error message (`error.message`), cut short and made printable.
    fn message(&self) -> String {
        let m = self.json()["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        let m: String = m.chars().filter(|c| !c.is_control()).take(300).collect();
        m
    }
}

/// Is the key a lock (no CSEK, no KMS key: Terraform writes locks without)?
fn is_lock(key: &str) -> bool {
    key.ends_with(crate::tfstate::keys::LOCK_SUFFIX)
}

/// `scheme://host[:port]` of an endpoint, or why it is not one.
pub fn origin_of(endpoint: &str) -> std::result::Result<String, String> {
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| format!("endpoint {endpoint:?} must start with http:// or https://"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "endpoint {endpoint:?} must start with http:// or https://"
        ));
    }
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("endpoint {endpoint:?} has no host"));
    }
    Ok(format!("{scheme}://{host}"))
}

impl GcsStore {
    /// The store of `opts` (no request is sent; ADC is looked up at the
    /// first request).
    pub fn new(opts: &GcsOptions) -> Result<Self> {
        let location = format!("gs://{}", opts.bucket);
        let other = |message: String| StoreError::Other {
            location: location.clone(),
            message,
        };
        let origin = origin_of(&opts.endpoint).map_err(other)?;
        let tokens = match &opts.auth {
            GcsAuth::Anonymous => Tokens::None,
            GcsAuth::Token(t) => Tokens::Static(t.trim().to_string()),
            GcsAuth::ServiceAccountJson(json) => {
                let sa = gcp_auth::CustomServiceAccount::from_json(json).map_err(|e| {
                    other(format!(
                        "the credentials are not a service account key: {}",
                        redact(&e.to_string())
                    ))
                })?;
                Tokens::Provider(Arc::new(sa))
            }
            GcsAuth::Default => Tokens::Lazy(tokio::sync::OnceCell::new()),
        };
        let csek = match &opts.encryption_key {
            None => None,
            Some(k) => {
                use sha2::Digest;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(k.trim())
                    .map_err(|_| other("encryption_key is not base64".into()))?;
                if raw.len() != 32 {
                    return Err(other(format!(
                        "encryption_key is {} bytes once decoded: a customer-supplied key is 32 bytes (AES-256)",
                        raw.len()
                    )));
                }
                Some(Csek {
                    key: k.trim().to_string(),
                    sha256: base64::engine::general_purpose::STANDARD
                        .encode(sha2::Sha256::digest(&raw)),
                })
            }
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| other(format!("cannot load the system's CA certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(GcsStore {
            bucket: opts.bucket.clone(),
            origin,
            tokens: Arc::new(tokens),
            csek,
            kms_key: opts.kms_key.clone(),
            verbose: opts.verbose,
            http: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// `gs://bucket/key`, for messages.
    pub fn gs(&self, key: &str) -> String {
        format!("gs://{}/{key}", self.bucket)
    }

    async fn token(&self, location: &str) -> Result<Option<String>> {
        if self.origin.starts_with("http://") && !matches!(self.tokens.as_ref(), Tokens::None) {
            // Checked per request, so that `tfsync config` still shows it.
            return Err(StoreError::Other {
                location: location.to_string(),
                message: format!(
                    "endpoint {} is plain http: tfsync sends no Google credentials over it (use https, or an emulator without credentials)",
                    self.origin
                ),
            });
        }
        let fail = |e: gcp_auth::Error| StoreError::AccessDenied {
            location: location.to_string(),
            message: format!(
                "no Google credentials: {}. Set credentials / GOOGLE_CREDENTIALS / GOOGLE_APPLICATION_CREDENTIALS, or access_token / GOOGLE_OAUTH_ACCESS_TOKEN",
                redact(&e.to_string())
            ),
        };
        let provider = match self.tokens.as_ref() {
            Tokens::None => return Ok(None),
            Tokens::Static(t) => return Ok(Some(t.clone())),
            Tokens::Provider(p) => p.clone(),
            Tokens::Lazy(cell) => cell
                .get_or_try_init(gcp_auth::provider)
                .await
                .map_err(fail)?
                .clone(),
        };
        let token = provider.token(&[SCOPE]).await.map_err(fail)?;
        Ok(Some(token.as_str().to_string()))
    }

    /// One request, retried (3 tries in all, 100 ms then 400 ms apart) when
    /// the connection fails or the server answers 429 or 5xx. A retried
    /// conditional upload is safe: the retry of a create whose first answer
    /// was lost gets 412, and the lock then recognises its own JSON.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Vec<u8>,
        location: &str,
    ) -> Result<GcsResponse> {
        let mut wait = std::time::Duration::from_millis(100);
        let mut tries = 0;
        loop {
            tries += 1;
            let r = self
                .request_once(method.clone(), path, query, headers, body.clone(), location)
                .await;
            let again = match &r {
                Err(StoreError::Transport { .. } | StoreError::BodyInterrupted { .. }) => true,
                Ok(resp) => resp.status == 429 || resp.status >= 500,
                Err(_) => false,
            };
            if !again || tries >= 3 {
                return r;
            }
            if self.verbose {
                eprintln!("tfsync: gcs {method} {location}: retrying in {wait:?}");
            }
            tokio::time::sleep(wait).await;
            wait *= 4;
        }
    }

    async fn request_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Vec<u8>,
        location: &str,
    ) -> Result<GcsResponse> {
        let other = |message: String| StoreError::Other {
            location: location.to_string(),
            message,
        };
        let mut url = format!("{}{path}", self.origin);
        if !query.is_empty() {
            let qs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", enc(v)))
                .collect();
            url.push('?');
            url.push_str(&qs.join("&"));
        }
        let mut req = Request::builder().method(method.clone()).uri(&url);
        let h = req
            .headers_mut()
            .ok_or_else(|| other(format!("bad request URL {url}")))?;
        let mut put = |k: &str, v: &str| -> Result<()> {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| other(format!("header {k}: {e}")))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|_| other(format!("header {k}: not a valid header value")))?;
            h.insert(name, value);
            Ok(())
        };
        put("content-length", &body.len().to_string())?;
        put("user-agent", concat!("tfsync/", env!("CARGO_PKG_VERSION")))?;
        for (k, v) in headers {
            put(k, v)?;
        }
        if let Some(t) = self.token(location).await? {
            put("authorization", &format!("Bearer {t}"))?;
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| other(e.to_string()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| StoreError::Transport {
                location: location.to_string(),
                message: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if self.verbose {
            eprintln!("tfsync: gcs {method} {url} -> {status}");
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| StoreError::BodyInterrupted {
                location: location.to_string(),
                message: e.to_string(),
            })?
            .to_bytes()
            .to_vec();
        Ok(GcsResponse { status, body })
    }

    fn object_path(&self, key: &str) -> String {
        format!("/storage/v1/b/{}/o/{}", enc(&self.bucket), enc(key))
    }

    fn csek_headers(&self, key: &str) -> Vec<(&'static str, String)> {
        match &self.csek {
            Some(c) if !is_lock(key) => vec![
                ("x-goog-encryption-algorithm", "AES256".into()),
                ("x-goog-encryption-key", c.key.clone()),
                ("x-goog-encryption-key-sha256", c.sha256.clone()),
            ],
            _ => Vec::new(),
        }
    }

    fn fail(&self, key: &str, r: &GcsResponse) -> StoreError {
        let location = self.gs(key);
        let message = r.message();
        match r.status {
            404 if message.contains("bucket") && !message.contains("object") => {
                StoreError::BucketNotFound {
                    bucket: self.bucket.clone(),
                }
            }
            404 => StoreError::NotFound { location },
            401 | 403 => StoreError::AccessDenied {
                location,
                message: format!("HTTP {} {message}", r.status),
            },
            412 => StoreError::Precondition { location },
            s => StoreError::Other {
                location,
                message: format!("HTTP {s} {message}"),
            },
        }
    }

    fn meta_of(&self, key: &str, v: &serde_json::Value) -> Result<ObjectMeta> {
        let generation = v["generation"]
            .as_str()
            .map(str::to_string)
            .or_else(|| v["generation"].as_u64().map(|g| g.to_string()));
        let size = v["size"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v["size"].as_u64());
        let (Some(generation), Some(size)) = (generation, size) else {
            return Err(StoreError::Other {
                location: self.gs(key),
                message: "the object metadata has no generation or size".into(),
            });
        };
        Ok(ObjectMeta {
            key: v["name"].as_str().unwrap_or(key).to_string(),
            size,
            etag: Some(generation),
            last_modified: v["updated"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        })
    }

    /// The object's metadata (its generation as the ETag).
    async fn metadata(&self, key: &str) -> Result<ObjectMeta> {
        let r = self
            .request(
                Method::GET,
                &self.object_path(key),
                &[],
                &self.csek_headers(key),
                Vec::new(),
                &self.gs(key),
            )
            .await?;
        if r.status != 200 {
            return Err(self.fail(key, &r));
        }
        self.meta_of(key, &r.json())
    }

    /// Is the bucket's object versioning on (`versioning.enabled`)?
    pub async fn versioning(&self) -> Result<bool> {
        let path = format!("/storage/v1/b/{}", enc(&self.bucket));
        let r = self
            .request(Method::GET, &path, &[], &[], Vec::new(), &self.describe_())
            .await?;
        if r.status != 200 {
            return Err(match r.status {
                404 => StoreError::BucketNotFound {
                    bucket: self.bucket.clone(),
                },
                _ => self.fail("", &r),
            });
        }
        Ok(r.json()["versioning"]["enabled"].as_bool().unwrap_or(false))
    }

    fn describe_(&self) -> String {
        format!("gs://{}", self.bucket)
    }

    /// Upload `body` to `key` (a media upload), with `ifGenerationMatch`
    /// when `generation` is given; the new object's metadata.
    async fn upload(
        &self,
        key: &str,
        body: Vec<u8>,
        generation: Option<&str>,
    ) -> std::result::Result<ObjectMeta, (u16, StoreError)> {
        let mut q = vec![
            ("uploadType", "media".to_string()),
            ("name", key.to_string()),
        ];
        if let Some(g) = generation {
            q.push(("ifGenerationMatch", g.to_string()));
        }
        if let Some(k) = &self.kms_key
            && !is_lock(key)
        {
            q.push(("kmsKeyName", k.clone()));
        }
        // text/plain, as Terraform's Go client sniffs a state (and the
        // emulator would parse an application/json body as JSON).
        let mut h = vec![("content-type", "text/plain; charset=utf-8".to_string())];
        h.extend(self.csek_headers(key));
        let path = format!("/upload/storage/v1/b/{}/o", enc(&self.bucket));
        let r = self
            .request(Method::POST, &path, &q, &h, body, &self.gs(key))
            .await
            .map_err(|e| (0, e))?;
        if r.status != 200 {
            return Err((r.status, self.fail(key, &r)));
        }
        self.meta_of(key, &r.json()).map_err(|e| (0, e))
    }
}

/// Drop anything that looks like a secret from a library's message.
fn redact(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            if w.len() > 40
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.=/+".contains(c))
            {
                "<redacted>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait::async_trait]
impl super::ObjectStore for GcsStore {
    fn describe(&self) -> String {
        format!("gs://{}", self.bucket)
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn as_gcs(&self) -> Option<&GcsStore> {
        Some(self)
    }

    async fn identities(&self, key: &str) -> Result<Vec<ObjectId>> {
        Ok(vec![ObjectId::Remote {
            endpoint: format!("gcs:{}", self.origin),
            bucket: self.bucket.clone(),
            key: key.to_string(),
        }])
    }

    /// The metadata, then the bytes of exactly that generation.
    async fn get(&self, key: &str) -> Result<GetResult> {
        for _ in 0..5 {
            let meta = self.metadata(key).await?;
            let generation = meta.etag.clone().unwrap_or_default();
            let r = self
                .request(
                    Method::GET,
                    &self.object_path(key),
                    &[
                        ("alt", "media".into()),
                        ("generation", generation.clone()),
                        ("ifGenerationMatch", generation),
                    ],
                    &self.csek_headers(key),
                    Vec::new(),
                    &self.gs(key),
                )
                .await?;
            match r.status {
                200 => {
                    let mut meta = meta;
                    meta.size = r.body.len() as u64;
                    return Ok(GetResult {
                        meta,
                        bytes: r.body,
                    });
                }
                // Replaced (or deleted) between the two requests: again.
                404 | 412 => continue,
                _ => return Err(self.fail(key, &r)),
            }
        }
        Err(StoreError::Other {
            location: self.gs(key),
            message: "the object changed on every read (5 tries); retry".into(),
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.metadata(key).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<String>> {
        let generation = match &mode {
            PutMode::Overwrite => None,
            PutMode::Create => Some("0".to_string()),
            PutMode::Update(g) => {
                if g.parse::<u64>().is_err() {
                    // Not a generation of this store: it cannot match.
                    return Err(StoreError::Precondition {
                        location: self.gs(key),
                    });
                }
                Some(g.clone())
            }
        };
        match self.upload(key, body, generation.as_deref()).await {
            Ok(meta) => Ok(meta.etag),
            Err((412, _)) if mode == PutMode::Create => Err(StoreError::AlreadyExists {
                location: self.gs(key),
            }),
            // ifGenerationMatch on a missing object is a 412 too.
            Err((_, e)) => Err(e),
        }
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        let q: Vec<(&str, String)> = if_match
            .filter(|g| g.parse::<u64>().is_ok())
            .map(|g| ("ifGenerationMatch", g.to_string()))
            .into_iter()
            .collect();
        let r = self
            .request(
                Method::DELETE,
                &self.object_path(key),
                &q,
                &[],
                Vec::new(),
                &self.gs(key),
            )
            .await?;
        match r.status {
            // GCS answers 204; the emulator 200.
            200 | 204 => Ok(()),
            404 => match self.fail(key, &r) {
                e @ StoreError::BucketNotFound { .. } => Err(e),
                _ => Ok(()),
            },
            _ => Err(self.fail(key, &r)),
        }
    }

    /// One DELETE with `ifGenerationMatch`: 404 is "gone already", 412
    /// "another generation is there".
    async fn delete_if(&self, key: &str, etag: &str) -> Result<bool> {
        if etag.parse::<u64>().is_err() {
            return Err(StoreError::Precondition {
                location: self.gs(key),
            });
        }
        let r = self
            .request(
                Method::DELETE,
                &self.object_path(key),
                &[("ifGenerationMatch", etag.to_string())],
                &[],
                Vec::new(),
                &self.gs(key),
            )
            .await?;
        match r.status {
            200 | 204 => Ok(true),
            404 => match self.fail(key, &r) {
                e @ StoreError::BucketNotFound { .. } => Err(e),
                _ => Ok(false),
            },
            _ => Err(self.fail(key, &r)),
        }
    }

    /// Every object under `prefix`, all pages (`nextPageToken`), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let path = format!("/storage/v1/b/{}/o", enc(&self.bucket));
        loop {
            let mut q = vec![("prefix", prefix.to_string())];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let r = self
                .request(Method::GET, &path, &q, &[], Vec::new(), &self.gs(prefix))
                .await?;
            if r.status != 200 {
                return Err(match r.status {
                    404 => StoreError::BucketNotFound {
                        bucket: self.bucket.clone(),
                    },
                    _ => self.fail(prefix, &r),
                });
            }
            let v = r.json();
            if let Some(items) = v["items"].as_array() {
                for item in items {
                    let Some(name) = item["name"].as_str() else {
                        continue;
                    };
                    if !name.starts_with(prefix) {
                        continue;
                    }
                    out.push(self.meta_of(name, item)?);
                }
            }
            token = v["nextPageToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectStore;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://storage.googleapis.com/storage/v1/").as_deref(),
            Ok("https://storage.googleapis.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:19006").as_deref(),
            Ok("http://127.0.0.1:19006")
        );
        assert!(origin_of("storage.googleapis.com").is_err());
        assert!(origin_of("ftp://x").is_err());
        assert!(origin_of("https:///x").is_err());
    }

    #[test]
    fn names_are_encoded_whole() {
        assert_eq!(enc("env:/a b/é.tfstate"), "env%3A%2Fa%20b%2F%C3%A9.tfstate");
        assert_eq!(enc("p/default.tflock"), "p%2Fdefault.tflock");
    }

    fn opts(auth: GcsAuth, endpoint: &str) -> GcsOptions {
        GcsOptions {
            bucket: "b".into(),
            endpoint: endpoint.into(),
            auth,
            encryption_key: None,
            kms_key: None,
            verbose: false,
        }
    }

    #[tokio::test]
    async fn no_credentials_over_plain_http() {
        // Refused before any connection (nothing listens on port 1).
        let s = GcsStore::new(&opts(
            GcsAuth::Token("ya29.secret-token".into()),
            "http://127.0.0.1:1",
        ))
        .expect("store");
        let e = s.head("k").await.expect_err("refused");
        let m = e.to_string();
        assert!(m.contains("plain http"), "{m}");
        assert!(!m.contains("secret-token"), "{m}");
        assert!(GcsStore::new(&opts(GcsAuth::Anonymous, "http://127.0.0.1:1")).is_ok());
    }

    #[tokio::test]
    async fn csek_is_checked_and_never_shown() {
        let mut o = opts(GcsAuth::Anonymous, "http://127.0.0.1:1");
        o.encryption_key = Some("c2hvcnQ=".into());
        assert!(
            GcsStore::new(&o)
                .expect_err("short")
                .to_string()
                .contains("32 bytes")
        );
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        o.encryption_key = Some(key.clone());
        let s = GcsStore::new(&o).expect("store");
        assert!(!format!("{s:?} {o:?}").contains(&key));
        let h = s.csek_headers("p/default.tfstate");
        assert_eq!(h.len(), 3);
        assert!(
            s.csek_headers("p/default.tflock").is_empty(),
            "locks unencrypted"
        );
    }
}
