//! Terraform's `local` backend as a store: the state at `path` (default
//! `terraform.tfstate`), the state of workspace `W` at
//! `<workspace_dir>/W/terraform.tfstate` (default `terraform.tfstate.d`),
//! both relative to the working directory, as
//! `internal/backend/local/backend.go` (`StatePaths`) lays them out.
//!
//! The bytes go through the directory store ([`FsStore`]: beneath its root,
//! no links, regular files only); what differs is what Terraform's
//! `statemgr.Filesystem` dictates:
//!
//! - **States are written in place**: Terraform locks the state file itself
//!   (an `fcntl` lock on its inode, see `tfstate::local_lock`) and truncates
//!   and rewrites it through the locked descriptor. Replacing the file by a
//!   rename would leave a waiting Terraform holding the old inode, so a
//!   state that exists is rewritten in place too, after its previous content
//!   was copied to `<path>.backup` (as Terraform keeps one). Writers and
//!   readers of tfsync exclude each other with `flock(2)` on the state file
//!   (independent of the `fcntl` lock), so tfsync never reads a half-written
//!   state; Terraform itself takes no such lock, and a read while Terraform
//!   writes is as exposed as Terraform's own `state pull`.
//! - **An empty file is no state** (Terraform's `statefile.ErrNoState`):
//!   Terraform creates the file empty to lock it. `get` and `head` say "not
//!   found", a create-only write fills it in place.
//! - **Listing** sees only the states of this layout (never the rest of the
//!   working directory, `.terraform/` with its providers included).

use super::fs::{FsStore, blocking};
use super::{GetResult, ObjectMeta, ObjectStore, PutMode, Result, StoreError, md5_hex};
use async_trait::async_trait;
use rustix::fs::{self as rfs, FlockOperation};
use rustix::io::Errno;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

/// The file name of every workspace's state (`DefaultStateFilename`).
pub const WORKSPACE_STATE_NAME: &str = "terraform.tfstate";
/// `DefaultWorkspaceDir`.
pub const DEFAULT_WORKSPACE_DIR: &str = "terraform.tfstate.d";
/// `DefaultBackupExtension`.
pub const BACKUP_SUFFIX: &str = ".backup";

/// How long a reader waits for a tfsync writer to finish one in-place write
/// before it reads anyway.
const READ_WAIT: Duration = Duration::from_secs(2);
/// How long a writer waits for readers and another writer.
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// Where the states are, as keys beneath the store's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLayout {
    /// The default workspace's state (`path`).
    pub path: String,
    /// The directory of the other workspaces (`workspace_dir`).
    pub workspace_dir: String,
}

impl LocalLayout {
    /// Is `key` the state of a non-default workspace
    /// (`<workspace_dir>/W/terraform.tfstate`)?
    fn is_workspace_state(&self, key: &str) -> bool {
        key.strip_prefix(&self.workspace_dir)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_suffix(WORKSPACE_STATE_NAME))
            .and_then(|r| r.strip_suffix('/'))
            .is_some_and(|w| !w.is_empty() && !w.contains('/'))
    }
}

#[derive(Debug, Clone)]
pub struct LocalStore {
    fs: FsStore,
    layout: LocalLayout,
}

/// Take `op` on `file` with `flock(2)`, polling until `wait` has passed.
/// `false` when it is still held by someone else then.
fn flock_within(file: &std::fs::File, op: FlockOperation, wait: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        match rfs::flock(file, op) {
            Ok(()) => return Ok(true),
            Err(Errno::WOULDBLOCK | Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

impl LocalStore {
    pub fn new(fs: FsStore, layout: LocalLayout) -> Self {
        LocalStore { fs, layout }
    }

    pub fn layout(&self) -> &LocalLayout {
        &self.layout
    }

    /// The directory store beneath (the lock opens the state file with it).
    pub fn fs(&self) -> &FsStore {
        &self.fs
    }

    /// Read `key` whole under a shared `flock` (no tfsync write in the
    /// middle of it). `None` when absent or empty.
    fn read_blocking(&self, key: &str) -> Result<Option<(Vec<u8>, rfs::Stat)>> {
        let Some((mut file, _)) = self.fs.open_existing(key, false)? else {
            return Ok(None);
        };
        let err = |e| self.fs.io_error(key, e);
        // Past the wait, read anyway (a writer that slow is not tfsync's).
        flock_within(&file, FlockOperation::NonBlockingLockShared, READ_WAIT).map_err(err)?;
        let st = rfs::fstat(&file).map_err(|e| err(e.into()))?;
        let max = self.fs.max_object_size();
        if st.st_size as u64 > max {
            return Err(self.fs.too_big_error(key, st.st_size as u64));
        }
        let mut bytes = Vec::with_capacity(st.st_size as usize);
        (&mut file)
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(err)?;
        if bytes.len() as u64 > max {
            return Err(self.fs.too_big_error(key, bytes.len() as u64));
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some((bytes, st)))
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            location: self.location(key),
        }
    }

    /// The in-place write of an existing file: under an exclusive `flock`,
    /// check `mode` against what is there, keep the old state in
    /// `<key>.backup`, then truncate, write and sync.
    async fn write_in_place(
        &self,
        key: &str,
        mut file: std::fs::File,
        body: Vec<u8>,
        mode: PutMode,
    ) -> Result<Option<String>> {
        let this = self.clone();
        let k = key.to_string();
        let (file, current) = blocking(self.location(key), move || {
            let err = |e| this.fs.io_error(&k, e);
            if !flock_within(&file, FlockOperation::NonBlockingLockExclusive, WRITE_WAIT)
                .map_err(err)?
            {
                return Err(StoreError::Other {
                    location: this.location(&k),
                    message: "another tfsync process keeps reading or writing this file; nothing was written, retry".into(),
                });
            }
            let mut current = Vec::new();
            file.seek(SeekFrom::Start(0)).map_err(err)?;
            (&mut file)
                .take(this.fs.max_object_size().saturating_add(1))
                .read_to_end(&mut current)
                .map_err(err)?;
            Ok((file, current))
        })
        .await?;
        match &mode {
            PutMode::Create if !current.is_empty() => {
                return Err(StoreError::AlreadyExists {
                    location: self.location(key),
                });
            }
            PutMode::Update(expected) if current.is_empty() || md5_hex(&current) != *expected => {
                return Err(StoreError::Precondition {
                    location: self.location(key),
                });
            }
            _ => {}
        }
        if key.ends_with(".tfstate") && !current.is_empty() && current != body {
            self.fs
                .put(
                    &format!("{key}{BACKUP_SUFFIX}"),
                    current,
                    PutMode::Overwrite,
                )
                .await?;
        }
        let etag = md5_hex(&body);
        let this = self.clone();
        let k = key.to_string();
        blocking(self.location(key), move || {
            let mut file = file;
            let err = |e| this.fs.io_error(&k, e);
            file.set_len(0).map_err(err)?;
            file.seek(SeekFrom::Start(0)).map_err(err)?;
            file.write_all(&body).map_err(err)?;
            file.sync_all().map_err(err)?;
            // Dropping the file releases the flock (never the fcntl lock of
            // the state lock: that one lives on its own descriptor).
            Ok(())
        })
        .await?;
        Ok(Some(etag))
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.fs.describe()
    }

    fn bucket(&self) -> &str {
        self.fs.bucket()
    }

    fn as_local(&self) -> Option<&LocalStore> {
        Some(self)
    }

    fn set_lock_wait(&self, wait: Duration) {
        self.fs.set_lock_wait(wait)
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let (this, k) = (self.clone(), key.to_string());
        let read = blocking(self.location(key), move || this.read_blocking(&k)).await?;
        let (bytes, st) = read.ok_or_else(|| self.not_found(key))?;
        let meta = self.fs.object_meta(key, &st, md5_hex(&bytes));
        Ok(GetResult { meta, bytes })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        Ok(self.get(key).await?.meta)
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<String>> {
        for _ in 0..4 {
            let (this, k) = (self.clone(), key.to_string());
            let existing =
                blocking(self.location(key), move || this.fs.open_existing(&k, true)).await?;
            match (existing, &mode) {
                (Some((file, _)), _) => return self.write_in_place(key, file, body, mode).await,
                (None, PutMode::Update(_)) => {
                    return Err(StoreError::Precondition {
                        location: self.location(key),
                    });
                }
                (None, _) => match self.fs.put(key, body.clone(), mode.clone()).await {
                    // Created meanwhile (maybe empty, by a lock): look again.
                    Err(StoreError::AlreadyExists { .. }) => continue,
                    r => return r,
                },
            }
        }
        Err(StoreError::Other {
            location: self.location(key),
            message: "the file keeps appearing and disappearing; nothing was written, retry".into(),
        })
    }

    /// The files' identities, as the directory store's: a migration to a
    /// `file://` directory that is this working directory (by any path) is
    /// refused.
    async fn identities(&self, key: &str) -> Result<Vec<super::ObjectId>> {
        self.fs.identities(key).await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        self.fs.delete(key, if_match).await
    }

    /// The states of the layout under `prefix`: the default workspace's,
    /// and `<workspace_dir>/W/terraform.tfstate` for each W (empty files,
    /// lock info and backups left out).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        if self.layout.path.starts_with(prefix) {
            match self.head(&self.layout.path).await {
                Ok(m) => out.push(m),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let dir = format!("{}/", self.layout.workspace_dir);
        let under = if prefix.starts_with(&dir) {
            Some(prefix)
        } else if dir.starts_with(prefix) {
            Some(dir.as_str())
        } else {
            None
        };
        if let Some(under) = under {
            for m in self.fs.list(under).await? {
                if m.size > 0
                    && m.key.starts_with(prefix)
                    && self.layout.is_workspace_state(&m.key)
                    && m.key != self.layout.path
                {
                    out.push(m);
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn flush(&self) -> Result<()> {
        self.fs.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_states_of_the_layout() {
        let l = LocalLayout {
            path: "terraform.tfstate".into(),
            workspace_dir: DEFAULT_WORKSPACE_DIR.into(),
        };
        assert!(l.is_workspace_state("terraform.tfstate.d/dev/terraform.tfstate"));
        assert!(!l.is_workspace_state("terraform.tfstate.d/terraform.tfstate"));
        assert!(!l.is_workspace_state("terraform.tfstate.d/a/b/terraform.tfstate"));
        assert!(!l.is_workspace_state("terraform.tfstate.d/dev/.terraform.tfstate.lock.info"));
        assert!(!l.is_workspace_state("other/dev/terraform.tfstate"));
    }
}
