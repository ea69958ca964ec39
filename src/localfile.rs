//! Local files that hold state: created 0600 and written atomically
//! (temporary file in the same directory, synced, then renamed), read with
//! a size bound, and the temporary files of this process cleaned up on
//! every way out that can be caught.
//!
//! Temporary files are named `.tfsync-tmp-<random>` (the directory store's
//! too). A temporary file is removed when its owner drops it (error, Ctrl-C
//! and SIGTERM paths included); one still being written by a worker thread
//! when the command ends is removed by [`remove_leftover_temps`], which
//! `main` calls on the way out; and one left by a killed process (SIGKILL,
//! power loss) is collected by the next write into the same directory once
//! it is older than [`STALE_TEMP_AGE`].

use crate::error::Error;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Prefix of every temporary file tfsync creates.
pub const TMP_PREFIX: &str = ".tfsync-tmp-";

/// A temporary file this old is debris of a killed run: the next write into
/// its directory removes it. No tfsync write lasts anywhere near this long.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

enum Leftover {
    Path(PathBuf),
    /// A name in a directory held open (the directory store never goes
    /// through paths that could have been swapped for a link).
    At(Arc<OwnedFd>, String),
}

static LEFTOVERS: Mutex<BTreeMap<u64, Leftover>> = Mutex::new(BTreeMap::new());
static NEXT_TEMP: AtomicU64 = AtomicU64::new(1);

fn register(l: Leftover) -> u64 {
    let id = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
    LEFTOVERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, l);
    id
}

/// Note a temporary file at `path`, to be removed by
/// [`remove_leftover_temps`] unless [`forget_temp`] is called first.
pub fn register_temp_path(path: &Path) -> u64 {
    register(Leftover::Path(path.to_path_buf()))
}

/// [`register_temp_path`] for `name` in the directory `dir`.
pub fn register_temp_at(dir: Arc<OwnedFd>, name: &str) -> u64 {
    register(Leftover::At(dir, name.to_string()))
}

/// The temporary file `id` was renamed into place or removed by its owner.
pub fn forget_temp(id: u64) {
    LEFTOVERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
}

/// Remove every temporary file of this process still registered: called on
/// the way out of the process (after a signal, a worker thread may still be
/// writing one). A file already renamed into place no longer has its
/// temporary name, so this never removes a completed write.
pub fn remove_leftover_temps() {
    let all = std::mem::take(&mut *LEFTOVERS.lock().unwrap_or_else(|p| p.into_inner()));
    for (_, l) in all {
        match l {
            Leftover::Path(p) => {
                let _ = std::fs::remove_file(p);
            }
            Leftover::At(dir, name) => {
                let _ = rustix::fs::unlinkat(&*dir, name.as_str(), rustix::fs::AtFlags::empty());
            }
        }
    }
}

/// Is `name` a temporary file of tfsync: `.tfsync-tmp-*`, or the
/// `.tfsync-XXXXXX` that earlier versions left beside a `pull -o` target
/// (six random letters and digits; an all-lowercase word such as
/// `.tfsync-doctor` is not taken for one)?
pub fn is_temp_name(name: &str) -> bool {
    if name.starts_with(TMP_PREFIX) {
        return true;
    }
    name.strip_prefix(".tfsync-").is_some_and(|rest| {
        rest.len() == 6
            && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            && !rest.bytes().all(|b| b.is_ascii_lowercase())
    })
}

/// Remove the temporary files of tfsync in `dir` that are regular files,
/// ours (same user), and older than [`STALE_TEMP_AGE`]; errors are ignored
/// (this is housekeeping, never a reason to fail).
pub fn sweep_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let uid = rustix::process::geteuid().as_raw();
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        let Ok(md) = entry.path().symlink_metadata() else {
            continue;
        };
        let old = md
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if md.file_type().is_file() && md.uid() == uid && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = PrivateTemp::beside(path)?;
    let mut f = tmp.reopen()?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))?;
    tmp.commit()
}

/// A 0600 temporary file beside `target`, renamed onto it by `commit`;
/// dropped without `commit` (an error, Ctrl-C, SIGTERM), it is removed and
/// `target` is untouched. Creating one collects stale temporary files of
/// killed runs in the same directory.
pub struct PrivateTemp {
    tmp: Option<tempfile::NamedTempFile>,
    target: PathBuf,
    registered: u64,
}

impl PrivateTemp {
    pub fn beside(target: &Path) -> Result<Self, Error> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        sweep_stale_temps(dir);
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| Error::io(target, e))?;
        let registered = register_temp_path(tmp.path());
        Ok(PrivateTemp {
            tmp: Some(tmp),
            target: target.to_path_buf(),
            registered,
        })
    }

    /// A second handle on the temporary file, for writing.
    pub fn reopen(&self) -> Result<std::fs::File, Error> {
        match &self.tmp {
            Some(t) => t.reopen().map_err(|e| Error::io(&self.target, e)),
            None => Err(Error::io(
                &self.target,
                std::io::Error::other("the temporary file is gone"),
            )),
        }
    }

    pub fn commit(mut self) -> Result<(), Error> {
        let target = self.target.clone();
        let Some(tmp) = self.tmp.take() else {
            return Err(Error::io(
                &target,
                std::io::Error::other("the temporary file is gone"),
            ));
        };
        let r = tmp.persist(&target);
        forget_temp(self.registered);
        r.map_err(|e| Error::io(&target, e.error))?;
        Ok(())
    }
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        // NamedTempFile's own drop removes the file.
        drop(self.tmp.take());
        forget_temp(self.registered);
    }
}

/// Where `pull -o FILE` writes.
#[derive(Debug)]
pub enum OutTarget {
    /// `-o -`: standard output.
    Stdout,
    /// An existing character or block device or FIFO: written through
    /// (opened for writing; never replaced, never renamed over).
    Device,
    /// A regular file or a new name: replaced atomically through a
    /// [`PrivateTemp`] beside it.
    File,
}

/// What `pull -o path` does with `path`. A symbolic link is refused, not
/// followed and not replaced: replacing it would silently turn a link
/// someone set up into a plain file, and following it would let whoever
/// can plant a link in that directory choose what tfsync overwrites.
pub fn out_target(path: &Path) -> Result<OutTarget, Error> {
    if path.as_os_str() == "-" {
        return Ok(OutTarget::Stdout);
    }
    let md = match path.symlink_metadata() {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutTarget::File),
        Err(e) => return Err(Error::io(path, e)),
    };
    let ft = md.file_type();
    let refuse = |what: String| Err(Error::io(path, std::io::Error::other(what)));
    if ft.is_symlink() {
        let to = std::fs::read_link(path)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        return refuse(format!(
            "is a symbolic link{to}: tfsync neither follows nor replaces links with -o. Pass the file it points to, or `-o -` for standard output"
        ));
    }
    if ft.is_file() {
        Ok(OutTarget::File)
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        Ok(OutTarget::Device)
    } else if ft.is_dir() {
        refuse("is a directory: pass a file name, e.g. -o DIR/terraform.tfstate".into())
    } else {
        refuse("is a socket: -o writes to a regular file, a device or a FIFO".into())
    }
}

/// Read a local state file, naming it in the error, and refusing one larger
/// than `max` bytes: a regular file by its size, before reading a byte;
/// anything else (a pipe, a device such as /dev/zero) by reading at most
/// `max + 1` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let too_big = |size: Option<u64>| Error::InvalidState {
        what: path.display().to_string(),
        reason: format!(
            "it is {}larger than --max-state-size ({} bytes, {}), so it was {}. A state is rarely more than a few MiB: check the file; raise --max-state-size (or TFSYNC_MAX_STATE_SIZE) if it really is one",
            size.map(|s| format!("{s} bytes, ")).unwrap_or_default(),
            max,
            bytesize::ByteSize::b(max).display().iec(),
            if size.is_some() {
                "not read"
            } else {
                "read no further"
            }
        ),
    };
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let md = f.metadata().map_err(|e| Error::io(path, e))?;
    if md.is_dir() {
        return Err(Error::io(path, std::io::Error::other("is a directory")));
    }
    if md.is_file() && md.len() > max {
        return Err(too_big(Some(md.len())));
    }
    // Sized up front: growing it while reading would hold up to 1.5x.
    let mut bytes = Vec::with_capacity(if md.is_file() { md.len() as usize } else { 0 });
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_big(None));
    }
    Ok(bytes)
}

/// Read a local state file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Parse a size: `512MiB`, `1GiB`, `100MB` (decimal), `4096` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    t.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!("invalid size {t:?} ({e}); use e.g. 512MiB, 1GiB, 100MB or a number of bytes")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_and_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.tfstate");
        std::fs::write(&p, b"old").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_private_atomic(&p, b"new").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"new");
        assert_eq!(
            std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temporary file left"
        );
        assert!(write_private_atomic(&dir.path().join("missing/x"), b"x").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn bounded_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s");
        std::fs::write(&p, b"12345").expect("write");
        assert_eq!(read_bounded(&p, 5).expect("fits"), b"12345");
        let e = read_bounded(&p, 4).expect_err("too big").to_string();
        assert!(
            e.contains("5 bytes") && e.contains("--max-state-size"),
            "{e}"
        );
        let e = read_bounded(Path::new("/dev/zero"), 1000)
            .expect_err("endless")
            .to_string();
        assert!(e.contains("--max-state-size"), "{e}");
    }

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".tfsync-tmp-x"));
        assert!(is_temp_name(".tfsync-aB3dE9"));
        assert!(!is_temp_name(".tfsync-store.lock"));
        assert!(!is_temp_name(".tfsync-doctor"));
        assert!(!is_temp_name("s.tfstate"));
    }
}
