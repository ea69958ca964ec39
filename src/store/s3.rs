//! S3 and S3-compatible servers through `aws-sdk-s3`.
//!
//! Provider quirks live here and nowhere else:
//! - checksums are computed only when an operation requires them, and every
//!   body carries a `Content-MD5` instead (Ceph RGW rejects the SDK's default
//!   aws-chunked uploads with trailing checksums);
//! - an `If-Match` answered 412 is retried once with the unquoted ETag when a
//!   HEAD shows the ETag really matched (Ceph RGW compares unquoted ETags);
//! - `If-Match` on a missing key is a precondition failure whether the server
//!   says 412 (Ceph, SeaweedFS, R2) or 404 (AWS, moto);
//! - `Create` refused with 412 or 409 is `AlreadyExists`;
//! - for custom endpoints, credentials come from the environment or a profile
//!   only: never instance metadata (IMDS), ECS or STS web identity.

use super::ObjectId;
use super::dynamo::{LockTable, LockTableOptions};
use super::{
    GetResult, ObjectMeta, ObjectStore, Payload, PutMode, Result, StoreError, unquote_etag,
};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use base64::Engine;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Everything needed to reach one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    pub bucket: String,
    /// `None` means AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub path_style: bool,
    /// Print one line per request on stderr.
    pub verbose: bool,
    /// Explicit credentials (their `Debug` is redacted); `None` means the
    /// environment or the profile.
    pub credentials: Option<aws_credential_types::Credentials>,
}

/// Transport settings (as the OpenTofu `oras` backend has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// Total attempts per request (first try included; 0 counts as 1).
    pub max_attempts: u32,
    /// First and longest wait between retries (the SDK's exponential
    /// backoff with jitter in between).
    pub retry_min_wait: Option<Duration>,
    pub retry_max_wait: Option<Duration>,
    /// Requests per second and the burst allowed above that rate.
    pub rate_limit: Option<(u32, u32)>,
    /// PEM certificates trusted besides the system's roots (`--ca-bundle`).
    pub ca_bundle: Option<Vec<u8>>,
}

impl Default for TransportOptions {
    /// The defaults of the command line: 4 attempts, the SDK's waits, no
    /// pacing, the system's roots.
    fn default() -> Self {
        TransportOptions {
            max_attempts: 4,
            retry_min_wait: None,
            retry_max_wait: None,
            rate_limit: None,
            ca_bundle: None,
        }
    }
}

/// Server-side encryption and ACL applied to every object tfsync writes
/// (the lock and the state alike, as Terraform's s3 backend does).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub sse: Option<String>,
    pub kms_key_id: Option<String>,
    /// A canned ACL: `private`, `bucket-owner-full-control`...
    pub acl: Option<String>,
    /// SSE-C: the base64 of a 256-bit key. Sent on reads too. Never shown.
    pub sse_customer_key: Option<String>,
    /// A provider's own create-only header, sent with `If-None-Match: *` on
    /// create-only PUTs (OSS: `x-oss-forbid-overwrite: true`; GCS:
    /// `x-goog-if-generation-match: 0`).
    pub create_only_header: Option<(String, String)>,
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("sse", &self.sse)
            .field("kms_key_id", &self.kms_key_id)
            .field("acl", &self.acl)
            .field(
                "sse_customer_key",
                &self.sse_customer_key.as_ref().map(|_| "<redacted>"),
            )
            .field("create_only_header", &self.create_only_header)
            .finish()
    }
}

impl WriteOptions {
    /// The SSE-C headers' values: algorithm, key, key MD5 (all base64).
    fn customer_key(&self) -> Option<(&str, String)> {
        let key = self.sse_customer_key.as_deref()?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap_or_default();
        use md5::{Digest, Md5};
        Some((
            key,
            base64::engine::general_purpose::STANDARD.encode(Md5::digest(&raw)),
        ))
    }
}

/// Builds an [`S3Store`] with every option applied: where and who
/// ([`S3Options`]), how every object is written ([`WriteOptions`]: SSE, KMS,
/// SSE-C, ACL, the provider's create-only header) and how requests travel
/// ([`TransportOptions`]: attempts, retry waits, rate limit, CA bundle).
/// `build()` is the only way to get an `S3Store`; inside the crate only
/// `store::open` calls it (it decides what each side of a command gets).
#[derive(Debug, Clone, Default)]
pub struct S3Builder {
    options: S3Options,
    write: WriteOptions,
    transport: TransportOptions,
    lock_table: Option<LockTableOptions>,
}

impl S3Builder {
    pub fn new(options: S3Options) -> Self {
        S3Builder {
            options,
            ..Default::default()
        }
    }

    pub fn with_write_options(mut self, write: WriteOptions) -> Self {
        self.write = write;
        self
    }

    pub fn with_transport(mut self, transport: TransportOptions) -> Self {
        self.transport = transport;
        self
    }

    /// Keep lock items and state digests in this DynamoDB table too
    /// (Terraform's `dynamodb_table`).
    pub fn with_lock_table(mut self, table: Option<LockTableOptions>) -> Self {
        self.lock_table = table;
        self
    }

    pub fn options(&self) -> &S3Options {
        &self.options
    }

    pub fn lock_table(&self) -> Option<&LockTableOptions> {
        self.lock_table.as_ref()
    }

    pub fn write_options(&self) -> &WriteOptions {
        &self.write
    }

    pub fn transport(&self) -> &TransportOptions {
        &self.transport
    }

    /// Make the client (no request is sent).
    pub async fn build(self) -> Result<S3Store> {
        let mut store = S3Store::connect(&self.options, &self.transport).await?;
        if let Some(t) = &self.lock_table {
            store.lock_table = Some(Arc::new(
                LockTable::connect(t, &self.options, &self.transport).await?,
            ));
        }
        Ok(store
            .with_transport(&self.transport)?
            .with_write_options(self.write))
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    verbose: bool,
    /// An S3-compatible server rather than AWS itself.
    custom_endpoint: bool,
    /// The endpoint as [`ObjectId::Remote`] names it: the URL without a
    /// trailing `/`, lower case, or `aws`.
    endpoint_id: String,
    /// A create-only PUT was answered with an object version ID: the bucket
    /// is versioned (a signal that costs no request).
    saw_versioned_create: Arc<AtomicBool>,
    write: WriteOptions,
    /// Client-side request pacing (`--rate-limit`), shared by clones.
    limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
    /// The DynamoDB table of Terraform's `dynamodb_table` for this bucket.
    lock_table: Option<Arc<LockTable>>,
}

impl S3Store {
    async fn connect(opts: &S3Options, transport: &TransportOptions) -> Result<Self> {
        let location = format!("s3://{}", opts.bucket);
        let custom = opts.endpoint.is_some();
        let sdk = sdk_config(opts, transport, custom, &location).await?;
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(opts.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(ep) = &opts.endpoint {
            conf = conf.endpoint_url(ep);
        }
        conf = conf.interceptor(OneOfRepeatedSseHeaders);
        Ok(S3Store {
            client: Client::from_conf(conf.build()),
            bucket: opts.bucket.clone(),
            verbose: opts.verbose,
            custom_endpoint: custom,
            endpoint_id: opts.endpoint.as_deref().map_or_else(
                || "aws".to_string(),
                |e| e.trim_end_matches('/').to_ascii_lowercase(),
            ),
            saw_versioned_create: Arc::default(),
            write: WriteOptions::default(),
            limiter: None,
            lock_table: None,
        })
    }

    /// Request pacing (`--rate-limit`); the retry waits and the CA bundle
    /// are in the client already ([`sdk_config`]).
    fn with_transport(mut self, t: &TransportOptions) -> Result<Self> {
        self.limiter = rate_limiter(t);
        Ok(self)
    }

    /// Wait for the rate limiter, when there is one.
    async fn pace(&self) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
    }

    fn sse_c(&self) -> Option<(&str, String)> {
        self.write.customer_key()
    }

    /// Apply `w` to every PUT (and SSE-C to every read).
    fn with_write_options(mut self, w: WriteOptions) -> Self {
        self.write = w;
        self
    }

    /// The underlying SDK client, for tests and set-up scripts.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Create the bucket if it does not exist (tests, demo).
    pub async fn create_bucket_if_missing(&self) -> Result<()> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.map_err("", e, Op::Other)),
        }
    }

    /// Is versioning enabled (or suspended with versions left) on the bucket?
    pub async fn versioning(&self) -> Result<Versioning> {
        self.log(format_args!("GET {}?versioning", self.describe()));
        self.pace().await;
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            // moto answers a bucket that never had versioning with an empty
            // `<GetBucketVersioningResponse/>`, which the SDK cannot parse; it
            // uses that root element for a versioned bucket too. Read the
            // status from the body itself.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
                let body = e
                    .raw_response()
                    .and_then(|r| r.body().bytes())
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(body);
                return Ok(if body.contains("<Status>Enabled</Status>") {
                    Versioning::Enabled
                } else if body.contains("<Status>Suspended</Status>") {
                    Versioning::Suspended
                } else {
                    Versioning::Off
                });
            }
            Err(e) => return Err(self.map_err("", e, Op::Other)),
        };
        Ok(match out.status() {
            Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(aws_sdk_s3::types::BucketVersioningStatus::Suspended) => Versioning::Suspended,
            _ => Versioning::Off,
        })
    }

    /// Every version and delete marker under `prefix`, all pages, sorted by
    /// key then newest first.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        self.log(format_args!("LIST VERSIONS {}*", self.location(prefix)));
        self.pace().await;
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                self.pace().await;
            }
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .map_err(|e| self.map_err(prefix, e, Op::Other))?;
            for v in page.versions() {
                out.push(ObjectVersion {
                    key: v.key().unwrap_or_default().to_string(),
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    is_latest: v.is_latest().unwrap_or(false),
                    delete_marker: false,
                    size: v.size().unwrap_or(0).max(0) as u64,
                    etag: v.e_tag().map(unquote_etag),
                    last_modified: to_utc(v.last_modified()),
                });
            }
            for m in page.delete_markers() {
                out.push(ObjectVersion {
                    key: m.key().unwrap_or_default().to_string(),
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    is_latest: m.is_latest().unwrap_or(false),
                    delete_marker: true,
                    size: 0,
                    etag: None,
                    last_modified: to_utc(m.last_modified()),
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() && version_marker.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.last_modified.cmp(&a.last_modified))
        });
        Ok(out)
    }

    /// Read one version of an object.
    pub async fn get_version(&self, key: &str, version_id: &str) -> Result<GetResult> {
        let out = self.get_object(key, Some(version_id)).await?;
        self.read_all(key, out).await
    }

    /// One GetObject request (SSE-C headers when configured), paced and
    /// logged; the body is still to be read.
    async fn get_object(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        match version_id {
            Some(v) => self.log(format_args!("GET {}?versionId={v}", self.location(key))),
            None => self.log(format_args!("GET {}", self.location(key))),
        }
        self.pace().await;
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .set_sse_customer_algorithm(self.sse_c().map(|_| "AES256".to_string()))
            .set_sse_customer_key(self.sse_c().map(|(k, _)| k.to_string()))
            .set_sse_customer_key_md5(self.sse_c().map(|(_, m)| m))
            .send()
            .await
            .map_err(|e| self.map_err(key, e, Op::Other))
    }

    /// Read a GetObject body whole.
    async fn read_all(
        &self,
        key: &str,
        out: aws_sdk_s3::operation::get_object::GetObjectOutput,
    ) -> Result<GetResult> {
        let etag = out.e_tag().map(unquote_etag);
        let last_modified = to_utc(out.last_modified());
        // Chunks appended to one buffer of the announced size: the body is
        // held once (collecting it first, then copying, held it twice).
        let mut out = out;
        let hint = out.content_length().unwrap_or(0).clamp(0, 1 << 30) as usize;
        let mut bytes = Vec::with_capacity(hint);
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(|e| StoreError::BodyInterrupted {
                location: self.location(key),
                message: format!("{}", DisplayErrorContext(&e)),
            })?;
            bytes.extend_from_slice(&chunk);
        }
        Ok(GetResult {
            meta: ObjectMeta {
                key: key.to_string(),
                size: bytes.len() as u64,
                etag,
                last_modified,
            },
            bytes,
        })
    }

    /// Permanently delete one version (or delete marker) of an object.
    pub async fn delete_version(&self, key: &str, version_id: &str) -> Result<()> {
        self.log(format_args!(
            "DELETE {}?versionId={version_id}",
            self.location(key)
        ));
        self.pace().await;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(key, e, Op::Other))
    }

    /// DELETE, `If-Match` when given; `Ok(false)` when the key was gone
    /// already (404, or a 412 on a key a HEAD then finds missing).
    async fn delete_tagged(&self, key: &str, if_match: Option<&str>) -> Result<bool> {
        self.log(format_args!(
            "DELETE {}{}",
            self.location(key),
            if if_match.is_some() {
                " (If-Match)"
            } else {
                ""
            }
        ));
        self.pace().await;
        let mut req = self.client.delete_object().bucket(&self.bucket).key(key);
        if let Some(e) = if_match {
            req = req.if_match(format!("\"{e}\""));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => match self.map_err(
                key,
                e,
                if if_match.is_some() {
                    Op::IfMatch
                } else {
                    Op::Other
                },
            ) {
                // Deleting a missing key is not an error.
                StoreError::NotFound { .. } => Ok(false),
                // A conditional delete of a missing key: already gone.
                StoreError::Precondition { location } => match self.head(key).await {
                    Err(StoreError::NotFound { .. }) => Ok(false),
                    _ => Err(StoreError::Precondition { location }),
                },
                other => Err(other),
            },
        }
    }

    fn log(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("tfsync: {what}");
        }
    }

    fn map_err<E>(
        &self,
        key: &str,
        err: SdkError<E, aws_smithy_runtime_api::http::Response>,
        op: Op,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let location = self.location(key);
        let SdkFailure { status, code } = match sdk_failure(
            &err,
            &location,
            "Check the endpoint URL and that the server is up",
            |what| self.log(what),
        ) {
            Ok(failure) => failure,
            Err(early) => return early,
        };
        match (status, code.as_deref(), op) {
            (_, Some("NoSuchBucket"), _) => StoreError::BucketNotFound {
                bucket: self.bucket.clone(),
            },
            (Some(412) | Some(409), _, Op::Create) => StoreError::AlreadyExists { location },
            (Some(412) | Some(404), _, Op::IfMatch) => StoreError::Precondition { location },
            (Some(412), _, _) | (_, Some("PreconditionFailed"), _) => {
                StoreError::Precondition { location }
            }
            (Some(404), _, _) | (_, Some("NoSuchKey" | "NotFound"), _) => {
                StoreError::NotFound { location }
            }
            (Some(401) | Some(403), _, _) => StoreError::AccessDenied {
                location,
                message: err
                    .message()
                    .filter(|m| !m.is_empty())
                    .or(code.as_deref())
                    .unwrap_or("403 Forbidden")
                    .to_string(),
            },
            (Some(s), _, _) if s >= 500 => StoreError::Transport {
                location,
                message: format!(
                    "server error {s} {} after retries",
                    code.as_deref().unwrap_or("")
                ),
            },
            _ => StoreError::Other {
                location,
                message: match (err.message().filter(|m| !m.trim().is_empty()), status) {
                    (Some(m), _) => m.to_string(),
                    // Some servers answer with a bare code (Ceph: 400
                    // InvalidRequest for SSE over plain http).
                    (None, Some(s)) => format!(
                        "the server answered {s} {}",
                        code.as_deref().unwrap_or("without an error code")
                    ),
                    (None, None) => format!("{}", DisplayErrorContext(&err)),
                },
            },
        }
    }

    async fn put_once(
        &self,
        key: &str,
        body: &Payload,
        mode: &PutMode,
        etag_form: EtagForm,
    ) -> Result<Option<String>> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .content_md5(body.md5_base64())
            .body(body.bytes().clone().into());
        if let Some(sse) = &self.write.sse {
            req = req.server_side_encryption(sse.as_str().into());
        }
        if let Some(k) = &self.write.kms_key_id {
            req = req.ssekms_key_id(k);
        }
        if let Some(acl) = &self.write.acl {
            req = req.acl(acl.as_str().into());
        }
        if let Some((key, md5)) = self.write.customer_key() {
            req = req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(key)
                .sse_customer_key_md5(md5);
        }
        let op = match mode {
            PutMode::Overwrite => Op::Other,
            PutMode::Create => {
                req = req.if_none_match("*");
                Op::Create
            }
            PutMode::Update(etag) => {
                req = req.if_match(match etag_form {
                    EtagForm::Quoted => format!("\"{etag}\""),
                    EtagForm::Bare => etag.clone(),
                });
                Op::IfMatch
            }
        };
        self.log(format_args!(
            "PUT {} ({} bytes, {:?}, {:?})",
            self.location(key),
            body.len(),
            mode,
            etag_form
        ));
        self.pace().await;
        let sent = match (mode, &self.write.create_only_header) {
            (PutMode::Create, Some((name, value))) => {
                let (name, value) = (name.clone(), value.clone());
                req.customize()
                    .mutate_request(move |r| {
                        r.headers_mut().insert(name.clone(), value.clone());
                    })
                    .send()
                    .await
            }
            _ => req.send().await,
        };
        match sent {
            Ok(out) => {
                if matches!(mode, PutMode::Create)
                    && out
                        .version_id()
                        .is_some_and(|v| !v.is_empty() && v != "null")
                {
                    self.saw_versioned_create.store(true, Ordering::Relaxed);
                }
                Ok(out.e_tag().map(unquote_etag))
            }
            Err(e) => Err(self.map_err(key, e, op)),
        }
    }
}

/// A bucket's versioning state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Off,
    Enabled,
    Suspended,
}

/// One version (or delete marker) of an object in a versioned bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    /// `null` for objects written before versioning was enabled.
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
enum EtagForm {
    Quoted,
    Bare,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    IfMatch,
    Other,
}

/// SeaweedFS (4.48) repeats the SSE-C response headers (the key MD5) when
/// it serves an SSE-C object, and aws-sdk-s3 refuses a repeated
/// single-valued header, so no SSE-C object could be read there. When every
/// copy of an `x-amz-server-side-encryption*` header is the same, keep one.
#[derive(Debug)]
struct OneOfRepeatedSseHeaders;

impl aws_sdk_s3::config::Intercept for OneOfRepeatedSseHeaders {
    fn name(&self) -> &'static str {
        "tfsync: one of repeated SSE headers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let headers = context.response_mut().headers_mut();
        let mut repeated: Vec<(String, String)> = Vec::new();
        for (name, value) in headers.iter() {
            if !name.starts_with("x-amz-server-side-encryption")
                || repeated.iter().any(|(n, _)| n == name)
            {
                continue;
            }
            let all: Vec<&str> = headers.get_all(name).collect();
            if all.len() > 1 && all.iter().all(|v| *v == value) {
                repeated.push((name.to_string(), value.to_string()));
            }
        }
        for (name, value) in repeated {
            headers.remove(&name);
            headers.try_insert(name, value)?;
        }
        Ok(())
    }
}

/// What a failed AWS SDK call (S3 or DynamoDB) says before the service's own
/// error codes are read: the HTTP status and the error code, if a response came.
pub(crate) struct SdkFailure {
    pub(crate) status: Option<u16>,
    pub(crate) code: Option<String>,
}

/// The part of mapping an SDK error that is the same for every AWS client:
/// log the answer (`-v`), and turn the failures that never reached the service
/// (timeouts, connection and TLS failures, missing credentials, a request that
/// could not be built) into their [`StoreError`], with `check_endpoint` as the
/// advice when the server did not answer. Otherwise the status and code, for the
/// caller's service-specific match.
pub(crate) fn sdk_failure<E>(
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    location: &str,
    check_endpoint: &str,
    log: impl FnOnce(std::fmt::Arguments<'_>),
) -> std::result::Result<SdkFailure, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    log(format_args!(
        "  -> {} {}",
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "no response".into()),
        code.as_deref().unwrap_or("")
    ));
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            let chain = error_chain(err);
            let message = if chain.contains("credentials") {
                "no usable credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --profile"
                    .to_string()
            } else if chain.contains("TLS") || chain.contains("certificate") {
                format!(
                    "{chain}. Check the endpoint's certificate, or use http:// if the server does not speak TLS"
                )
            } else {
                format!("{chain}. {check_endpoint}")
            };
            Err(StoreError::Transport {
                location: location.to_string(),
                message,
            })
        }
        SdkError::ConstructionFailure(_) => Err(StoreError::Other {
            location: location.to_string(),
            message: error_chain(err),
        }),
        _ => Ok(SdkFailure { status, code }),
    }
}

/// An error and its sources as one line, each level once, without the
/// debug dumps the SDK appends.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The SDK configuration every client of one store is built from (the S3
/// client, and the DynamoDB client of its lock table): the credentials
/// chain, the region, the retry attempts and waits, the connect timeout and
/// the CA bundle of `transport`. With `custom` (an S3-compatible endpoint,
/// or a DynamoDB endpoint of its own), credentials come from the
/// environment or a profile only: never instance metadata (IMDS), ECS or STS
/// web identity. `location` names the store in errors.
pub(crate) async fn sdk_config(
    opts: &S3Options,
    transport: &TransportOptions,
    custom: bool,
    location: &str,
) -> Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(transport.max_attempts.max(1))
                .with_initial_backoff(
                    transport
                        .retry_min_wait
                        .unwrap_or(Duration::from_millis(100)),
                )
                .with_max_backoff(transport.retry_max_wait.unwrap_or(Duration::from_secs(5))),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(pem) = &transport.ca_bundle {
        use aws_smithy_http_client::{Builder, tls};
        let context = tls::TlsContext::builder()
            .with_trust_store(tls::TrustStore::default().with_pem_certificate(pem.clone()))
            .build()
            .map_err(|e| StoreError::Other {
                location: location.to_string(),
                message: format!("the CA bundle cannot be used: {e}"),
            })?;
        let http = Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https();
        loader = loader.http_client(http);
    }
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(c) = &opts.credentials {
        loader = loader.credentials_provider(c.clone());
    } else if custom {
        // No IMDS, ECS or STS for S3-compatible servers: the environment,
        // or the profile (which includes SSO and credential_process).
        let mut profile = ProfileFileCredentialsProvider::builder();
        if let Some(p) = &opts.profile {
            profile = profile.profile_name(p);
        }
        let chain = match &opts.profile {
            Some(_) => CredentialsProviderChain::first_try("profile", profile.build()),
            None => CredentialsProviderChain::first_try(
                "environment",
                EnvironmentVariableCredentialsProvider::new(),
            )
            .or_else("profile", profile.build()),
        };
        loader = loader.credentials_provider(chain);
    }
    let region = match &opts.region {
        Some(r) => Some(r.clone()),
        None => profile_region(opts.profile.as_deref()).await,
    };
    match (region, custom) {
        (Some(r), _) => loader = loader.region(Region::new(r)),
        (None, true) => loader = loader.region(Region::new("us-east-1")),
        (None, false) => {} // AWS: the SDK's own region chain
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(StoreError::Other {
            location: location.to_string(),
            message: "no region: set --region, TFSYNC_REGION or AWS_REGION".into(),
        });
    }
    Ok(sdk)
}

/// The client-side pacing of `--rate-limit`, one limiter per server.
pub(crate) fn rate_limiter(
    t: &TransportOptions,
) -> Option<Arc<governor::DefaultDirectRateLimiter>> {
    let (per_second, burst) = t.rate_limit?;
    let per_second =
        std::num::NonZeroU32::new(per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(burst.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    let quota = governor::Quota::per_second(per_second).allow_burst(burst);
    Some(Arc::new(governor::RateLimiter::direct(quota)))
}

async fn profile_region(profile: Option<&str>) -> Option<String> {
    use aws_config::meta::region::ProvideRegion;
    let mut b = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        b = b.profile_name(p);
    }
    b.build().region().await.map(|r| r.to_string())
}

fn to_utc(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn identities(&self, key: &str) -> Result<Vec<ObjectId>> {
        Ok(vec![ObjectId::Remote {
            endpoint: self.endpoint_id.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
        }])
    }

    fn lock_table(&self) -> Option<&LockTable> {
        self.lock_table.as_deref()
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let out = self.get_object(key, None).await?;
        self.read_all(key, out).await
    }

    async fn get_to(
        &self,
        key: &str,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(ObjectMeta, String)> {
        use md5::{Digest, Md5};
        use tokio::io::AsyncWriteExt;
        let mut out = self.get_object(key, None).await?;
        let mut md5 = Md5::new();
        let mut size = 0u64;
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(|e| StoreError::BodyInterrupted {
                location: self.location(key),
                message: format!("after {size} bytes: {}", DisplayErrorContext(&e)),
            })?;
            md5.update(&chunk);
            size += chunk.len() as u64;
            sink.write_all(&chunk)
                .await
                .map_err(super::local_write_error)?;
        }
        sink.flush().await.map_err(super::local_write_error)?;
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            etag: out.e_tag().map(unquote_etag),
            last_modified: to_utc(out.last_modified()),
        };
        Ok((meta, hex::encode(md5.finalize())))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.log(format_args!("HEAD {}", self.location(key)));
        self.pace().await;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_sse_customer_algorithm(self.sse_c().map(|_| "AES256".to_string()))
            .set_sse_customer_key(self.sse_c().map(|(k, _)| k.to_string()))
            .set_sse_customer_key_md5(self.sse_c().map(|(_, m)| m))
            .send()
            .await
            .map_err(|e| self.map_err(key, e, Op::Other))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(unquote_etag),
            last_modified: to_utc(out.last_modified()),
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<String>> {
        self.put_bytes(key, Payload::new(body), mode).await
    }

    async fn put_bytes(&self, key: &str, body: Payload, mode: PutMode) -> Result<Option<String>> {
        match self.put_once(key, &body, &mode, EtagForm::Quoted).await {
            Err(StoreError::Precondition { location }) => {
                // Ceph RGW compares If-Match against the unquoted ETag: if the
                // object really has the expected ETag, try once more bare.
                let PutMode::Update(expected) = &mode else {
                    return Err(StoreError::Precondition { location });
                };
                match self.head(key).await {
                    Ok(m) if m.etag.as_deref() == Some(expected.as_str()) => {
                        self.put_once(key, &body, &mode, EtagForm::Bare).await
                    }
                    _ => Err(StoreError::Precondition { location }),
                }
            }
            other => other,
        }
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        self.delete_tagged(key, if_match).await.map(|_| ())
    }

    async fn delete_if(&self, key: &str, etag: &str) -> Result<bool> {
        self.delete_tagged(key, Some(etag)).await
    }

    /// On a non-AWS endpoint, when a create-only PUT (the lock) came back
    /// with an object version ID: the bucket is versioned, and Ceph RGW then
    /// ignores If-None-Match. No request is made.
    async fn lock_safety_warning(&self) -> Option<String> {
        if !self.custom_endpoint || !self.saw_versioned_create.load(Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "versioning is enabled on {}, an S3-compatible endpoint (the lock was stored as a new object version): some servers (Ceph RGW, the engine of DigitalOcean Spaces) then let every writer create the lock. The lock may NOT exclude other writers. Run `tfsync doctor` to check this provider, and keep lock buckets unversioned",
            self.describe()
        ))
    }

    fn can_copy(&self) -> bool {
        true
    }

    /// Every PUT carries `Content-MD5`, and the server answers with the
    /// ETag of what it stored.
    fn write_etag_is_stored(&self) -> bool {
        true
    }

    async fn copy_from(
        &self,
        src_bucket: &str,
        src_key: &str,
        key: &str,
    ) -> Result<Option<String>> {
        self.copy_from_if(src_bucket, src_key, key, None).await
    }

    async fn get_head(&self, key: &str, len: u64, etag: &str) -> Result<GetResult> {
        self.log(format_args!(
            "GET {} (bytes 0-{}, If-Match)",
            self.location(key),
            len.saturating_sub(1)
        ));
        self.pace().await;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", len.saturating_sub(1)))
            .if_match(format!("\"{etag}\""))
            .set_sse_customer_algorithm(self.sse_c().map(|_| "AES256".to_string()))
            .set_sse_customer_key(self.sse_c().map(|(k, _)| k.to_string()))
            .set_sse_customer_key_md5(self.sse_c().map(|(_, m)| m))
            .send()
            .await
            .map_err(|e| self.map_err(key, e, Op::IfMatch))?;
        let mut got = self.read_all(key, out).await?;
        // A server that ignores Range sends it all.
        got.bytes
            .truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(got)
    }

    async fn copy_from_if(
        &self,
        src_bucket: &str,
        src_key: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<String>> {
        self.log(format_args!(
            "COPY s3://{src_bucket}/{src_key} -> {}",
            self.location(key)
        ));
        self.pace().await;
        // x-amz-copy-source is `bucket/key`, URL-encoded (the SDK does not
        // encode it); `/` stays as it is.
        const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let source = format!(
            "{src_bucket}/{}",
            percent_encoding::utf8_percent_encode(src_key, SET)
        );
        // The copy is written with this store's write options, and the
        // source read with its SSE-C key: `store::open` allows server-side
        // copy only between buckets of one server, which share them.
        let sse_c = self.sse_c();
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(source)
            .set_copy_source_if_match(if_match.map(|e| format!("\"{e}\"")))
            .set_server_side_encryption(self.write.sse.as_deref().map(Into::into))
            .set_ssekms_key_id(self.write.kms_key_id.clone())
            .set_acl(self.write.acl.as_deref().map(Into::into))
            .set_sse_customer_algorithm(sse_c.as_ref().map(|_| "AES256".to_string()))
            .set_sse_customer_key(sse_c.as_ref().map(|(k, _)| k.to_string()))
            .set_sse_customer_key_md5(sse_c.as_ref().map(|(_, m)| m.clone()))
            .set_copy_source_sse_customer_algorithm(sse_c.as_ref().map(|_| "AES256".to_string()))
            .set_copy_source_sse_customer_key(sse_c.as_ref().map(|(k, _)| k.to_string()))
            .set_copy_source_sse_customer_key_md5(sse_c.as_ref().map(|(_, m)| m.clone()))
            .send()
            .await
            .map_err(|e| self.map_err(key, e, Op::Other))?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(unquote_etag))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.log(format_args!("LIST {}*", self.location(prefix)));
        self.pace().await;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                self.pace().await;
            }
            let Some(page) = pages.next().await else {
                break;
            };
            let page = page.map_err(|e| self.map_err(prefix, e, Op::Other))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().map(unquote_etag),
                    last_modified: to_utc(o.last_modified()),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
