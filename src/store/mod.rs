//! Object storage behind one small trait.
//!
//! Every backend (S3-compatible servers, a local directory) implements
//! [`ObjectStore`]; the domain layer (`tfstate`) only ever talks to this trait.
//! The conformance suite in `tests/conformance.rs` holds every implementation to
//! the same contract.

pub mod azure;
pub mod azure_probe;
pub mod dynamo;
pub mod fs;
pub mod gcs;
pub mod local;
pub mod open;
pub mod probe;
pub mod probe_gcs;
pub mod s3;

pub use open::Store;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// How a `put` may replace what is already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write unconditionally.
    Overwrite,
    /// Write only if the key does not exist (`If-None-Match: *`).
    Create,
    /// Write only if the current object has this ETag (`If-Match`).
    Update(String),
}

/// What a store knows about one object. ETags are kept without quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// An object's bytes and its metadata, as read in one request.
#[derive(Debug, Clone)]
pub struct GetResult {
    pub meta: ObjectMeta,
    pub bytes: Vec<u8>,
}

/// One name of the object at a key that no other key of any store shares
/// unless it is the same object: `migrate` compares them to refuse moving a
/// state onto itself (with `--delete-source`, the only copy would go).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectId {
    /// An existing file: device and inode (a hard link to it, or the same
    /// directory reached by another path, has the same).
    File { dev: u64, ino: u64 },
    /// A key in a directory store, existing or not: the deepest existing
    /// directory on its way (device and inode) and the rest of the key below
    /// it.
    Name { dev: u64, ino: u64, rest: String },
    /// An object on a server: endpoint (`aws` for AWS itself), bucket, key.
    Remote {
        endpoint: String,
        bucket: String,
        key: String,
    },
}

/// Typed store errors. `location` is always `scheme://bucket/key` so that every
/// message names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{location} does not exist")]
    NotFound { location: String },
    #[error("bucket {bucket} does not exist (or is not visible with these credentials)")]
    BucketNotFound { bucket: String },
    #[error("{location} already exists")]
    AlreadyExists { location: String },
    #[error("precondition failed on {location}: the object changed or is missing")]
    Precondition { location: String },
    #[error("access denied to {location}: {message}. Check the credentials and the bucket policy")]
    AccessDenied { location: String, message: String },
    #[error("cannot reach the store for {location}: {message}")]
    Transport { location: String, message: String },
    /// The response started but its body was cut off (connection reset).
    #[error("the transfer of {location} was cut off: {message}. Retry")]
    BodyInterrupted { location: String, message: String },
    #[error("{location}: {message}")]
    Other { location: String, message: String },
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The contract every backend fulfils. Keep it small: anything that can be
/// built from these calls belongs in the domain layer, not here.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// A URL-like name for messages: `s3://bucket` or `file:///dir`.
    fn describe(&self) -> String;

    /// The location of one key, for messages.
    fn location(&self, key: &str) -> String {
        format!("{}/{}", self.describe(), key)
    }

    /// The bucket name as Terraform writes it in a lock's `Path`.
    fn bucket(&self) -> &str;

    /// The DynamoDB table Terraform's s3 backend keeps this bucket's lock
    /// items and state digests in (`dynamodb_table`), when one is
    /// configured: every lock taken on the store is then the pair
    /// (`tfstate::guard`), and every state write records its digest
    /// (`tfstate::write`).
    fn lock_table(&self) -> Option<&dynamo::LockTable> {
        None
    }

    /// Every [`ObjectId`] of `key` (no request to a server). Two keys
    /// sharing one are the same object. Default: none known (the caller
    /// falls back on comparing [`ObjectStore::describe`] and the keys).
    async fn identities(&self, key: &str) -> Result<Vec<ObjectId>> {
        let _ = key;
        Ok(Vec::new())
    }

    /// Terraform's local backend (the state lock is an OS lock on the state
    /// file, `tfstate::local_lock`), or `None`.
    fn as_local(&self) -> Option<&local::LocalStore> {
        None
    }

    /// Azure Blob Storage (the state lock is a lease on the state blob,
    /// `tfstate::azure_lock`), or `None`.
    fn as_azure(&self) -> Option<&azure::AzureStore> {
        None
    }

    /// Google Cloud Storage (the state lock is `<prefix>/<W>.tflock` beside
    /// `<prefix>/<W>.tfstate`, its ID the lock object's generation,
    /// `tfstate::gcs_lock`), or `None`.
    fn as_gcs(&self) -> Option<&gcs::GcsStore> {
        None
    }

    /// Read an object and its metadata in one request.
    async fn get(&self, key: &str) -> Result<GetResult>;

    /// Read an object's metadata only.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;

    /// Write an object; returns the new ETag when the store reports one.
    /// `Create` on an existing key fails with `AlreadyExists`; `Update` with a
    /// stale or missing ETag fails with `Precondition`.
    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<String>>;

    /// [`ObjectStore::put`] of shared bytes whose MD5 is known: a store
    /// that can send them without a copy does (a large state is then held
    /// once), and one that needs their MD5 takes it from `body` instead of
    /// hashing them again. The default copies them into a `put`.
    async fn put_bytes(&self, key: &str, body: Payload, mode: PutMode) -> Result<Option<String>> {
        self.put(key, body.to_vec(), mode).await
    }

    /// Delete an object. `if_match` is sent when given, but callers must not
    /// rely on it being honoured (Ceph RGW ignores it). Deleting a missing key
    /// succeeds.
    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()>;

    /// Delete `key` only if its ETag is `etag`, saying whether there was
    /// one: `Ok(false)` when it was gone already (what a release must not
    /// report as its own), `Precondition` when another object is there. A
    /// server that ignores `If-Match` on DELETE (Ceph RGW) cannot tell and
    /// says `Ok(true)`. The default looks first (HEAD), then deletes.
    async fn delete_if(&self, key: &str, etag: &str) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => self.delete(key, Some(etag)).await.map(|()| true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove every empty directory beneath `prefix` (never `prefix`
    /// itself), and the temporary files of killed runs in them once older
    /// than an hour; returns how many entries went. Only for a backup root
    /// after its retention. Default (object stores have no directories):
    /// nothing to do.
    async fn remove_empty_dirs(&self, prefix: &str) -> Result<usize> {
        let _ = prefix;
        Ok(0)
    }

    /// Every object whose key starts with `prefix`, sorted by key, all pages.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// A warning when cheap signals say that locking may be unsafe on this
    /// store (at most one request; errors are not warnings). `tfsync doctor`
    /// is the full probe.
    async fn lock_safety_warning(&self) -> Option<String> {
        None
    }

    /// Stream an object into `sink` without holding it in memory. Returns
    /// its metadata and the hex MD5 of the bytes written, so the caller can
    /// check them against the ETag before trusting the copy.
    async fn get_to(
        &self,
        key: &str,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<(ObjectMeta, String)> {
        let got = self.get(key).await?;
        sink.write_all(&got.bytes)
            .await
            .map_err(local_write_error)?;
        sink.flush().await.map_err(local_write_error)?;
        let md5 = md5_hex(&got.bytes);
        Ok((got.meta, md5))
    }

    /// The keys under `prefix` with their sizes, as [`ObjectStore::list`],
    /// but ETags may be missing when they cost more than the listing (the
    /// directory store reads each file for its MD5): for existence checks.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.list(prefix).await
    }

    /// The first `len` bytes of an object (all of it when it is shorter),
    /// only while its ETag is `etag`: `Precondition` otherwise. The default
    /// reads the whole object and compares.
    async fn get_head(&self, key: &str, len: u64, etag: &str) -> Result<GetResult> {
        let mut got = self.get(key).await?;
        if got.meta.etag.as_deref() != Some(etag) {
            return Err(StoreError::Precondition {
                location: self.location(key),
            });
        }
        got.bytes
            .truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(got)
    }

    /// [`ObjectStore::copy_from`], of the source only while its ETag is
    /// `if_match` (`x-amz-copy-source-if-match`) where the store can say
    /// so; callers still compare the new object's ETag. The default ignores
    /// `if_match`.
    async fn copy_from_if(
        &self,
        src_bucket: &str,
        src_key: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<String>> {
        let _ = if_match;
        self.copy_from(src_bucket, src_key, key).await
    }

    /// How long the command is prepared to wait for locks (`--lock-timeout`,
    /// `--wait`), from now: a store with an internal lock of its own (the
    /// directory store) waits for it up to then. Default: nothing to do.
    fn set_lock_wait(&self, wait: std::time::Duration) {
        let _ = wait;
    }

    /// Make every write so far durable (stores that do not sync each write
    /// on their own). The default: nothing to do.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Can [`ObjectStore::copy_from`] copy between two buckets of this
    /// store's server without the bytes passing through the client?
    fn can_copy(&self) -> bool {
        false
    }

    /// Is the ETag a write returns the server's own, of the bytes it
    /// stored? (S3: the server computes it from the body it received and
    /// checked against the `Content-MD5` sent.) Then a write answered with
    /// the MD5 of the bytes sent stored exactly those bytes, and a read-back
    /// would learn nothing more. Default `false`: the ETag is worked out by
    /// the client (the directory store hashes what it was given), so a
    /// read-back must look at the stored object.
    fn write_etag_is_stored(&self) -> bool {
        false
    }

    /// Server-side copy of `src_key` in bucket `src_bucket` (same server,
    /// same credentials) to `key` in this store, unconditionally; returns the
    /// new object's ETag. Stores without server-side copy refuse.
    async fn copy_from(
        &self,
        src_bucket: &str,
        src_key: &str,
        key: &str,
    ) -> Result<Option<String>> {
        let _ = (src_bucket, src_key);
        Err(StoreError::Other {
            location: self.location(key),
            message: "this store cannot copy server-side".into(),
        })
    }
}

/// A failure to write the local copy while streaming an object.
pub fn local_write_error(e: std::io::Error) -> StoreError {
    StoreError::Other {
        location: "the local copy".into(),
        message: format!("write failed: {e}"),
    }
}

/// Bytes to write and their MD5, hashed once, from those very bytes: the
/// only constructor computes it. The S3 store sends it as `Content-MD5`, the
/// directory store reports it as the ETag, the guarded write compares a
/// lost response and records the DynamoDB digest with it, and a verified
/// read ([`crate::tfstate::read`]) checks the ETag with it: a state is
/// hashed once on its way from one store to another, not at every step.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    bytes: bytes::Bytes,
    md5: [u8; 16],
}

impl Payload {
    pub fn new(bytes: impl Into<bytes::Bytes>) -> Self {
        use md5::{Digest, Md5};
        let bytes = bytes.into();
        let md5 = Md5::digest(&bytes).into();
        Payload { bytes, md5 }
    }

    /// The bytes (shared, not copied).
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.bytes
    }

    /// Hex MD5 of the bytes: the ETag S3 gives to a single-part upload.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }

    /// Base64 MD5 of the bytes: the `Content-MD5` header.
    pub fn md5_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Size and MD5, not the bytes (a state holds secrets).
impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Payload({} bytes, MD5 {})",
            self.bytes.len(),
            self.md5_hex()
        )
    }
}

/// Hex MD5 of a body: the ETag S3 gives to a single-part upload.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

/// Strip the quotes S3 puts around ETags (and a weak `W/` prefix).
pub fn unquote_etag(etag: &str) -> String {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"').to_string()
}

/// True when an ETag is a plain MD5 of the body (not multipart, not SSE-KMS).
pub fn etag_is_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(unquote_etag("\"abc\""), "abc");
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let p = Payload::new(&b"state"[..]);
        assert_eq!(p.md5_hex(), md5_hex(b"state"));
        // `printf state | openssl md5 -binary | base64`
        assert_eq!(p.md5_base64(), "ntOeLqkxWGtqmFppQu9XPg==");
        assert_eq!(&*p, b"state");
        assert!(!format!("{p:?}").contains("state"), "{p:?}");
        assert!(etag_is_md5("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!etag_is_md5("d41d8cd98f00b204e9800998ecf8427e-2"));
    }
}
