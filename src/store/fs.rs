//! A local directory as an object store: for tests without a server and for
//! keeping states on a local file system (one with `flock` and `link`
//! semantics: ext4, xfs, btrfs, tmpfs...).
//!
//! What it guarantees (the README's "Safety" section says it for users):
//! - **Nothing outside the root.** Every key is resolved beneath the root
//!   without following a symbolic link: `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS)` (Linux >= 5.6), else one component at a time,
//!   each opened `O_NOFOLLOW` from the directory before it. The root itself
//!   is what the user named (it may be a link).
//! - **Only regular files and directories.** A link, FIFO, socket or device
//!   at a key is refused by every operation, at once: objects are opened
//!   `O_NONBLOCK | O_NOFOLLOW` and checked with `fstat` before a byte is
//!   read, so a FIFO never blocks. `list` fails naming such an entry when it
//!   lies where the prefix could match: a lock under a linked directory is
//!   reported, never silently missed by `locks` or `force-unlock --all`.
//! - **Names that are not UTF-8** cannot be keys: `list` skips them with a
//!   warning showing the name escaped (`\xe9`), and goes on.
//! - **Atomic writes.** A body goes to a 0600 temporary file
//!   (`.tfsync-tmp-*`) beside the key, then `rename(2)` (overwrite) or
//!   `link(2)` (create-only: refused if the key exists).
//! - **Compare-and-swap** (`Update`) and conditional delete hold an
//!   exclusive `flock` on `<root>/.tfsync-store.lock` while they compare and
//!   replace. That file is created 0600 (others cannot open it, so cannot
//!   hold it) and opened `O_NOFOLLOW`; the lock is taken non-blocking,
//!   polled with backoff up to the command's deadline
//!   ([`ObjectStore::set_lock_wait`], at least [`STORE_LOCK_GRACE`]), and
//!   given up within a second of SIGINT or SIGTERM.
//! - **Bounded reads.** `get` refuses an object larger than the maximum
//!   size (default [`DEFAULT_MAX_OBJECT_SIZE`]) before reading it.
//! - **No debris.** Temporary files are removed when dropped and on the way
//!   out of the process ([`crate::localfile::remove_leftover_temps`]); those
//!   of killed runs are collected by the next write into their directory
//!   once older than an hour.
//! - **No accidental stores.** [`FsStore::open`] needs the root to exist (a
//!   mistyped `--dir` is an error); [`FsStore::create`] makes it, for the
//!   destination of a backup or a migration only.

use super::ObjectId;
use super::{GetResult, ObjectMeta, ObjectStore, Payload, PutMode, Result, StoreError, md5_hex};
use crate::localfile::{self, STALE_TEMP_AGE, TMP_PREFIX};
use crate::output::{escape_bytes_for_terminal, escape_for_terminal};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rustix::fs::{self as rfs, AtFlags, FileType, FlockOperation, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LOCK_FILE: &str = ".tfsync-store.lock";

/// Objects larger than this are refused by `get` unless
/// [`FsStore::with_max_object_size`] says otherwise (`--max-state-size`).
pub const DEFAULT_MAX_OBJECT_SIZE: u64 = 512 * 1024 * 1024;

/// The least time a write waits for the store's internal lock, whatever the
/// command's deadline: tfsync holds it only while it compares and renames
/// one file, so waiting longer than this means someone else keeps it.
pub const STORE_LOCK_GRACE: Duration = Duration::from_secs(5);

/// After SIGINT/SIGTERM, a wait for the internal lock lasts at most this
/// long (enough to release our own state lock, never a hang).
const AFTER_SIGNAL: Duration = Duration::from_secs(1);

/// Up to this many pending files, a flush syncs them one by one; above, it
/// syncs the whole file system at once (one journal commit).
const FLUSH_ONE_BY_ONE: usize = 64;

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    /// The root, opened once: every path is resolved from it.
    dir: Arc<OwnedFd>,
    name: String,
    /// fsync every write (the default); when off, [`ObjectStore::flush`]
    /// makes all writes durable at once (bulk copies: backups).
    sync_each: bool,
    /// Keys written since the last flush (batched mode only).
    pending: Arc<Mutex<Vec<String>>>,
    max_object_size: u64,
    /// When the command said how long it waits for locks, and how long.
    wait: Arc<Mutex<Option<(Instant, Duration)>>>,
    /// A wait for the internal lock timed out: later ones try once only.
    lock_stuck: Arc<AtomicBool>,
    /// Directories already swept for stale temporary files.
    swept: Arc<Mutex<HashSet<String>>>,
}

/// Set by the first SIGINT/SIGTERM once a write had to wait for the
/// internal lock (see [`watch_signals`]).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static WATCHING: std::sync::Once = std::sync::Once::new();

/// Is `openat2` usable: 0 not tried yet, 1 yes, 2 no (old kernel, seccomp).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// Warnings already printed (one per name per process).
static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn warn_once(msg: String) {
    if WARNED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(msg.clone())
    {
        eprintln!("warning: {msg}");
    }
}

/// `dir/name` of a key (`dir` empty at the root).
fn split(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

fn file_type(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// `st_mtime` as i64 (its type differs across targets).
#[allow(clippy::unnecessary_cast)]
fn mtime(st: &rfs::Stat) -> i64 {
    st.st_mtime as i64
}

fn describe_type(ft: FileType) -> &'static str {
    match ft {
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Symlink => "a symbolic link",
        FileType::Directory => "a directory",
        _ => "not a regular file",
    }
}

const LINK_MESSAGE: &str = "the key is, or lies under, a symbolic link inside the store: the directory store never follows links beneath its root (a link could make it read or write outside it). Replace the link with the real file or directory, or remove it";

/// Remember the first SIGINT/SIGTERM from now on, whoever else handles it.
/// Installed only once a write has to wait for the internal lock, so that
/// commands that never wait keep the default signal behaviour.
fn watch_signals() {
    WATCHING.call_once(|| {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
        });
    });
}

/// `rel` opened beneath `root` one component at a time, none followed: the
/// fallback where `openat2` is unavailable. `rel` has no `.`, `..` or empty
/// component (keys are checked first).
fn open_walk(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    let (dirs, last) = split(rel);
    let mut cur: Option<OwnedFd> = None;
    for comp in dirs.split('/').filter(|c| !c.is_empty()) {
        let at = cur.as_ref().map_or(root, |f| f.as_fd());
        cur = Some(nofollow_dir(at, comp)?);
    }
    let at = cur.as_ref().map_or(root, |f| f.as_fd());
    match rfs::openat(at, last, flags | OFlags::NOFOLLOW, mode) {
        Err(Errno::NOTDIR) if flags.contains(OFlags::DIRECTORY) && link_at(at, last) => {
            Err(Errno::LOOP)
        }
        other => other,
    }
}

fn link_at(at: BorrowedFd<'_>, name: &str) -> bool {
    rfs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| file_type(&st) == FileType::Symlink)
}

/// The directory `name` in `at`, refusing a link (ELOOP) whatever the
/// kernel answers for `O_DIRECTORY | O_NOFOLLOW` on one.
fn nofollow_dir(at: BorrowedFd<'_>, name: &str) -> rustix::io::Result<OwnedFd> {
    match rfs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Err(Errno::NOTDIR) if link_at(at, name) => Err(Errno::LOOP),
        other => other,
    }
}

impl FsStore {
    /// The directory the store is rooted at.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// The store rooted at `root`, which must exist: `--dir` and every
    /// store that is read (`restore --from`, `backup verify --from`). A
    /// missing root is an error naming it and saying how to create it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root: PathBuf = root.into();
        let location = format!("file://{}", root.display());
        let dir = match rfs::open(
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                return Err(StoreError::Other {
                    location,
                    message: format!(
                        "the directory store does not exist. Check --dir (or TFSYNC_DIR); to start a new store there, create it first: mkdir -p {}",
                        root.display()
                    ),
                });
            }
            Err(Errno::NOTDIR) => {
                return Err(StoreError::Other {
                    location,
                    message: "not a directory: --dir names the directory that holds the states"
                        .into(),
                });
            }
            Err(e) => {
                return Err(StoreError::Other {
                    location,
                    message: format!("cannot open the directory: {}", io::Error::from(e)),
                });
            }
        };
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(FsStore {
            root,
            dir: Arc::new(dir),
            name,
            sync_each: true,
            pending: Default::default(),
            max_object_size: DEFAULT_MAX_OBJECT_SIZE,
            wait: Default::default(),
            lock_stuck: Default::default(),
            swept: Default::default(),
        })
    }

    /// The store rooted at `root`, created (`mkdir -p`) if missing: only
    /// for the destination of a backup or a migration.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root: PathBuf = root.into();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::Other {
            location: format!("file://{}", root.display()),
            message: format!("cannot create the directory: {e}"),
        })?;
        Self::open(root)
    }

    /// For bulk writes: writes are still atomic (temporary file + rename)
    /// but not synced one by one; call [`ObjectStore::flush`] before
    /// anything that must only exist once they are all durable.
    pub fn batched(mut self) -> Self {
        self.sync_each = false;
        self
    }

    /// Refuse to read objects larger than `max` bytes (`--max-state-size`).
    pub fn with_max_object_size(mut self, max: u64) -> Self {
        self.max_object_size = max;
        self
    }

    /// Deprecated alias of [`FsStore::open`] (the root must exist), kept
    /// while the call sites move to `open` / `create`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        Self::open(root)
    }

    /// Deprecated: `FsStore::open(root)?.batched()`.
    pub fn new_batched(root: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self::open(root)?.batched())
    }

    fn check_key(&self, key: &str) -> Result<()> {
        let last = split(key).1;
        let bad = key.is_empty()
            || key.contains('\0')
            || key
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            || last.starts_with(TMP_PREFIX)
            || last == LOCK_FILE;
        if bad {
            return Err(StoreError::Other {
                location: self.location(key),
                message: "invalid key for a directory store (empty, absolute, an empty, '.' or '..' component, or a reserved name)".into(),
            });
        }
        Ok(())
    }

    /// `rel` beneath the root, following no link (ELOOP for a link, even
    /// where the kernel says ENOTDIR for `O_DIRECTORY` on one). `rel` is a
    /// checked key, a directory part of one, or "" for the root.
    fn open_beneath(&self, rel: &str, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
        match self.open_beneath_raw(rel, flags, mode) {
            Err(Errno::NOTDIR) if flags.contains(OFlags::DIRECTORY) && self.is_link(rel) => {
                Err(Errno::LOOP)
            }
            other => other,
        }
    }

    /// Is the last component of `rel` a symbolic link?
    fn is_link(&self, rel: &str) -> bool {
        let (dir, name) = split(rel);
        self.open_beneath_raw(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .and_then(|d| rfs::statat(&d, name, AtFlags::SYMLINK_NOFOLLOW))
            .is_ok_and(|st| file_type(&st) == FileType::Symlink)
    }

    fn open_beneath_raw(
        &self,
        rel: &str,
        flags: OFlags,
        mode: Mode,
    ) -> rustix::io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
        if rel.is_empty() {
            return rfs::openat(&*self.dir, ".", flags, mode);
        }
        if OPENAT2.load(Ordering::Relaxed) != 2 {
            let r = rfs::openat2(
                &*self.dir,
                rel,
                flags,
                mode,
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            );
            match r {
                Err(Errno::NOSYS) => OPENAT2.store(2, Ordering::Relaxed),
                // A seccomp filter that does not know openat2.
                Err(Errno::PERM) if OPENAT2.load(Ordering::Relaxed) == 0 => {
                    OPENAT2.store(2, Ordering::Relaxed)
                }
                r => {
                    if r.is_ok() {
                        OPENAT2.store(1, Ordering::Relaxed);
                    }
                    return r;
                }
            }
        }
        open_walk(self.dir.as_fd(), rel, flags, mode)
    }

    fn fail(&self, key: &str, e: Errno) -> StoreError {
        let location = self.location(key);
        match e {
            Errno::NOENT | Errno::NOTDIR => StoreError::NotFound { location },
            Errno::ACCESS | Errno::PERM => StoreError::AccessDenied {
                location,
                message: io::Error::from(e).to_string(),
            },
            Errno::LOOP => StoreError::Other {
                location,
                message: LINK_MESSAGE.into(),
            },
            Errno::XDEV => StoreError::Other {
                location,
                message: "the key resolves outside the store: refused".into(),
            },
            Errno::NXIO => self.not_regular(key, FileType::Socket),
            e => StoreError::Other {
                location,
                message: io::Error::from(e).to_string(),
            },
        }
    }

    /// [`FsStore::fail`] for the directory a write goes into: a file where
    /// a directory should be is not "not found".
    fn dir_fail(&self, key: &str, e: Errno) -> StoreError {
        match e {
            Errno::NOTDIR => StoreError::Other {
                location: self.location(key),
                message: "a parent of this key is a file, not a directory".into(),
            },
            e => self.fail(key, e),
        }
    }

    fn io_fail(&self, key: &str, e: io::Error) -> StoreError {
        match e.raw_os_error() {
            Some(n) => self.fail(key, Errno::from_raw_os_error(n)),
            None => StoreError::Other {
                location: self.location(key),
                message: e.to_string(),
            },
        }
    }

    fn not_regular(&self, key: &str, ft: FileType) -> StoreError {
        StoreError::Other {
            location: self.location(key),
            message: format!(
                "is {}, not a regular file: the directory store only reads and writes regular files (tfsync never creates anything else). Remove it",
                describe_type(ft)
            ),
        }
    }

    fn too_big(&self, key: &str, size: Option<u64>) -> StoreError {
        StoreError::Other {
            location: self.location(key),
            message: format!(
                "the object is {}larger than --max-state-size ({} bytes): it was not read. Raise --max-state-size (or TFSYNC_MAX_STATE_SIZE) if it really is a state",
                size.map(|s| format!("{s} bytes, ")).unwrap_or_default(),
                self.max_object_size
            ),
        }
    }

    /// Regular files only; a directory at a key is no object.
    fn check_regular(&self, key: &str, st: &rfs::Stat) -> Result<()> {
        match file_type(st) {
            FileType::RegularFile => Ok(()),
            FileType::Directory => Err(StoreError::NotFound {
                location: self.location(key),
            }),
            ft => Err(self.not_regular(key, ft)),
        }
    }

    /// Open the object at `key` for reading: never blocks (FIFO), never
    /// follows a link, only a regular file.
    fn open_object(&self, key: &str) -> Result<(std::fs::File, rfs::Stat)> {
        let fd = self
            .open_beneath(key, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
            .map_err(|e| self.fail(key, e))?;
        let st = rfs::fstat(&fd).map_err(|e| self.fail(key, e))?;
        self.check_regular(key, &st)?;
        Ok((fd.into(), st))
    }

    /// `name` in the open directory `dir`, as [`FsStore::open_object`];
    /// `None` when it does not exist.
    fn open_in(&self, key: &str, dir: &OwnedFd, name: &str) -> Result<Option<std::fs::File>> {
        let fd = match rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.fail(key, e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| self.fail(key, e))?;
        match file_type(&st) {
            FileType::RegularFile => Ok(Some(fd.into())),
            ft => Err(self.not_regular(key, ft)),
        }
    }

    fn read_bounded(&self, key: &str, file: std::fs::File, st: &rfs::Stat) -> Result<Vec<u8>> {
        let max = self.max_object_size;
        let size = st.st_size as u64;
        if size > max {
            return Err(self.too_big(key, Some(size)));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_fail(key, e))?;
        if bytes.len() as u64 > max {
            return Err(self.too_big(key, None));
        }
        Ok(bytes)
    }

    /// Hex MD5 of a file, streamed (memory stays flat).
    fn md5_of(&self, key: &str, mut file: std::fs::File) -> Result<String> {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_fail(key, e)),
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    fn meta(&self, key: &str, st: &rfs::Stat, size: u64, etag: String) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size,
            etag: Some(etag),
            last_modified: DateTime::<Utc>::from_timestamp(mtime(st), st.st_mtime_nsec as u32),
        }
    }

    /// [`ObjectStore::identities`]: the deepest existing directory on the
    /// way to `key` and the rest below it, and the file when it exists.
    fn identities_blocking(&self, key: &str) -> Result<Vec<ObjectId>> {
        self.check_key(key)?;
        let (mut dir, mut rest) = (split(key).0, split(key).1.to_string());
        let fd = loop {
            match self.open_beneath(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if !dir.is_empty() => {
                    let (up, name) = split(dir);
                    rest = format!("{name}/{rest}");
                    dir = up;
                }
                Err(e) => return Err(self.dir_fail(key, e)),
            }
        };
        let st = rfs::fstat(&fd).map_err(|e| self.fail(key, e))?;
        let mut ids = vec![ObjectId::Name {
            dev: st.st_dev,
            ino: st.st_ino,
            rest: rest.clone(),
        }];
        if !rest.contains('/') {
            match rfs::statat(&fd, &rest, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(f) => ids.push(ObjectId::File {
                    dev: f.st_dev,
                    ino: f.st_ino,
                }),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(self.fail(key, e)),
            }
        }
        Ok(ids)
    }

    /// [`ObjectStore::remove_empty_dirs`].
    fn remove_empty_dirs_blocking(&self, prefix: &str) -> Result<usize> {
        let rel = prefix.trim_end_matches('/');
        let dir = match self.open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(d) => d,
            Err(Errno::NOENT) => return Ok(0),
            Err(e) => return Err(self.dir_fail(prefix, e)),
        };
        let mut removed = 0;
        self.clean_dir(prefix, &dir, &mut removed)?;
        Ok(removed)
    }

    /// Empty the subdirectories of `dir` that hold nothing but directories
    /// and stale temporary files, removing them bottom-up (never following
    /// a link); is `dir` empty afterwards? A directory that fills up
    /// meanwhile is left (`rmdir` refuses it).
    fn clean_dir(&self, key: &str, dir: &OwnedFd, removed: &mut usize) -> Result<bool> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut empty = true;
        let mut subdirs = Vec::new();
        for entry in rfs::Dir::read_from(dir).map_err(|e| self.fail(key, e))? {
            let entry = entry.map_err(|e| self.fail(key, e))?;
            let name = entry.file_name().to_owned();
            if name.as_bytes() == b"." || name.as_bytes() == b".." {
                continue;
            }
            let st = match rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(self.fail(key, e)),
            };
            match file_type(&st) {
                FileType::Directory => subdirs.push(name),
                FileType::RegularFile
                    if name.as_bytes().starts_with(TMP_PREFIX.as_bytes())
                        && now - mtime(&st) > STALE_TEMP_AGE.as_secs() as i64 =>
                {
                    match rfs::unlinkat(dir, name.as_c_str(), AtFlags::empty()) {
                        Ok(()) => *removed += 1,
                        Err(Errno::NOENT) => {}
                        Err(e) => return Err(self.fail(key, e)),
                    }
                }
                _ => empty = false,
            }
        }
        for name in subdirs {
            let sub = match rfs::openat(
                dir,
                name.as_c_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(self.fail(key, e)),
            };
            let sub_key = format!("{}/{}", key.trim_end_matches('/'), name.to_string_lossy());
            if !self.clean_dir(&sub_key, &sub, removed)? {
                empty = false;
                continue;
            }
            match rfs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR) {
                Ok(()) => *removed += 1,
                Err(Errno::NOENT) => {}
                Err(Errno::NOTEMPTY | Errno::EXIST) => empty = false,
                Err(e) => return Err(self.fail(&sub_key, e)),
            }
        }
        Ok(empty)
    }

    /// The directory of `key`, created (each level `O_NOFOLLOW`) if missing.
    fn open_dir_for_write(&self, key: &str) -> Result<OwnedFd> {
        let rel = split(key).0;
        match self.open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if !rel.is_empty() => {}
            Err(e) => return Err(self.dir_fail(key, e)),
        }
        let mut cur: Option<OwnedFd> = None;
        for comp in rel.split('/') {
            let at = cur.as_ref().map_or(self.dir.as_fd(), |f| f.as_fd());
            match rfs::mkdirat(at, comp, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(self.dir_fail(key, e)),
            }
            cur = Some(nofollow_dir(at, comp).map_err(|e| self.dir_fail(key, e))?);
        }
        cur.ok_or_else(|| self.fail(key, Errno::NOENT))
    }

    /// Remove temporary files older than an hour in `dir` (debris of killed
    /// runs), once per directory per process.
    fn sweep_once(&self, rel: &str, dir: &OwnedFd) {
        if !self
            .swept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rel.to_string())
        {
            return;
        }
        let Ok(entries) = rfs::Dir::read_from(dir) else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if !name.starts_with(TMP_PREFIX) {
                continue;
            }
            let Ok(st) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if file_type(&st) == FileType::RegularFile
                && now - mtime(&st) > STALE_TEMP_AGE.as_secs() as i64
            {
                let _ = rfs::unlinkat(dir, name, AtFlags::empty());
            }
        }
    }

    /// Write `body` to a fresh 0600 temporary file in the directory of
    /// `key` (created if missing), synced unless batched.
    fn write_temp(&self, key: &str, body: &[u8]) -> Result<Temp> {
        let dir = self.open_dir_for_write(key)?;
        self.sweep_once(split(key).0, &dir);
        let dir = Arc::new(dir);
        let mut attempt = 0;
        let (fd, name) = loop {
            let name = format!(
                "{TMP_PREFIX}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            match rfs::openat(
                &*dir,
                name.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => break (fd, name),
                Err(Errno::EXIST) if attempt < 8 => attempt += 1,
                Err(e) => return Err(self.dir_fail(key, e)),
            }
        };
        let registered = localfile::register_temp_at(dir.clone(), &name);
        let temp = Temp {
            dir,
            name,
            registered,
            live: true,
        };
        let mut f = std::fs::File::from(fd);
        f.write_all(body).map_err(|e| self.io_fail(key, e))?;
        if self.sync_each {
            f.sync_all().map_err(|e| self.io_fail(key, e))?;
        }
        Ok(temp)
    }

    /// Put the temporary file in place at `key` according to `mode`. For
    /// `Update`, the caller holds the internal lock.
    fn commit(&self, key: &str, mut temp: Temp, mode: &PutMode) -> Result<()> {
        let name = split(key).1;
        let dir = temp.dir.clone();
        let existing = match rfs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(file_type(&st)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(self.fail(key, e)),
        };
        match existing {
            None | Some(FileType::RegularFile) => {}
            Some(ft) => return Err(self.not_regular(key, ft)),
        }
        match mode {
            PutMode::Overwrite => self.rename_into(key, &mut temp, name)?,
            PutMode::Create => {
                if existing.is_some() {
                    return Err(StoreError::AlreadyExists {
                        location: self.location(key),
                    });
                }
                // link(2) refuses an existing target: atomic create-only.
                match rfs::linkat(&*dir, temp.name.as_str(), &*dir, name, AtFlags::empty()) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        return Err(match rfs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(st) if file_type(&st) != FileType::RegularFile => {
                                self.not_regular(key, file_type(&st))
                            }
                            _ => StoreError::AlreadyExists {
                                location: self.location(key),
                            },
                        });
                    }
                    Err(e) => return Err(self.fail(key, e)),
                }
                // Dropping `temp` removes the temporary name; the key keeps the file.
            }
            PutMode::Update(expected) => {
                let current = match self.open_in(key, &dir, name)? {
                    Some(f) => Some(self.md5_of(key, f)?),
                    None => None,
                };
                if current.as_deref() != Some(expected.as_str()) {
                    return Err(StoreError::Precondition {
                        location: self.location(key),
                    });
                }
                self.rename_into(key, &mut temp, name)?;
            }
        }
        if self.sync_each {
            let _ = rfs::fsync(&*dir);
        } else if let Ok(mut p) = self.pending.lock() {
            p.push(key.to_string());
        }
        Ok(())
    }

    fn rename_into(&self, key: &str, temp: &mut Temp, name: &str) -> Result<()> {
        rfs::renameat(&*temp.dir, temp.name.as_str(), &*temp.dir, name)
            .map_err(|e| self.fail(key, e))?;
        temp.live = false;
        Ok(())
    }

    /// The internal lock file, opened (created 0600) without following a
    /// link and without blocking; an old one open to others is made 0600.
    fn open_lock_file(&self) -> Result<OwnedFd> {
        let fd = rfs::openat(
            &*self.dir,
            LOCK_FILE,
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.fail(LOCK_FILE, e))?;
        let st = rfs::fstat(&fd).map_err(|e| self.fail(LOCK_FILE, e))?;
        if file_type(&st) != FileType::RegularFile {
            return Err(self.not_regular(LOCK_FILE, file_type(&st)));
        }
        if st.st_mode & 0o077 != 0 {
            // Written by an older tfsync with the umask: close it to others.
            let _ = rfs::fchmod(&fd, Mode::from_raw_mode(0o600));
        }
        Ok(fd)
    }

    /// When a wait for the internal lock that starts at `now` gives up
    /// (`None`: never, until a signal).
    fn lock_deadline(&self, now: Instant) -> Option<Instant> {
        let floor = now + STORE_LOCK_GRACE;
        match *self.wait.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Some(floor),
            Some((set, wait)) => set.checked_add(wait).map(|d| d.max(floor)),
        }
    }

    /// Hold the store-wide exclusive lock for the life of the returned
    /// descriptor: `LOCK_NB` polled with backoff up to the deadline.
    async fn exclusive(&self) -> Result<OwnedFd> {
        let fd = self.open_lock_file()?;
        let start = Instant::now();
        let mut deadline = if self.lock_stuck.load(Ordering::SeqCst) {
            Some(start)
        } else {
            self.lock_deadline(start)
        };
        let mut capped = false;
        let mut pause = Duration::from_millis(2);
        loop {
            match rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(fd),
                Err(Errno::WOULDBLOCK | Errno::INTR) => {}
                Err(e) => return Err(self.fail(LOCK_FILE, e)),
            }
            watch_signals();
            let now = Instant::now();
            let interrupted = INTERRUPTED.load(Ordering::SeqCst);
            if interrupted && !capped {
                capped = true;
                let cap = now + AFTER_SIGNAL;
                deadline = Some(deadline.map_or(cap, |d| d.min(cap)));
            }
            if let Some(d) = deadline
                && now >= d
            {
                let path = self.root.join(LOCK_FILE);
                let message = if interrupted {
                    format!(
                        "interrupted by a signal while waiting for the store's internal lock {}; nothing was changed",
                        path.display()
                    )
                } else {
                    self.lock_stuck.store(true, Ordering::SeqCst);
                    let waited = now.duration_since(start).as_secs();
                    format!(
                        "the store's internal lock {} is held by another process{}. tfsync holds it only for the moment of a write, so something else keeps it open: find it with `fuser -v {}` (or lsof). Nothing was changed; retry once it is released",
                        path.display(),
                        if waited > 0 {
                            format!(" (waited {waited}s)")
                        } else {
                            String::new()
                        },
                        path.display()
                    )
                };
                return Err(StoreError::Other {
                    location: self.describe(),
                    message,
                });
            }
            let nap = deadline.map_or(pause, |d| pause.min(d - now));
            tokio::time::sleep(nap).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// `Ok(false)`: nothing was there to delete.
    fn delete_blocking(&self, key: &str, if_match: Option<&str>) -> Result<bool> {
        let (rel, name) = split(key);
        let dir = match self.open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(d) => d,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(false),
            Err(e) => return Err(self.dir_fail(key, e)),
        };
        match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(self.fail(key, e)),
            Ok(st) if file_type(&st) != FileType::RegularFile => {
                return Err(self.not_regular(key, file_type(&st)));
            }
            Ok(_) => {}
        }
        if let Some(expected) = if_match {
            let Some(f) = self.open_in(key, &dir, name)? else {
                return Ok(false);
            };
            if self.md5_of(key, f)? != expected {
                return Err(StoreError::Precondition {
                    location: self.location(key),
                });
            }
        }
        let deleted = match rfs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) => true,
            Err(Errno::NOENT) => false,
            Err(e) => return Err(self.fail(key, e)),
        };
        let _ = rfs::fsync(&dir);
        Ok(deleted)
    }

    fn list_refusal(&self, key: &str, ft: FileType) -> StoreError {
        StoreError::Other {
            location: self.location(key),
            message: format!(
                "is {} inside the store: the directory store never follows links and holds only regular files and directories, and it will not list (nor back up, nor report the locks of) a store it cannot see whole. Replace it with the real file or directory, or remove it",
                describe_type(ft)
            ),
        }
    }

    /// Every object under `prefix`; with `etags`, each read for its MD5.
    fn list_blocking(&self, prefix: &str, etags: bool) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        // Directories to read, by key; each opened from the root when its
        // turn comes (never many descriptors at once).
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir =
                match self.open_beneath(&rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
                    Ok(d) => d,
                    Err(Errno::NOENT) => continue, // removed while listing
                    Err(e) => return Err(self.fail(&rel, e)),
                };
            let entries = rfs::Dir::read_from(&dir).map_err(|e| self.fail(&rel, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| self.fail(&rel, e))?;
                let raw = entry.file_name().to_bytes();
                if raw == b"." || raw == b".." {
                    continue;
                }
                let Ok(name) = std::str::from_utf8(raw) else {
                    let lossy = String::from_utf8_lossy(raw);
                    let key = if rel.is_empty() {
                        lossy.into_owned()
                    } else {
                        format!("{rel}/{lossy}")
                    };
                    if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                        let shown = if rel.is_empty() {
                            escape_bytes_for_terminal(raw)
                        } else {
                            format!(
                                "{}/{}",
                                escape_for_terminal(&rel),
                                escape_bytes_for_terminal(raw)
                            )
                        };
                        warn_once(format!(
                            "skipped {}/{shown}: its name is not valid UTF-8, so it cannot be a key (tfsync cannot read, list, back up or unlock it). Rename it to see it",
                            self.describe()
                        ));
                    }
                    continue;
                };
                if name.starts_with(TMP_PREFIX) || name == LOCK_FILE {
                    continue;
                }
                let key = if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                };
                let matches = key.starts_with(prefix);
                let may_hold = matches || prefix.starts_with(&format!("{key}/"));
                if !may_hold {
                    continue;
                }
                let mut ft = entry.file_type();
                if ft == FileType::Unknown {
                    ft = match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => file_type(&st),
                        Err(Errno::NOENT) => continue,
                        Err(e) => return Err(self.fail(&key, e)),
                    };
                }
                match ft {
                    FileType::Directory => stack.push(key),
                    FileType::RegularFile if matches => {
                        let Some(f) = self.open_in(&key, &dir, name)? else {
                            continue; // deleted while listing
                        };
                        let st = rfs::fstat(&f).map_err(|e| self.fail(&key, e))?;
                        if etags {
                            let etag = self.md5_of(&key, f)?;
                            out.push(self.meta(&key, &st, st.st_size as u64, etag));
                        } else {
                            let mut m = self.meta(&key, &st, st.st_size as u64, String::new());
                            m.etag = None;
                            out.push(m);
                        }
                    }
                    FileType::RegularFile => {}
                    ft => return Err(self.list_refusal(&key, ft)),
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// What the Terraform local backend (`store::local`) needs beneath the
/// root: it writes states in place and locks them as Terraform does, so it
/// opens the state file itself (never following a link, regular files only).
impl FsStore {
    /// `key` opened (read-write when `write`), or `None` when it is absent
    /// (or a directory).
    pub(crate) fn open_existing(
        &self,
        key: &str,
        write: bool,
    ) -> Result<Option<(std::fs::File, rfs::Stat)>> {
        self.check_key(key)?;
        let mode = if write { OFlags::RDWR } else { OFlags::RDONLY };
        let fd = match self.open_beneath(key, mode | OFlags::NONBLOCK, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::ISDIR) => return Ok(None),
            Err(e) => return Err(self.fail(key, e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| self.fail(key, e))?;
        match self.check_regular(key, &st) {
            Ok(()) => Ok(Some((fd.into(), st))),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `key` opened read-write, created (mode 0666 less the umask, and its
    /// directories) when missing, as Terraform opens a state file it locks.
    /// `true` when this call created it.
    pub(crate) fn open_or_create(&self, key: &str) -> Result<(std::fs::File, bool)> {
        self.check_key(key)?;
        for _ in 0..8 {
            if let Some((f, _)) = self.open_existing(key, true)? {
                return Ok((f, false));
            }
            let dir = self.open_dir_for_write(key)?;
            match rfs::openat(
                &dir,
                split(key).1,
                OFlags::RDWR
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            ) {
                Ok(fd) => return Ok((fd.into(), true)),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(self.dir_fail(key, e)),
            }
        }
        Err(StoreError::Other {
            location: self.location(key),
            message: "the file keeps appearing and disappearing; retry".into(),
        })
    }

    /// Remove `key` if it is an empty regular file (a state file a lock
    /// created and nothing filled).
    pub(crate) fn remove_empty(&self, key: &str) -> Result<()> {
        self.check_key(key)?;
        let (rel, name) = split(key);
        let dir = match self.open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(d) => d,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(self.dir_fail(key, e)),
        };
        match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if file_type(&st) == FileType::RegularFile && st.st_size == 0 => {
                match rfs::unlinkat(&dir, name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => Ok(()),
                    Err(e) => Err(self.fail(key, e)),
                }
            }
            Ok(_) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    /// The largest object `get` reads.
    pub(crate) fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    /// An I/O error on `key`, typed as the store types it.
    pub(crate) fn io_error(&self, key: &str, e: io::Error) -> StoreError {
        self.io_fail(key, e)
    }

    /// What `head` says of `key`, from its `fstat` and its MD5.
    pub(crate) fn object_meta(&self, key: &str, st: &rfs::Stat, etag: String) -> ObjectMeta {
        self.meta(key, st, st.st_size as u64, etag)
    }

    /// The object larger than the maximum, refused.
    pub(crate) fn too_big_error(&self, key: &str, size: u64) -> StoreError {
        self.too_big(key, Some(size))
    }
}

/// A temporary file in an open directory: removed when dropped unless it
/// was renamed into place.
struct Temp {
    dir: Arc<OwnedFd>,
    name: String,
    registered: u64,
    live: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.live {
            let _ = rfs::unlinkat(&*self.dir, self.name.as_str(), AtFlags::empty());
        }
        localfile::forget_temp(self.registered);
    }
}

/// Run file-system work off the async runtime (also the local backend's).
pub(crate) async fn blocking<T: Send + 'static>(
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

    fn set_lock_wait(&self, wait: Duration) {
        *self.wait.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), wait));
    }

    async fn identities(&self, key: &str) -> Result<Vec<ObjectId>> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(self.location(&key), move || this.identities_blocking(&key)).await
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        self.check_key(key)?;
        let (this, key) = (self.clone(), key.to_string());
        blocking(self.location(&key), move || {
            let (f, st) = this.open_object(&key)?;
            let bytes = this.read_bounded(&key, f, &st)?;
            let meta = this.meta(&key, &st, bytes.len() as u64, md5_hex(&bytes));
            Ok(GetResult { meta, bytes })
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.check_key(key)?;
        let (this, key) = (self.clone(), key.to_string());
        blocking(self.location(&key), move || {
            let (f, st) = this.open_object(&key)?;
            let etag = this.md5_of(&key, f)?;
            Ok(this.meta(&key, &st, st.st_size as u64, etag))
        })
        .await
    }

    async fn get_to(
        &self,
        key: &str,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(ObjectMeta, String)> {
        // Streamed in blocks (memory stays flat), bounded as `get` is.
        use md5::{Digest, Md5};
        use tokio::io::AsyncWriteExt;
        self.check_key(key)?;
        let (this, k) = (self.clone(), key.to_string());
        let (file, st) = blocking(self.location(key), move || this.open_object(&k)).await?;
        let size = st.st_size as u64;
        if size > self.max_object_size {
            return Err(self.too_big(key, Some(size)));
        }
        let mut file = tokio::fs::File::from_std(file);
        let mut h = Md5::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut read = 0u64;
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf)
                .await
                .map_err(|e| self.io_fail(key, e))?;
            if n == 0 {
                break;
            }
            read += n as u64;
            if read > self.max_object_size {
                return Err(self.too_big(key, None));
            }
            h.update(&buf[..n]);
            sink.write_all(&buf[..n])
                .await
                .map_err(super::local_write_error)?;
        }
        sink.flush().await.map_err(super::local_write_error)?;
        let md5 = hex::encode(h.finalize());
        Ok((self.meta(key, &st, read, md5.clone()), md5))
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<String>> {
        self.put_bytes(key, Payload::new(body), mode).await
    }

    async fn put_bytes(&self, key: &str, body: Payload, mode: PutMode) -> Result<Option<String>> {
        self.check_key(key)?;
        // The MD5 of the bytes handed over, which are the bytes written.
        let etag = body.md5_hex();
        let (this, k) = (self.clone(), key.to_string());
        let temp = blocking(self.location(key), move || this.write_temp(&k, &body)).await?;
        // Dropped here if the command is cancelled meanwhile: `temp` goes too.
        let guard = match mode {
            PutMode::Update(_) => Some(self.exclusive().await?),
            _ => None,
        };
        let (this, k) = (self.clone(), key.to_string());
        blocking(self.location(key), move || {
            let _guard = guard;
            this.commit(&k, temp, &mode)
        })
        .await?;
        Ok(Some(etag))
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        self.check_key(key)?;
        let guard = match if_match {
            Some(_) => Some(self.exclusive().await?),
            None => None,
        };
        let (this, key, m) = (self.clone(), key.to_string(), if_match.map(str::to_string));
        blocking(self.location(&key), move || {
            let _guard = guard;
            this.delete_blocking(&key, m.as_deref()).map(|_| ())
        })
        .await
    }

    async fn delete_if(&self, key: &str, etag: &str) -> Result<bool> {
        self.check_key(key)?;
        let guard = self.exclusive().await?;
        let (this, key, etag) = (self.clone(), key.to_string(), etag.to_string());
        blocking(self.location(&key), move || {
            let _guard = guard;
            this.delete_blocking(&key, Some(&etag))
        })
        .await
    }

    async fn remove_empty_dirs(&self, prefix: &str) -> Result<usize> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(self.location(&prefix), move || {
            this.remove_empty_dirs_blocking(&prefix)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(self.location(&prefix), move || {
            this.list_blocking(&prefix, true)
        })
        .await
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(self.location(&prefix), move || {
            this.list_blocking(&prefix, false)
        })
        .await
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
                return rfs::syncfs(&*this.dir).map_err(|e| this.fail("", e));
            }
            let mut dirs = BTreeSet::new();
            for key in &pending {
                match this.open_beneath(key, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()) {
                    Ok(fd) => rfs::fsync(&fd).map_err(|e| this.fail(key, e))?,
                    // Deleted since it was written: nothing to make durable.
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(this.fail(key, e)),
                }
                dirs.insert(split(key).0.to_string());
            }
            for d in dirs {
                if let Ok(fd) =
                    this.open_beneath(&d, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                {
                    let _ = rfs::fsync(&fd);
                }
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn store() -> (tempfile::TempDir, FsStore) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = FsStore::create(tmp.path().join("s")).expect("store");
        (tmp, s)
    }

    /// The fallback (no openat2) refuses a link at any component.
    #[test]
    fn the_component_walk_follows_no_link() {
        let (tmp, s) = store();
        let root = tmp.path().join("s");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/b/f"), b"x").expect("write");
        std::fs::create_dir(tmp.path().join("out")).expect("mkdir");
        std::fs::write(tmp.path().join("out/f"), b"outside").expect("write");
        symlink(tmp.path().join("out"), root.join("a/l")).expect("symlink");
        symlink(tmp.path().join("out/f"), root.join("a/lf")).expect("symlink");
        let rd = OFlags::RDONLY | OFlags::NONBLOCK;
        assert!(open_walk(s.dir.as_fd(), "a/b/f", rd, Mode::empty()).is_ok());
        assert_eq!(
            open_walk(s.dir.as_fd(), "a/l/f", rd, Mode::empty()).err(),
            Some(Errno::LOOP)
        );
        assert_eq!(
            open_walk(s.dir.as_fd(), "a/lf", rd, Mode::empty()).err(),
            Some(Errno::LOOP)
        );
        assert_eq!(
            open_walk(s.dir.as_fd(), "a/l", rd | OFlags::DIRECTORY, Mode::empty()).err(),
            Some(Errno::LOOP)
        );
        // And the main path says the same.
        assert_eq!(
            s.open_beneath("a/l", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .err(),
            Some(Errno::LOOP)
        );
    }

    #[tokio::test]
    async fn links_and_special_files_are_refused_by_every_operation() {
        let (tmp, s) = store();
        let root = tmp.path().join("s");
        std::fs::write(tmp.path().join("target"), b"outside").expect("write");
        symlink(tmp.path().join("target"), root.join("k")).expect("symlink");
        assert!(s.get("k").await.is_err());
        assert!(s.head("k").await.is_err());
        for mode in [
            PutMode::Overwrite,
            PutMode::Create,
            PutMode::Update("x".into()),
        ] {
            let e = s.put("k", b"new".to_vec(), mode).await.expect_err("put");
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        assert!(s.delete("k", None).await.is_err());
        assert!(s.delete("k", Some("x")).await.is_err());
        assert_eq!(
            std::fs::read(tmp.path().join("target")).expect("t"),
            b"outside"
        );
        assert!(root.join("k").symlink_metadata().expect("l").is_symlink());
        let e = s.list("").await.expect_err("list").to_string();
        assert!(e.contains("/s/k") && e.contains("symbolic link"), "{e}");
        // A socket (open(2) says ENXIO) and a FIFO (would block): refused.
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("bind");
        let e = s.get("sock").await.expect_err("socket").to_string();
        assert!(e.contains("socket"), "{e}");
        let e = s
            .put("sock", b"x".to_vec(), PutMode::Overwrite)
            .await
            .expect_err("socket");
        assert!(e.to_string().contains("socket"), "{e}");
        // a//b would alias a/b: not a key.
        assert!(
            s.put("a//b", b"x".to_vec(), PutMode::Overwrite)
                .await
                .is_err()
        );
        assert!(s.get("a//b").await.is_err());
    }

    #[tokio::test]
    async fn get_is_bounded_before_reading() {
        let (_tmp, s) = store();
        let s = s.with_max_object_size(10);
        s.put("k", vec![b'x'; 11], PutMode::Overwrite)
            .await
            .expect("put");
        let e = s.get("k").await.expect_err("too big").to_string();
        assert!(
            e.contains("11 bytes") && e.contains("--max-state-size"),
            "{e}"
        );
        assert_eq!(s.head("k").await.expect("head").size, 11);
        s.put("k", vec![b'x'; 10], PutMode::Overwrite)
            .await
            .expect("put");
        assert_eq!(s.get("k").await.expect("fits").bytes.len(), 10);
    }

    #[test]
    fn open_needs_the_root_create_makes_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("nope");
        let e = FsStore::open(&missing).expect_err("missing").to_string();
        assert!(
            e.contains("does not exist") && e.contains("mkdir -p"),
            "{e}"
        );
        assert!(!missing.exists());
        assert!(FsStore::new(&missing).is_err(), "new is open");
        FsStore::create(missing.join("deep")).expect("create");
        assert!(missing.join("deep").is_dir());
        std::fs::write(tmp.path().join("file"), b"").expect("write");
        assert!(FsStore::open(tmp.path().join("file")).is_err());
    }

    #[tokio::test]
    async fn a_failed_write_leaves_no_temporary_file() {
        let (tmp, s) = store();
        s.put("d/k", b"1".to_vec(), PutMode::Create)
            .await
            .expect("put");
        assert!(matches!(
            s.put("d/k", b"2".to_vec(), PutMode::Create).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.put("d/k", b"2".to_vec(), PutMode::Update("stale".into()))
                .await,
            Err(StoreError::Precondition { .. })
        ));
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("s/d"))
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k")]);
    }
}
