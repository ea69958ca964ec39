//! `tfsync doctor` on Terraform's local backend: does the file system the
//! state lives on keep two writers apart the way Terraform and tfsync lock
//! (an `fcntl` write lock on the state file; tfsync's readers and writers
//! also take `flock`)? Measured on a scratch file in the state's directory,
//! removed afterwards. Network file systems are where this goes wrong: NFS
//! mounted with `nolock` grants every client the lock, and FUSE file systems
//! do whatever their server does.

use super::local_lock::{OsLock, probe, try_lock};
use crate::store::ObjectStore;
use crate::store::local::LocalStore;
use crate::store::probe::{Check, Report, Verdict, check};
use rustix::fs::{self as rfs, FlockOperation};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Run every check in the store's directory.
pub async fn run(store: &LocalStore) -> Report {
    let root = store.fs().root().to_path_buf();
    let name = format!(".tfsync-doctor-{}", uuid::Uuid::new_v4());
    let prefix = name.clone();
    let checks = tokio::task::spawn_blocking(move || checks(&root, &name))
        .await
        .unwrap_or_else(|e| {
            vec![check(
                "permissions",
                "create a file beside the state",
                Verdict::Fail,
                format!("the probe failed: {e}"),
            )]
        });
    Report {
        bucket: store.describe(),
        prefix,
        versioning: "not applicable (local)".into(),
        checks,
    }
}

fn checks(root: &Path, name: &str) -> Vec<Check> {
    let path = root.join(name);
    let mut out = Vec::new();
    let first = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    let first = match first {
        Ok(f) => f,
        Err(e) => {
            out.push(
                check(
                    "permissions",
                    "create a file beside the state",
                    Verdict::Fail,
                    format!("{}: {e}", path.display()),
                )
                .fix("Terraform and tfsync create the state and its lock info file there: make the directory writable"),
            );
            return out;
        }
    };
    out.push(check(
        "permissions",
        "create a file beside the state",
        Verdict::Pass,
        format!("created {name} (0600)"),
    ));
    out.push(filesystem(&first));
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(second) => {
            out.extend(os_lock(&first, &second));
            out.push(flock(&first, &second));
        }
        Err(e) => out.push(check(
            "os_lock_excludes",
            "a second fcntl write lock is refused",
            Verdict::Fail,
            format!("reopening {}: {e}", path.display()),
        )),
    }
    drop(first);
    out.push(match std::fs::remove_file(&path) {
        Ok(()) => check("cleanup", "scratch file removed", Verdict::Pass, "removed"),
        Err(e) => check(
            "cleanup",
            "scratch file removed",
            Verdict::Warn,
            format!("{}: {e}", path.display()),
        )
        .fix(format!("remove {} by hand", path.display())),
    });
    out
}

/// Which file system, by its magic number (statfs(2)).
fn filesystem(file: &std::fs::File) -> Check {
    let title = "a local file system";
    let magic = match rfs::fstatfs(file) {
        // Its C type differs between targets (c_long, c_uint).
        #[allow(clippy::useless_conversion)]
        Ok(st) => i64::from(st.f_type),
        Err(e) => {
            return check("filesystem", title, Verdict::Warn, format!("statfs: {e}"));
        }
    };
    let known: &[(i64, &str, Option<&str>)] = &[
        (0xef53, "ext2/3/4", None),
        (0x5846_5342, "xfs", None),
        (0x9123_683e, "btrfs", None),
        (0x0102_1994, "tmpfs", None),
        (0x2fc1_2fc1, "zfs", None),
        (0x794c_7630, "overlayfs", None),
        (
            0x6969,
            "NFS",
            Some(
                "fcntl locks on NFS go to the server (NLM or NFSv4 locks): they keep writers apart only when every client mounts with locking (never `nolock`) and the server keeps them; flock is emulated with fcntl there, so a tfsync reader may wait for a writer",
            ),
        ),
        (
            0x517b,
            "SMB",
            Some(
                "SMB/CIFS maps fcntl locks to the server's byte-range locks only with the right mount options (not `nobrl`); Terraform on another machine may not see them",
            ),
        ),
        (
            0xff53_4d42,
            "CIFS",
            Some(
                "SMB/CIFS maps fcntl locks to the server's byte-range locks only with the right mount options (not `nobrl`); Terraform on another machine may not see them",
            ),
        ),
        (
            0xfe53_4d42,
            "SMB2",
            Some(
                "SMB/CIFS maps fcntl locks to the server's byte-range locks only with the right mount options (not `nobrl`); Terraform on another machine may not see them",
            ),
        ),
        (
            0x6573_5546,
            "FUSE",
            Some(
                "a FUSE file system locks as its server implements it (many sync tools, e.g. cloud drives, do not lock across machines)",
            ),
        ),
    ];
    match known.iter().find(|(m, _, _)| *m == magic) {
        Some((_, fs, None)) => check(
            "filesystem",
            title,
            Verdict::Pass,
            format!("{fs}: locks are the kernel's"),
        ),
        Some((_, fs, Some(why))) => check(
            "filesystem",
            title,
            Verdict::Warn,
            format!("{fs}: the checks below see this machine only"),
        )
        .fix(why.to_string()),
        None => check(
            "filesystem",
            title,
            Verdict::Pass,
            format!("file system magic {magic:#x}: not a network file system tfsync knows"),
        ),
    }
}

/// The lock Terraform and tfsync take: a whole-file fcntl write lock.
fn os_lock(first: &std::fs::File, second: &std::fs::File) -> Vec<Check> {
    let (t_excl, t_seen) = (
        "a second fcntl write lock is refused",
        "a held lock is seen by a new writer",
    );
    match try_lock(first) {
        Ok(true) => {}
        Ok(false) => {
            return vec![check(
                "os_lock_excludes",
                t_excl,
                Verdict::Fail,
                "the first lock on a new file was refused",
            )];
        }
        Err(e) => {
            return vec![
                check(
                    "os_lock_excludes",
                    t_excl,
                    Verdict::Fail,
                    format!("fcntl(F_OFD_SETLK): {e}"),
                )
                .fix("this file system does not support fcntl locks: Terraform's local lock cannot work here"),
            ];
        }
    }
    let excl = match try_lock(second) {
        Ok(false) => check(
            "os_lock_excludes",
            t_excl,
            Verdict::Pass,
            "refused while the first is held",
        ),
        Ok(true) => check(
            "os_lock_excludes",
            t_excl,
            Verdict::Fail,
            "granted while the first is held: two writers could both lock the state",
        )
        .fix("keep the state on a file system with working locks (or use a remote backend)"),
        Err(e) => check("os_lock_excludes", t_excl, Verdict::Fail, e.to_string()),
    };
    let seen = match probe(second) {
        Ok(OsLock::Held(_)) => check(
            "os_lock_visible",
            t_seen,
            Verdict::Pass,
            "F_OFD_GETLK reports it (status and unlock can name the holder)",
        ),
        Ok(OsLock::Free) => check(
            "os_lock_visible",
            t_seen,
            Verdict::Warn,
            "F_OFD_GETLK reports no lock while one is held",
        )
        .fix("status may show a held state as unlocked here"),
        Err(e) => check("os_lock_visible", t_seen, Verdict::Warn, e.to_string()),
    };
    vec![excl, seen]
}

/// tfsync's readers and writers of one file also exclude each other with
/// flock(2).
fn flock(first: &std::fs::File, second: &std::fs::File) -> Check {
    let title = "flock(2) excludes a second writer";
    if let Err(e) = rfs::flock(first, FlockOperation::NonBlockingLockExclusive) {
        return check(
            "flock_excludes",
            title,
            Verdict::Warn,
            format!("flock: {e}"),
        );
    }
    match rfs::flock(second, FlockOperation::NonBlockingLockExclusive) {
        Err(rustix::io::Errno::WOULDBLOCK) => check(
            "flock_excludes",
            title,
            Verdict::Pass,
            "refused while the first is held",
        ),
        Ok(()) => check(
            "flock_excludes",
            title,
            Verdict::Warn,
            "granted twice: a tfsync read may see a state tfsync is writing",
        )
        .fix("keep the state on a local file system"),
        Err(e) => check(
            "flock_excludes",
            title,
            Verdict::Warn,
            format!("flock: {e}"),
        ),
    }
}
