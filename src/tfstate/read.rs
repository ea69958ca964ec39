//! The one verified read of a state: the bytes received are checked against
//! the object's ETag when the ETag is a plain MD5 (a single-part upload
//! without SSE-KMS), so a transfer corrupted on the way is an error, not a
//! copy. Used by `pull`, backup and migration.

use crate::store::{ObjectMeta, ObjectStore, Payload, StoreError, etag_is_md5};
use tokio::io::AsyncWrite;

/// An object read in one GET: its metadata and its bytes with their MD5
/// (checked against the ETag, and handed on to a write as they are).
#[derive(Debug, Clone)]
pub struct Verified {
    pub meta: ObjectMeta,
    pub body: Payload,
}

impl Verified {
    /// Hex MD5 of the bytes read.
    pub fn md5(&self) -> String {
        self.body.md5_hex()
    }
}

/// Do `md5` (of the bytes received from `location`) and the object's ETag
/// agree, where the ETag is an MD5?
pub fn check(location: &str, meta: &ObjectMeta, md5: &str) -> Result<(), StoreError> {
    match meta.etag.as_deref().filter(|e| etag_is_md5(e)) {
        Some(etag) if !etag.eq_ignore_ascii_case(md5) => Err(StoreError::Transport {
            location: location.to_string(),
            message: format!(
                "the bytes received (MD5 {md5}) do not match the ETag {etag}: the transfer was corrupted. Retry"
            ),
        }),
        _ => Ok(()),
    }
}

/// One GET of `key`, checked.
pub async fn get(store: &dyn ObjectStore, key: &str) -> Result<Verified, StoreError> {
    let got = store.get(key).await?;
    let body = Payload::new(got.bytes);
    check(&store.location(key), &got.meta, &body.md5_hex())?;
    Ok(Verified {
        meta: got.meta,
        body,
    })
}

/// [`get`], with `None` when there is no object.
pub async fn get_opt(store: &dyn ObjectStore, key: &str) -> Result<Option<Verified>, StoreError> {
    match get(store, key).await {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Stream `key` into `sink` (memory stays flat), then check it. Bytes
/// already written to `sink` cannot be taken back: a caller that needs all
/// or nothing writes to a temporary file.
pub async fn get_to(
    store: &dyn ObjectStore,
    key: &str,
    sink: &mut (dyn AsyncWrite + Unpin + Send),
) -> Result<(ObjectMeta, String), StoreError> {
    let (meta, md5) = store.get_to(key, sink).await?;
    check(&store.location(key), &meta, &md5)?;
    Ok((meta, md5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::FsStore;
    use crate::store::{PutMode, md5_hex};

    fn meta(etag: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            key: "k".into(),
            size: 1,
            etag: etag.map(str::to_string),
            last_modified: None,
        }
    }

    #[test]
    fn checks_only_plain_md5_etags() {
        let md5 = md5_hex(b"x");
        assert!(check("l", &meta(Some(&md5)), &md5).is_ok());
        assert!(check("l", &meta(Some(&md5.to_uppercase())), &md5).is_ok());
        assert!(check("l", &meta(None), &md5).is_ok());
        // Multipart ETags are not an MD5 of the object: not checked.
        assert!(check("l", &meta(Some("d41d8cd98f00b204e9800998ecf8427e-2")), &md5).is_ok());
        let e = check("s3://b/k", &meta(Some(&md5_hex(b"y"))), &md5).expect_err("mismatch");
        assert!(e.to_string().contains("s3://b/k") && e.to_string().contains("corrupted"));
    }

    #[tokio::test]
    async fn reads_a_directory_store() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = FsStore::new(dir.path()).expect("store");
        assert!(get_opt(&store, "k").await.expect("get").is_none());
        store
            .put("k", b"state".to_vec(), PutMode::Create)
            .await
            .expect("put");
        let v = get(&store, "k").await.expect("get");
        assert_eq!(
            (&*v.body, v.md5(), v.meta.size),
            (&b"state"[..], md5_hex(b"state"), 5)
        );
        let mut sink = Vec::new();
        let (m, md5) = get_to(&store, "k", &mut sink).await.expect("get_to");
        assert_eq!(
            (sink.as_slice(), m.size, md5),
            (&b"state"[..], 5, md5_hex(b"state"))
        );
    }
}
