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
//! Not yet an [`ObjectStore`](super::ObjectStore): no listing, no TLS
//! (`http://` endpoints only, as Azurite's), no SAS or Azure AD.

use super::StoreError;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The storage service version every request asks for.
pub const API_VERSION: &str = "2021-08-06";
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

/// One container of one storage account, with its shared key.
#[derive(Clone)]
pub struct BlobClient {
    /// `http://host:port/account` (path-style, the emulator) or
    /// `https://account.blob.core.windows.net`, without a trailing `/`.
    endpoint: String,
    account: String,
    key: Vec<u8>,
    container: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "BlobClient({}/{})", self.endpoint, self.container)
    }
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
        if !endpoint.starts_with("http://") {
            return Err(StoreError::Other {
                location,
                message: format!(
                    "endpoint {endpoint}: only http:// endpoints (the Azurite emulator) are supported so far"
                ),
            });
        }
        Ok(BlobClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            account: account.to_string(),
            key,
            container: container.to_string(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
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
        let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC takes a key of any length.
            Err(_) => return String::new(),
        };
        mac.update(to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// One signed request on the container (`blob` `None`) or a blob.
    pub async fn request(
        &self,
        method: Method,
        blob: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<BlobResponse, StoreError> {
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
        let mut req = Request::builder().method(method.clone()).uri(&url);
        let h = req
            .headers_mut()
            .ok_or_else(|| other(format!("bad request URL {url}")))?;
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
        put("x-ms-date", &date)?;
        put("x-ms-version", API_VERSION)?;
        put("content-length", &body.len().to_string())?;
        for (k, v) in headers {
            put(k, v)?;
        }
        let signature = self.sign(method.as_str(), &path, query, h);
        let auth = format!("SharedKey {}:{signature}", self.account);
        h.insert(
            hyper::header::AUTHORIZATION,
            hyper::header::HeaderValue::from_str(&auth)
                .map_err(|e| other(format!("authorization: {e}")))?,
        );
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| other(e.to_string()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| StoreError::Transport {
                location: location.clone(),
                message: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| StoreError::BodyInterrupted {
                location: location.clone(),
                message: e.to_string(),
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
