//! A local directory as an object store: for tests without a server and for
//! keeping states on a local or network file system.
//!
//! - create-only is atomic: the body is written to a temporary file and then
//!   hard-linked to the key, which fails if the key exists;
//! - every write is atomic: temporary file + rename;
//! - compare-and-swap (`Update`) and conditional delete hold an exclusive
//!   `flock` on `<root>/.tfsync-store.lock` while they compare and replace.

use super::{GetResult, ObjectMeta, ObjectStore, PutMode, Result, StoreError, md5_hex};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fs;
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

const TMP_PREFIX: &str = ".tfsync-tmp-";
const LOCK_FILE: &str = ".tfsync-store.lock";

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    name: String,
    /// fsync every write (the default); when off, [`ObjectStore::flush`]
    /// makes all writes durable at once (bulk copies: backups).
    sync_each: bool,
    /// Paths written since the last flush (batched mode only).
    pending: std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

/// Up to this many pending files, a flush syncs them one by one; above, it
/// syncs the whole file system at once (one journal commit).
const FLUSH_ONE_BY_ONE: usize = 64;

impl FsStore {
    /// A store rooted at `root`, which is created if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root: PathBuf = root.into();
        fs::create_dir_all(&root).map_err(|e| StoreError::Other {
            location: format!("file://{}", root.display()),
            message: format!("cannot create the directory: {e}"),
        })?;
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(FsStore {
            root,
            name,
            sync_each: true,
            pending: Default::default(),
        })
    }

    /// A store for bulk writes: writes are still atomic (temporary file +
    /// rename) but not synced one by one; call [`ObjectStore::flush`] before
    /// anything that must only exist once they are all durable.
    pub fn new_batched(root: impl Into<PathBuf>) -> Result<Self> {
        Ok(FsStore {
            sync_each: false,
            ..FsStore::new(root)?
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let bad = key.is_empty()
            || key.ends_with('/')
            || rel.components().any(|c| !matches!(c, Component::Normal(_)))
            || rel
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX) || n == LOCK_FILE);
        if bad {
            return Err(StoreError::Other {
                location: self.location(key),
                message: "invalid key for a directory store (empty, absolute, '.', '..' or reserved name)".into(),
            });
        }
        Ok(self.root.join(rel))
    }

    fn io_err(&self, key: &str, e: io::Error) -> StoreError {
        match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound {
                location: self.location(key),
            },
            io::ErrorKind::PermissionDenied => StoreError::AccessDenied {
                location: self.location(key),
                message: e.to_string(),
            },
            _ => StoreError::Other {
                location: self.location(key),
                message: e.to_string(),
            },
        }
    }

    fn meta_of(&self, key: &str, path: &Path, bytes: Option<&[u8]>) -> Result<ObjectMeta> {
        let md = fs::metadata(path).map_err(|e| self.io_err(key, e))?;
        if !md.is_file() {
            return Err(StoreError::NotFound {
                location: self.location(key),
            });
        }
        let etag = match bytes {
            Some(b) => md5_hex(b),
            None => md5_hex(&fs::read(path).map_err(|e| self.io_err(key, e))?),
        };
        Ok(ObjectMeta {
            key: key.to_string(),
            size: md.len(),
            etag: Some(etag),
            last_modified: md.modified().ok().map(DateTime::<Utc>::from),
        })
    }

    /// Write `body` to a fresh temporary file beside `path`, synced.
    fn write_temp(&self, key: &str, path: &Path, body: &[u8]) -> Result<tempfile::NamedTempFile> {
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| self.io_err(key, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| self.io_err(key, e))?;
        tmp.write_all(body).map_err(|e| self.io_err(key, e))?;
        if self.sync_each {
            tmp.as_file().sync_all().map_err(|e| self.io_err(key, e))?;
        }
        Ok(tmp)
    }

    /// Hold the store-wide exclusive lock for the life of the returned file.
    fn exclusive(&self, key: &str) -> Result<fs::File> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCK_FILE))
            .map_err(|e| self.io_err(key, e))?;
        // SAFETY: flock on a file descriptor we own; released when `f` closes.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(self.io_err(key, io::Error::last_os_error()));
        }
        Ok(f)
    }

    fn current_etag(&self, path: &Path) -> Option<String> {
        fs::read(path).ok().map(|b| md5_hex(&b))
    }

    fn put_blocking(&self, key: &str, body: &[u8], mode: &PutMode) -> Result<Option<String>> {
        let path = self.path_of(key)?;
        let tmp = self.write_temp(key, &path, body)?;
        match mode {
            PutMode::Overwrite => {
                tmp.persist(&path).map_err(|e| self.io_err(key, e.error))?;
            }
            PutMode::Create => {
                // link(2) refuses an existing target: atomic create-only.
                match fs::hard_link(tmp.path(), &path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(StoreError::AlreadyExists {
                            location: self.location(key),
                        });
                    }
                    Err(e) => return Err(self.io_err(key, e)),
                }
            }
            PutMode::Update(expected) => {
                let _guard = self.exclusive(key)?;
                if self.current_etag(&path).as_deref() != Some(expected.as_str()) {
                    return Err(StoreError::Precondition {
                        location: self.location(key),
                    });
                }
                tmp.persist(&path).map_err(|e| self.io_err(key, e.error))?;
            }
        }
        if self.sync_each {
            sync_dir(path.parent());
        } else if let Ok(mut p) = self.pending.lock() {
            p.push(path);
        }
        Ok(Some(md5_hex(body)))
    }

    fn delete_blocking(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        let path = self.path_of(key)?;
        let _guard = match if_match {
            Some(_) => Some(self.exclusive(key)?),
            None => None,
        };
        if let Some(expected) = if_match {
            match self.current_etag(&path) {
                None => return Ok(()),
                Some(cur) if cur != expected => {
                    return Err(StoreError::Precondition {
                        location: self.location(key),
                    });
                }
                Some(_) => {}
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(path.parent());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err(key, e)),
        }
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io_err(prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io_err(prefix, e))?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TMP_PREFIX) || name == LOCK_FILE {
                    continue;
                }
                let ft = entry.file_type().map_err(|e| self.io_err(prefix, e))?;
                if ft.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel.to_string_lossy().into_owned();
                if key.starts_with(prefix) {
                    match self.meta_of(&key, &path, None) {
                        Ok(m) => out.push(m),
                        Err(StoreError::NotFound { .. }) => {} // deleted while listing
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

fn sync_dir(dir: Option<&Path>) {
    if let Some(d) = dir
        && let Ok(f) = fs::File::open(d)
    {
        let _ = f.sync_all();
    }
}

async fn blocking<T: Send + 'static>(
    location: String,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Other {
            location,
            message: format!("worker failed: {e}"),
        })
    })
}

#[async_trait]
impl ObjectStore for FsStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn bucket(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(self.location(&key), move || {
            let path = this.path_of(&key)?;
            let bytes = fs::read(&path).map_err(|e| this.io_err(&key, e))?;
            let meta = this.meta_of(&key, &path, Some(&bytes))?;
            Ok(GetResult { meta, bytes })
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(self.location(&key), move || {
            let path = this.path_of(&key)?;
            this.meta_of(&key, &path, None)
        })
        .await
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<String>> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(self.location(&key), move || {
            this.put_blocking(&key, &body, &mode)
        })
        .await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        let (this, key, m) = (self.clone(), key.to_string(), if_match.map(str::to_string));
        blocking(self.location(&key), move || {
            this.delete_blocking(&key, m.as_deref())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(self.location(&prefix), move || this.list_blocking(&prefix)).await
    }

    async fn flush(&self) -> Result<()> {
        if self.sync_each {
            return Ok(());
        }
        let pending = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => Vec::new(),
        };
        if pending.is_empty() {
            return Ok(());
        }
        let this = self.clone();
        blocking(self.describe(), move || {
            if pending.len() > FLUSH_ONE_BY_ONE {
                let f = fs::File::open(&this.root).map_err(|e| this.io_err("", e))?;
                // SAFETY: syncfs on a descriptor we own: flushes its whole file system.
                if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
                    return Err(this.io_err("", io::Error::last_os_error()));
                }
                return Ok(());
            }
            let mut dirs = std::collections::BTreeSet::new();
            for path in &pending {
                let key = path
                    .strip_prefix(&this.root)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned();
                match fs::File::open(path).and_then(|f| f.sync_all()) {
                    Ok(()) => {}
                    // Deleted since it was written: nothing to make durable.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(this.io_err(&key, e)),
                }
                if let Some(d) = path.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
            for d in dirs {
                sync_dir(Some(&d));
            }
            Ok(())
        })
        .await
    }
}
