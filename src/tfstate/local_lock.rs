//! The lock of a state of Terraform's local backend, exactly as
//! `internal/states/statemgr/filesystem.go` and `filesystem_lock_unix.go`
//! take it:
//!
//! - an `fcntl` write lock over the whole state file (`F_SETLK`, `F_WRLCK`,
//!   start 0, length 0), on the file opened `O_RDWR | O_CREATE` (created,
//!   with its directories, when missing);
//! - then the holder, Terraform's `LockInfo` JSON, in
//!   `.<state file name>.lock.info` beside the state (a leading `.` of the
//!   name dropped first), its `Path` the state's path.
//!
//! tfsync takes the same lock as an open-file-description lock
//! (`F_OFD_SETLK`): on Linux those and Terraform's process locks exclude
//! each other both ways, and an OFD lock is not dropped when tfsync closes
//! some other descriptor of the file (a classic `fcntl` lock would be).
//!
//! The OS lock is the lock: it lives while the process that took it runs.
//! So a lock info file without an OS lock behind it is debris of a run that
//! died (the state is unlocked, as Terraform sees it: its next `Lock`
//! overwrites the file), a lock held by a running process cannot be broken
//! from outside (`unlock` and `force-unlock` say who holds it and stop), and
//! `tfsync lock` cannot keep a lock after it exits (it refuses).

use super::guard::LockStore;
use super::lock::{Attempt, Current, Holder, LockError, LockInfo, acquire_with, check};
use crate::store::local::LocalStore;
use crate::store::{ObjectStore, PutMode, StoreError};
use async_trait::async_trait;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::Duration;

/// The lock info file of the state at `state_key`: `.<name>.lock.info`
/// beside it (`lockInfoPath`).
pub fn info_key(state_key: &str) -> String {
    let (dir, name) = state_key.rsplit_once('/').unwrap_or(("", state_key));
    let name = name.strip_prefix('.').unwrap_or(name);
    if dir.is_empty() {
        format!(".{name}.lock.info")
    } else {
        format!("{dir}/.{name}.lock.info")
    }
}

/// Who holds an `fcntl` lock on a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsLock {
    Free,
    /// Held by another open file description: the pid of a process lock
    /// (Terraform's), `None` for an OFD lock (another tfsync's).
    Held(Option<i32>),
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl.l_pid = 0;
    fl
}

/// Try to take the whole-file write lock on `file` (never waits). `false`
/// when someone else holds a lock on it.
pub fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: a valid descriptor and a valid `flock` for F_OFD_SETLK.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Who holds a lock on `file`, as a new writer would find it.
pub fn probe(file: &std::fs::File) -> std::io::Result<OsLock> {
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: a valid descriptor and a valid `flock` for F_OFD_GETLK.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(if fl.l_type == libc::F_UNLCK as libc::c_short {
        OsLock::Free
    } else {
        OsLock::Held((fl.l_pid > 0).then_some(fl.l_pid))
    })
}

/// The lock this process holds: the descriptor the OS lock lives on.
struct Held {
    file: std::fs::File,
    /// The state file did not exist before the lock created it.
    created: bool,
    id: String,
}

/// The local backend's lock of one state as a [`LockStore`].
pub struct LocalLock<'a> {
    store: &'a LocalStore,
    state_key: String,
    info_key: String,
    held: Mutex<Option<Held>>,
}

impl<'a> LocalLock<'a> {
    pub fn new(store: &'a LocalStore, state_key: &str) -> Self {
        LocalLock {
            store,
            state_key: state_key.to_string(),
            info_key: info_key(state_key),
            held: Mutex::new(None),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state_location(&self) -> String {
        self.store.location(&self.state_key)
    }

    /// Is the state file locked by someone (not by this lock)? Absent: free.
    async fn os_lock(&self) -> Result<OsLock, LockError> {
        let (store, key) = (self.store.clone(), self.state_key.clone());
        let location = self.state_location();
        tokio::task::spawn_blocking(move || -> Result<OsLock, StoreError> {
            let Some((file, _)) = store.fs().open_existing(&key, false)? else {
                return Ok(OsLock::Free);
            };
            probe(&file).map_err(|e| store.fs().io_error(&key, e))
        })
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Other {
                location,
                message: format!("worker failed: {e}"),
            })
        })
        .map_err(LockError::from)
    }

    /// What the lock info file says (`None`: no file).
    async fn info_file(&self) -> Result<Option<Result<LockInfo, String>>, LockError> {
        match self.store.fs().get(&self.info_key).await {
            Ok(got) => Ok(Some(LockInfo::from_json(&got.bytes))),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The holder of a lock held by another process.
    async fn holder(&self, pid: Option<i32>) -> Result<Holder, LockError> {
        Ok(match self.info_file().await? {
            Some(Ok(info)) => Holder::Lock(Box::new(info)),
            Some(Err(reason)) => Holder::Unreadable(format!(
                "the state file is locked by {}, and its lock info file is not readable: {reason}",
                by(pid)
            )),
            None => Holder::Unreadable(format!(
                "the state file is locked by {}, which wrote no lock info file",
                by(pid)
            )),
        })
    }

    /// One try: open (create) the state file and take its lock.
    async fn try_once(&self, info: &LockInfo) -> Result<Attempt, LockError> {
        let (store, key) = (self.store.clone(), self.state_key.clone());
        let location = self.state_location();
        let tried = tokio::task::spawn_blocking(move || {
            let (file, created) = store.fs().open_or_create(&key)?;
            let err = |e| store.fs().io_error(&key, e);
            if try_lock(&file).map_err(err)? {
                return Ok(Ok((file, created)));
            }
            let pid = match probe(&file).map_err(err)? {
                OsLock::Held(pid) => pid,
                // Released between the two calls: try again at once.
                OsLock::Free => return Ok(Err(None)),
            };
            Ok(Err(Some(pid)))
        })
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Other {
                location,
                message: format!("worker failed: {e}"),
            })
        })?;
        match tried {
            Ok((file, created)) => {
                let mut ours = info.clone();
                ours.path = self.state_key.clone();
                if let Err(e) = self
                    .store
                    .fs()
                    .put(&self.info_key, ours.to_json(), PutMode::Overwrite)
                    .await
                {
                    // Not held without its info: let the OS lock go.
                    drop(file);
                    return Err(e.into());
                }
                *self.held() = Some(Held {
                    file,
                    created,
                    id: info.id.clone(),
                });
                Ok(Attempt::Taken(None))
            }
            Err(None) => Ok(Attempt::Vanished),
            Err(Some(pid)) => Ok(Attempt::Held(self.holder(pid).await?)),
        }
    }

    /// Remove the lock info file if it still names `id`.
    async fn remove_info(&self, id: &str) -> Result<(), LockError> {
        match self.info_file().await? {
            Some(Ok(info)) if info.id == id => {
                self.store.fs().delete(&self.info_key, None).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Let our OS lock go: remove our lock info, and the state file when
    /// this lock created it and nothing was written (as Terraform's
    /// `Unlock`; done while the lock is still held), then close.
    async fn let_go(&self, held: Held) -> Result<(), LockError> {
        let removed = self.remove_info(&held.id).await;
        if held.created {
            let (store, key) = (self.store.clone(), self.state_key.clone());
            let _ = tokio::task::spawn_blocking(move || {
                if held.file.metadata().is_ok_and(|m| m.len() == 0) {
                    let _ = store.fs().remove_empty(&key);
                }
                drop(held.file);
            })
            .await;
        } else {
            drop(held.file);
        }
        removed
    }
}

impl LocalLock<'_> {
    /// "Not locked", about the OS lock (the info file may well exist).
    fn not_locked(&self) -> LockError {
        LockError::NotLocked {
            lock: format!("an OS lock on {}", self.state_location()),
        }
    }
}

fn by(pid: Option<i32>) -> String {
    match pid {
        Some(p) => format!("process {p}"),
        None => "another process".into(),
    }
}

#[async_trait]
impl LockStore for LocalLock<'_> {
    fn location(&self) -> String {
        self.store.location(&self.info_key)
    }

    async fn acquire(&self, info: &LockInfo, wait: Duration) -> Result<Option<String>, LockError> {
        if self.held().is_some() {
            return Err(LockError::Held {
                lock: self.location(),
                holder: Holder::Unreadable("this process already holds it".into()),
                waited: Duration::ZERO,
            });
        }
        let lock = self.location();
        acquire_with(&lock, wait, || self.try_once(info)).await
    }

    async fn release_own(&self, info: &LockInfo, _tag: Option<&str>) -> Result<(), LockError> {
        let held = self.held().take();
        match held {
            Some(h) if h.id == info.id => self.let_go(h).await,
            other => {
                *self.held() = other;
                Err(self.not_locked())
            }
        }
    }

    /// `unlock` / `force-unlock`: a lock held by a running process is never
    /// broken (it cannot be); without an OS lock there is nothing to
    /// release.
    async fn release(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        let mine = self.held().as_ref().is_some_and(|h| h.id == id);
        if mine {
            let current = self.read().await?;
            let (info, _) = check(current, &self.location(), id, min_age)?;
            let held = self.held().take();
            if let Some(h) = held {
                self.let_go(h).await?;
            }
            return Ok(info);
        }
        if let OsLock::Held(pid) = self.os_lock().await? {
            return Err(LockError::OsLocked {
                lock: self.location(),
                state: self.state_location(),
                pid,
                holder: self.holder(pid).await?,
            });
        }
        // No OS lock: nothing holds the state (a lock info file left by a
        // run that died is no lock; the next lock overwrites it).
        Err(self.not_locked())
    }

    /// Locked while a process holds the OS lock (the holder from the lock
    /// info file); a lock info file alone is no lock.
    async fn read(&self) -> Result<Current, LockError> {
        let mine = self.held().as_ref().map(|h| h.id.clone());
        let pid = match (mine, self.os_lock().await?) {
            (Some(_), _) => None,
            (None, OsLock::Held(pid)) => pid,
            (None, OsLock::Free) => return Ok(Current::Unlocked),
        };
        Ok(match self.holder(pid).await? {
            Holder::Lock(info) => Current::Locked {
                info: *info,
                etag: None,
            },
            Holder::Unreadable(reason) => Current::Unreadable { reason, etag: None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_file_names() {
        assert_eq!(
            info_key("terraform.tfstate"),
            ".terraform.tfstate.lock.info"
        );
        assert_eq!(
            info_key("terraform.tfstate.d/dev/terraform.tfstate"),
            "terraform.tfstate.d/dev/.terraform.tfstate.lock.info"
        );
        assert_eq!(info_key("a/.hidden.tfstate"), "a/.hidden.tfstate.lock.info");
    }

    #[test]
    fn ofd_locks_exclude_each_other_and_are_probed() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s");
        std::fs::write(&path, b"").expect("create");
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .expect("open")
        };
        let (a, b) = (open(), open());
        assert_eq!(probe(&b).expect("probe"), OsLock::Free);
        assert!(try_lock(&a).expect("lock a"));
        assert!(!try_lock(&b).expect("b refused"));
        assert_eq!(probe(&b).expect("probe"), OsLock::Held(None));
        drop(a);
        assert!(try_lock(&b).expect("b after a closed"));
    }
}
