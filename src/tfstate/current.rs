//! The current state read before a guarded write, without holding a large
//! one in memory: its bytes stream into a [`Spool`] (memory up to
//! [`SPOOL_IN_MEMORY`], then an unnamed temporary file), and the push rules
//! read them from there in one streaming pass each. The write itself needs
//! only the current state's ETag, MD5 and what the rules say of it, so a
//! 200 MB state costs the new bytes and a few MB, not twice the state.

use super::read;
use super::state::{self, StateBody, StateInfo};
use super::stream;
use crate::store::{ObjectMeta, ObjectStore, StoreError};
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// States up to this size stay in memory; larger ones go to a temporary
/// file as they arrive.
pub const SPOOL_IN_MEMORY: usize = 8 << 20;

/// An [`AsyncWrite`] sink that keeps what it is given in memory up to a
/// limit, then in an unnamed temporary file (removed by the system when it
/// is closed, whatever happens to the process).
#[derive(Debug)]
pub struct Spool {
    mem: Vec<u8>,
    file: Option<std::fs::File>,
    size: u64,
    limit: usize,
}

impl Spool {
    pub fn new(limit: usize) -> Self {
        Spool {
            mem: Vec::new(),
            file: None,
            size: 0,
            limit,
        }
    }

    fn push(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() && self.mem.len() + buf.len() > self.limit {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    /// What was written: in memory, or the file.
    pub fn into_body(self) -> Body {
        match self.file {
            Some(file) => Body::File {
                file,
                size: self.size,
            },
            None => Body::Mem(self.mem),
        }
    }
}

impl AsyncWrite for Spool {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.get_mut().push(buf).map(|()| buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where a spooled object's bytes are.
#[derive(Debug)]
pub enum Body {
    Mem(Vec<u8>),
    File { file: std::fs::File, size: u64 },
}

/// A buffered reader of a [`Body`] from its first byte (a concrete type:
/// the JSON reader reads it a byte at a time).
enum BodyReader<'a> {
    Mem(&'a [u8]),
    File(BufReader<std::fs::File>),
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BodyReader::Mem(b) => b.read(buf),
            BodyReader::File(f) => f.read(buf),
        }
    }
}

impl BufRead for BodyReader<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        match self {
            BodyReader::Mem(b) => b.fill_buf(),
            BodyReader::File(f) => f.fill_buf(),
        }
    }
    fn consume(&mut self, n: usize) {
        match self {
            BodyReader::Mem(b) => b.consume(n),
            BodyReader::File(f) => f.consume(n),
        }
    }
}

impl Body {
    /// A buffered reader from the first byte.
    fn reader(&self) -> std::io::Result<BodyReader<'_>> {
        match self {
            Body::Mem(b) => Ok(BodyReader::Mem(&b[..])),
            Body::File { file, .. } => {
                let mut f = file.try_clone()?;
                f.rewind()?;
                Ok(BodyReader::File(BufReader::with_capacity(256 << 10, f)))
            }
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Body::Mem(b) => b.len() as u64,
            Body::File { size, .. } => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The current state at a key: its metadata, the MD5 of its bytes (checked
/// against the ETag when that is an MD5) and the bytes themselves.
#[derive(Debug)]
pub struct Current {
    pub meta: ObjectMeta,
    pub md5: String,
    pub body: Body,
}

impl Current {
    /// Read `key` (streamed, checked); `None` when there is no object.
    pub async fn read(store: &dyn ObjectStore, key: &str) -> Result<Option<Current>, StoreError> {
        let mut spool = Spool::new(SPOOL_IN_MEMORY);
        match read::get_to(store, key, &mut spool).await {
            Ok((meta, md5)) => Ok(Some(Current {
                meta,
                md5,
                body: spool.into_body(),
            })),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Current state already in memory (a read made elsewhere).
    pub fn from_bytes(meta: ObjectMeta, bytes: Vec<u8>) -> Current {
        Current {
            meta,
            md5: crate::store::md5_hex(&bytes),
            body: Body::Mem(bytes),
        }
    }

    pub fn size(&self) -> u64 {
        self.body.len()
    }
}

impl StateBody for Current {
    fn is_blank(&self) -> bool {
        match &self.body {
            Body::Mem(b) => b.is_blank(),
            Body::File { .. } => self
                .body
                .reader()
                .is_ok_and(|r| r.bytes().all(|b| b.is_ok_and(|b| b.is_ascii_whitespace()))),
        }
    }

    fn info(&self) -> Result<StateInfo, String> {
        match &self.body {
            Body::Mem(b) => state::parse(b),
            Body::File { .. } => state::parse_reader(
                self.body
                    .reader()
                    .map_err(|e| format!("cannot read its temporary copy: {e}"))?,
            ),
        }
    }

    fn digest(&self) -> Option<[u8; 32]> {
        match &self.body {
            Body::Mem(b) => stream::digest(b),
            Body::File { .. } => stream::digest_from_reader(self.body.reader().ok()?),
        }
    }

    fn same_bytes(&self, other: &[u8]) -> bool {
        self.size() == other.len() as u64
            && crate::store::md5_hex(other) == self.md5
            && self.holds(other)
    }

    fn same_payload(&self, other: &crate::store::Payload) -> bool {
        self.size() == other.len() as u64 && other.md5_hex() == self.md5 && self.holds(other)
    }
}

impl Current {
    /// Are the bytes held exactly `other` (size and MD5 already equal)?
    fn holds(&self, other: &[u8]) -> bool {
        match &self.body {
            Body::Mem(b) => b == other,
            Body::File { .. } => {
                let Ok(mut r) = self.body.reader() else {
                    return false;
                };
                let mut rest = other;
                loop {
                    let chunk = match r.fill_buf() {
                        Ok(c) => c,
                        Err(_) => return false,
                    };
                    if chunk.is_empty() {
                        return rest.is_empty();
                    }
                    let n = chunk.len().min(rest.len());
                    if n == 0 || chunk[..n] != rest[..n] {
                        return false;
                    }
                    rest = &rest[n..];
                    r.consume(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn st(serial: u64, pad: usize) -> Vec<u8> {
        format!(
            r#"{{"version":4,"serial":{serial},"lineage":"L","outputs":{{"o":{{"value":"{}"}}}},"resources":[{{"name":"r"}}]}}"#,
            "x".repeat(pad)
        )
        .into_bytes()
    }

    async fn spooled(bytes: &[u8], limit: usize) -> Current {
        let mut s = Spool::new(limit);
        for c in bytes.chunks(7) {
            s.write_all(c).await.expect("write");
        }
        Current {
            meta: ObjectMeta {
                key: "k".into(),
                size: bytes.len() as u64,
                etag: None,
                last_modified: None,
            },
            md5: crate::store::md5_hex(bytes),
            body: s.into_body(),
        }
    }

    #[tokio::test]
    async fn a_spooled_file_answers_as_the_bytes_do() {
        let doc = st(5, 100);
        for limit in [usize::MAX, 10] {
            let c = spooled(&doc, limit).await;
            assert_eq!(matches!(c.body, Body::File { .. }), limit == 10);
            assert_eq!(c.size(), doc.len() as u64);
            assert_eq!(c.info(), state::parse(&doc));
            assert_eq!(c.digest(), stream::digest(&doc));
            assert!(c.same_bytes(&doc));
            assert!(!c.same_bytes(&st(5, 99)));
            let mut other = doc.clone();
            other[doc.len() - 3] = b'y';
            assert!(!c.same_bytes(&other));
            assert!(!c.is_blank());
            // The push rules read it like the bytes.
            for new in [st(6, 1), st(5, 100), st(5, 1), st(4, 1)] {
                assert_eq!(
                    state::check_push_body(&new, Some(&c)),
                    state::check_push(&new, Some(&doc))
                );
            }
        }
        let blank = spooled(b"  \n ", 1).await;
        assert!(blank.is_blank());
        assert_eq!(state::check_push_body(&st(1, 1), Some(&blank)), Ok(()));
    }
}
