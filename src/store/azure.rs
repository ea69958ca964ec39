//! Azure Blob Storage, the calls Terraform's azurerm backend makes
//! (`internal/backend/remote-state/azure/client.go`), over hyper with
//! SharedKey signing: the groundwork of the azurerm store.
//!
//! What the azurerm backend does with them: the state of workspace `W` is
//! the blob `<key>env:<W>` (`default`: `<key>`); the lock is an infinite
//! lease on that blob whose ID is the lock's ID (`x-ms-proposed-lease-id`),
//! taken after creating the blob empty when it is missing, with the lock
//! info as base64 of its JSON in the blob's metadata `terraformlockid`;
//! unlock reads that metadata, matches the ID, clears it under the lease,
//! and releases the lease by the ID.
//!
//! [`AzureStore`] is a container as an [`ObjectStore`](super::ObjectStore).
//! Requests go over http:// (Azurite) or https:// (rustls: the system's
//! roots and the CA bundle setting), signed with the account key or
//! carrying a SAS token, with bounded retries ([`BlobClient::request`]).
//! Not yet: Azure AD.

use super::StoreError;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// http:// (Azurite) or https:// (Azure), over rustls.
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
use hyper_util::rt::TokioExecutor;

/// The storage service version every request asks for.
pub const API_VERSION: &str = "2021-08-06";
/// Attempts per request ([`BlobClient::request`]).
pub const ATTEMPTS: u32 = 3;
/// The wait before the first retry (then 4 times longer each).
const RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
/// Terraform's metadata key for the lock info.
pub const LOCK_INFO_META: &str = "terraformlockid";

/// The headers of the standard part of the string to sign, in order.
const SIGNED: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// Characters percent-encoded in a blob name (RFC 3986 unreserved and `/`
/// are kept).
const BLOB_NAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// How requests are authorised.
#[derive(Clone)]
enum Auth {
    /// SharedKey: the account key (decoded), every request signed.
    Key(Vec<u8>),
    /// A SAS token (its query string, without the `?`), appended to every
    /// request's URL.
    Sas(String),
}

/// One container of one storage account, with its shared key or a SAS
/// token.
#[derive(Clone)]
pub struct BlobClient {
    /// `http://host:port/account` (path-style, the emulator) or
    /// `https://account.blob.core.windows.net`, without a trailing `/`.
    endpoint: String,
    account: String,
    auth: Auth,
    container: String,
    http: Client<Connector, Full<Bytes>>,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "BlobClient({}/{})", self.endpoint, self.container)
    }
}

/// The client: rustls with the system's roots (and `extra_pem`'s), for
/// https:// endpoints; plain http:// (the emulator) too.
/// (An http:// endpoint never uses the roots: `tls` false skips loading them.)
fn https_client(
    tls: bool,
    extra_pem: Option<&[u8]>,
) -> Result<Client<Connector, Full<Bytes>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as other clients do.
    if tls {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    if let Some(pem) = extra_pem.filter(|_| tls) {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the CA bundle cannot be read: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA bundle cannot be used: {e}"))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// A response, read whole.
#[derive(Debug)]
pub struct BlobResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl BlobResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The service's error code (`x-ms-error-code`), if any.
    pub fn error_code(&self) -> Option<&str> {
        self.header("x-ms-error-code")
    }
}

impl BlobClient {
    /// `key` is the account key as the portal shows it (base64).
    pub fn new(
        endpoint: &str,
        account: &str,
        key: &str,
        container: &str,
    ) -> Result<Self, StoreError> {
        let location = format!("az://{account}/{container}");
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|_| StoreError::Other {
                location: location.clone(),
                message: "the storage account key is not base64 (check ARM_ACCESS_KEY)".into(),
            })?;
        Self::with_auth(endpoint, account, Auth::Key(key), container)
    }

    /// With a SAS token (Terraform's `sas_token` / `ARM_SAS_TOKEN`, with or
    /// without its leading `?`) instead of the account key.
    pub fn with_sas(
        endpoint: &str,
        account: &str,
        sas: &str,
        container: &str,
    ) -> Result<Self, StoreError> {
        let sas = sas.trim().trim_start_matches('?');
        let has = |name: &str| sas.split('&').any(|p| p.starts_with(name));
        // Never the token itself in a message.
        if !has("sig=") || !has("sv=") || sas.chars().any(|c| c.is_whitespace() || c == '#') {
            return Err(StoreError::Other {
                location: format!("az://{account}/{container}"),
                message: "the SAS token is not one (it needs sv= and sig= query parameters; check ARM_SAS_TOKEN)".into(),
            });
        }
        Self::with_auth(endpoint, account, Auth::Sas(sas.to_string()), container)
    }

    fn with_auth(
        endpoint: &str,
        account: &str,
        auth: Auth,
        container: &str,
    ) -> Result<Self, StoreError> {
        let location = format!("az://{account}/{container}");
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(StoreError::Other {
                location,
                message: format!("endpoint {endpoint}: not an http:// or https:// URL"),
            });
        }
        Ok(BlobClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            account: account.to_string(),
            auth,
            container: container.to_string(),
            http: https_client(endpoint.starts_with("https://"), None).map_err(|message| {
                StoreError::Other {
                    location: location.clone(),
                    message,
                }
            })?,
        })
    }

    /// Trust the certificates of `pem` too (`--ca-bundle`, `TFSYNC_CA_BUNDLE`,
    /// `AWS_CA_BUNDLE`: tfsync's one CA bundle setting), beside the
    /// system's roots.
    pub fn with_ca_bundle(mut self, pem: &[u8]) -> Result<Self, StoreError> {
        let tls = self.endpoint.starts_with("https://");
        self.http = https_client(tls, Some(pem)).map_err(|message| StoreError::Other {
            location: format!("az://{}/{}", self.account, self.container),
            message,
        })?;
        Ok(self)
    }

    /// `az://account/container/name`, for messages.
    pub fn location(&self, blob: &str) -> String {
        format!("az://{}/{}/{blob}", self.account, self.container)
    }

    /// The SharedKey signature of one request (`path` as sent, `query`
    /// decoded).
    fn sign(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &HeaderMap,
    ) -> String {
        use hmac::{KeyInit, Mac};
        let mut to_sign = format!("{method}\n");
        for name in SIGNED {
            let v = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // Since 2015-02-21 a zero length is signed empty.
            let v = if name == "content-length" && v == "0" {
                ""
            } else {
                v
            };
            to_sign.push_str(v);
            to_sign.push('\n');
        }
        let mut ms: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or("").trim().to_string(),
                )
            })
            .collect();
        ms.sort();
        for (k, v) in ms {
            to_sign.push_str(&format!("{k}:{v}\n"));
        }
        to_sign.push_str(&format!("/{}{path}", self.account));
        let mut q: Vec<(String, &str)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        q.sort();
        for (k, v) in q {
            to_sign.push_str(&format!("\n{k}:{v}"));
        }
        let Auth::Key(key) = &self.auth else {
            return String::new();
        };
        let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
            Ok(m) => m,
            // HMAC takes a key of any length.
            Err(_) => return String::new(),
        };
        mac.update(to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// One signed request on the container (`blob` `None`) or a blob.
    ///
    /// Transient failures are retried, [`ATTEMPTS`] in all: a connection
    /// that could not be made (the request was not sent) always; a
    /// connection lost or a 500 / 502 / 503 / 504 answer unless it is a lease
    /// call other than `acquire` (a release or break that landed, repeated,
    /// would meet the next holder's lease). Blob writes are conditional or
    /// idempotent, and a repeated conditional write that had landed is
    /// recognised by the state write (`tfstate::write`).
    pub async fn request(
        &self,
        method: Method,
        blob: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<BlobResponse, StoreError> {
        // Acquiring with the proposed ID again is answered as the first
        // was (the holder of a lease may acquire it again); the other lease
        // actions are not repeatable.
        let lease_call = query.contains(&("comp", "lease"))
            && !headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("x-ms-lease-action") && v == "acquire");
        let mut attempt = 1;
        loop {
            let last = attempt >= ATTEMPTS;
            let wait = RETRY_WAIT * 4u32.pow(attempt - 1);
            match self
                .request_once(method.clone(), blob, query, headers, body.clone())
                .await
            {
                Ok(r) if !last && !lease_call && matches!(r.status, 500 | 502 | 503 | 504) => {}
                Ok(r) => return Ok(r),
                Err((e, sent)) if last || (sent && lease_call) => return Err(e),
                Err(_) => {}
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt; an error says whether the request may have been sent.
    async fn request_once(
        &self,
        method: Method,
        blob: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<BlobResponse, (StoreError, bool)> {
        let unsent = |e: StoreError| (e, false);
        let location = self.location(blob.unwrap_or(""));
        let other = |message: String| StoreError::Other {
            location: location.clone(),
            message,
        };
        let mut url = format!("{}/{}", self.endpoint, self.container);
        if let Some(b) = blob {
            url.push('/');
            url.push_str(&percent_encoding::utf8_percent_encode(b, BLOB_NAME).to_string());
        }
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_else(|| "/".into());
        if !query.is_empty() {
            let qs: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        percent_encoding::utf8_percent_encode(
                            v,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    )
                })
                .collect();
            url.push('?');
            url.push_str(&qs.join("&"));
        }
        if let Auth::Sas(sas) = &self.auth {
            url.push(if query.is_empty() { '?' } else { '&' });
            url.push_str(sas);
        }
        let mut req = Request::builder().method(method.clone()).uri(&url);
        let h = req
            .headers_mut()
            .ok_or_else(|| other("bad request URL".to_string()))
            .map_err(unsent)?;
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut put = |k: &str, v: &str| -> Result<(), StoreError> {
            let name = hyper::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|e| other(format!("header {k}: {e}")))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|e| other(format!("header {k}: {e}")))?;
            h.insert(name, value);
            Ok(())
        };
        put("x-ms-date", &date).map_err(unsent)?;
        put("x-ms-version", API_VERSION).map_err(unsent)?;
        put("content-length", &body.len().to_string()).map_err(unsent)?;
        for (k, v) in headers {
            put(k, v).map_err(unsent)?;
        }
        if let Auth::Key(_) = &self.auth {
            let signature = self.sign(method.as_str(), &path, query, h);
            let auth = format!("SharedKey {}:{signature}", self.account);
            h.insert(
                hyper::header::AUTHORIZATION,
                hyper::header::HeaderValue::from_str(&auth)
                    .map_err(|e| unsent(other(format!("authorization: {e}"))))?,
            );
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unsent(other(e.to_string())))?;
        let resp = self.http.request(req).await.map_err(|e| {
            (
                StoreError::Transport {
                    location: location.clone(),
                    message: e.to_string(),
                },
                !e.is_connect(),
            )
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                (
                    StoreError::BodyInterrupted {
                        location: location.clone(),
                        message: e.to_string(),
                    },
                    true,
                )
            })?
            .to_bytes()
            .to_vec();
        Ok(BlobResponse {
            status,
            headers,
            body,
        })
    }

    /// A lease call on `blob` (`acquire`, `release`, `break`...), with its
    /// headers.
    pub async fn lease(
        &self,
        blob: &str,
        action: &str,
        headers: &[(&str, String)],
    ) -> Result<BlobResponse, StoreError> {
        let mut all = vec![("x-ms-lease-action", action.to_string())];
        all.extend(headers.iter().cloned());
        self.request(
            Method::PUT,
            Some(blob),
            &[("comp", "lease")],
            &all,
            Vec::new(),
        )
        .await
    }

    /// Terraform's lock info in `blob`'s metadata (`terraformlockid`:
    /// base64 of the JSON), under `lease`. Other metadata is kept.
    pub async fn write_lock_info(
        &self,
        blob: &str,
        info_json: Option<&[u8]>,
        lease: &str,
    ) -> Result<BlobResponse, StoreError> {
        let props = self
            .request(
                Method::HEAD,
                Some(blob),
                &[],
                &[("x-ms-lease-id", lease.to_string())],
                Vec::new(),
            )
            .await?;
        let mut headers: Vec<(String, String)> = props
            .headers
            .iter()
            .filter(|(k, _)| {
                k.as_str().starts_with("x-ms-meta-")
                    && k.as_str() != format!("x-ms-meta-{LOCK_INFO_META}")
            })
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        if let Some(json) = info_json {
            headers.push((
                format!("x-ms-meta-{LOCK_INFO_META}"),
                base64::engine::general_purpose::STANDARD.encode(json),
            ));
        }
        headers.push(("x-ms-lease-id".into(), lease.to_string()));
        let refs: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        self.request(
            Method::PUT,
            Some(blob),
            &[("comp", "metadata")],
            &refs,
            Vec::new(),
        )
        .await
    }

    /// The lock info in `blob`'s metadata, decoded (`None`: no such
    /// metadata, or no blob).
    pub async fn read_lock_info(&self, blob: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let props = self
            .request(Method::HEAD, Some(blob), &[], &[], Vec::new())
            .await?;
        if props.status == 404 {
            return Ok(None);
        }
        let Some(raw) = props.header(&format!("x-ms-meta-{LOCK_INFO_META}")) else {
            return Ok(None);
        };
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(Some)
            .map_err(|_| StoreError::Other {
                location: self.location(blob),
                message: format!("its metadata {LOCK_INFO_META} is not base64"),
            })
    }
}

/// One container as an [`ObjectStore`](super::ObjectStore): blobs are
/// objects, Azure's ETags (not MD5s) their ETags. As in Terraform's azurerm
/// backend, an empty blob is no state (its `Lock` creates the blob empty):
/// `get` and `head` say "not found", and a create-only write fills it
/// (conditional on the empty blob's ETag). No retries yet.
#[derive(Debug, Clone)]
pub struct AzureStore {
    client: BlobClient,
    /// The leases this process holds (blob -> lease ID): every write of a
    /// leased blob must name its lease.
    leases: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl AzureStore {
    pub fn new(client: BlobClient) -> Self {
        AzureStore {
            client,
            leases: Default::default(),
        }
    }

    /// From now on, writes of `blob` name the lease `id` (`None`: no more).
    pub fn use_lease(&self, blob: &str, id: Option<&str>) {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        match id {
            Some(id) => l.insert(blob.to_string(), id.to_string()),
            None => l.remove(blob),
        };
    }

    /// The lease this process holds on `blob`, if any.
    pub fn lease_of(&self, blob: &str) -> Option<String> {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(blob)
            .cloned()
    }

    fn lease_header(&self, blob: &str) -> Option<(&'static str, String)> {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(blob)
            .map(|id| ("x-ms-lease-id", id.clone()))
    }

    pub fn client(&self) -> &BlobClient {
        &self.client
    }

    /// Every blob under `prefix` (empty ones too: a lock's), all pages,
    /// sorted, with its lease state.
    pub async fn list_blobs(&self, prefix: &str) -> super::Result<Vec<ListedBlob>> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let mut q = vec![
                ("restype", "container"),
                ("comp", "list"),
                ("prefix", prefix),
            ];
            if !marker.is_empty() {
                q.push(("marker", marker.as_str()));
            }
            let r = self
                .client
                .request(Method::GET, None, &q, &[], Vec::new())
                .await?;
            if r.status != 200 {
                return Err(self.fail(prefix, &r, None));
            }
            let xml = String::from_utf8_lossy(&r.body).into_owned();
            for blob in xml_all(&xml, "Blob") {
                let name = xml_all(blob, "Name").first().map(|n| xml_unescape(n));
                let size: u64 = xml_all(blob, "Content-Length")
                    .first()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let Some(name) = name else { continue };
                let lease_state = xml_all(blob, "LeaseState")
                    .first()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let meta = ObjectMeta {
                    key: name,
                    size,
                    etag: xml_all(blob, "Etag")
                        .first()
                        .map(|e| super::unquote_etag(&xml_unescape(e))),
                    last_modified: xml_all(blob, "Last-Modified")
                        .first()
                        .and_then(|t| chrono::DateTime::parse_from_rfc2822(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc)),
                };
                out.push(ListedBlob { meta, lease_state });
            }
            marker = xml_all(&xml, "NextMarker")
                .first()
                .map(|m| xml_unescape(m))
                .unwrap_or_default();
            if marker.is_empty() {
                break;
            }
        }
        out.sort_by(|a, b| a.meta.key.cmp(&b.meta.key));
        Ok(out)
    }

    fn fail(&self, blob: &str, r: &BlobResponse, conditional: Option<&PutMode>) -> StoreError {
        let location = self.client.location(blob);
        let code = r.error_code().unwrap_or("").to_string();
        match (r.status, code.as_str()) {
            (404, "ContainerNotFound") => StoreError::BucketNotFound {
                bucket: format!("{}/{}", self.client.account, self.client.container),
            },
            (404, _) => StoreError::NotFound { location },
            (403, _) => StoreError::AccessDenied {
                location,
                message: format!("HTTP 403 {code}"),
            },
            (409 | 412, _) if matches!(conditional, Some(PutMode::Create)) => {
                StoreError::AlreadyExists { location }
            }
            (412, "LeaseIdMissing" | "LeaseIdMismatchWithBlobOperation") | (409, "LeaseIdMissing") => {
                StoreError::Other {
                    location,
                    message: "the blob is leased (locked) by someone else: nothing was written. See `tfsync status`".into(),
                }
            }
            (412, _) => StoreError::Precondition { location },
            (s, _) => StoreError::Other {
                location,
                message: format!("HTTP {s} {code}"),
            },
        }
    }

    fn meta(blob: &str, r: &BlobResponse, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: blob.to_string(),
            size,
            etag: r.header("etag").map(super::unquote_etag),
            last_modified: r
                .header("last-modified")
                .and_then(|t| chrono::DateTime::parse_from_rfc2822(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        }
    }
}

/// A blob of a listing, with its lease state (`available`, `leased`,
/// `expired`, `breaking`, `broken`).
#[derive(Debug, Clone)]
pub struct ListedBlob {
    pub meta: ObjectMeta,
    pub lease_state: String,
}

/// The text of every `<tag>...</tag>` in `xml`, unescaped.
pub(crate) fn xml_all<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

pub(crate) fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

use super::{GetResult, ObjectMeta, PutMode};

#[async_trait::async_trait]
impl super::ObjectStore for AzureStore {
    fn describe(&self) -> String {
        format!("az://{}/{}", self.client.account, self.client.container)
    }

    fn bucket(&self) -> &str {
        &self.client.container
    }

    fn as_azure(&self) -> Option<&AzureStore> {
        Some(self)
    }

    /// The endpoint, account, container and blob: the same blob reached
    /// through another configuration is recognised.
    async fn identities(&self, key: &str) -> super::Result<Vec<super::ObjectId>> {
        Ok(vec![super::ObjectId::Remote {
            endpoint: self.client.endpoint.clone(),
            bucket: format!("{}/{}", self.client.account, self.client.container),
            key: key.to_string(),
        }])
    }

    async fn get(&self, key: &str) -> super::Result<GetResult> {
        let r = self
            .client
            .request(Method::GET, Some(key), &[], &[], Vec::new())
            .await?;
        if r.status != 200 {
            return Err(self.fail(key, &r, None));
        }
        if r.body.is_empty() {
            return Err(StoreError::NotFound {
                location: self.client.location(key),
            });
        }
        let meta = Self::meta(key, &r, r.body.len() as u64);
        Ok(GetResult {
            meta,
            bytes: r.body,
        })
    }

    async fn head(&self, key: &str) -> super::Result<ObjectMeta> {
        let r = self
            .client
            .request(Method::HEAD, Some(key), &[], &[], Vec::new())
            .await?;
        if r.status != 200 {
            return Err(self.fail(key, &r, None));
        }
        let size = r
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if size == 0 {
            return Err(StoreError::NotFound {
                location: self.client.location(key),
            });
        }
        Ok(Self::meta(key, &r, size))
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> super::Result<Option<String>> {
        // A blob write replaces its metadata: under our lease, keep it (the
        // lock info lives there), as Terraform's Put does.
        let mut kept: Vec<(String, String)> = Vec::new();
        if let Some(lease) = self.lease_header(key) {
            let h = self
                .client
                .request(Method::HEAD, Some(key), &[], &[lease], Vec::new())
                .await?;
            kept = h
                .headers
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("x-ms-meta-"))
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
        }
        let put = |cond: Option<(&'static str, String)>| {
            let mut h: Vec<(&str, String)> = vec![
                ("x-ms-blob-type", "BlockBlob".to_string()),
                ("content-type", "application/json".to_string()),
            ];
            h.extend(cond);
            h.extend(self.lease_header(key));
            h.extend(kept.iter().map(|(k, v)| (k.as_str(), v.clone())));
            let body = body.clone();
            async move {
                self.client
                    .request(Method::PUT, Some(key), &[], &h, body)
                    .await
            }
        };
        let cond = match &mode {
            PutMode::Overwrite => None,
            PutMode::Create => Some(("if-none-match", "*".to_string())),
            PutMode::Update(etag) => Some(("if-match", format!("\"{etag}\""))),
        };
        let mut r = put(cond).await?;
        if r.status != 201 && mode == PutMode::Create && matches!(r.status, 409 | 412) {
            // An empty blob (a lock's) is no state: fill it, only if it is
            // still that empty blob.
            let h = self
                .client
                .request(Method::HEAD, Some(key), &[], &[], Vec::new())
                .await?;
            if h.status == 200
                && h.header("content-length") == Some("0")
                && let Some(etag) = h.header("etag").map(str::to_string)
            {
                r = put(Some(("if-match", etag))).await?;
                if r.status == 412 {
                    return Err(StoreError::AlreadyExists {
                        location: self.client.location(key),
                    });
                }
            }
        }
        if r.status != 201 {
            return Err(self.fail(key, &r, Some(&mode)));
        }
        Ok(r.header("etag").map(super::unquote_etag))
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> super::Result<()> {
        let h: Vec<(&str, String)> = if_match
            .map(|e| ("if-match", format!("\"{e}\"")))
            .into_iter()
            .chain(self.lease_header(key))
            .collect();
        let r = self
            .client
            .request(Method::DELETE, Some(key), &[], &h, Vec::new())
            .await?;
        match r.status {
            202 => Ok(()),
            404 if r.error_code() != Some("ContainerNotFound") => Ok(()),
            _ => Err(self.fail(key, &r, None)),
        }
    }

    /// Every non-empty blob under `prefix`, all pages, sorted.
    async fn list(&self, prefix: &str) -> super::Result<Vec<ObjectMeta>> {
        Ok(self
            .list_blobs(prefix)
            .await?
            .into_iter()
            .filter(|b| b.meta.size > 0)
            .map(|b| b.meta)
            .collect())
    }
}
