//! Local files that hold state: created 0600 and written atomically
//! (temporary file in the same directory, synced, then renamed).

use crate::error::Error;
use std::io::Write;
use std::path::Path;

pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = PrivateTemp::beside(path)?;
    let mut f = tmp.reopen()?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))?;
    tmp.commit()
}

/// A 0600 temporary file beside `target`, renamed onto it by `commit`;
/// dropped without `commit`, it is removed and `target` is untouched.
pub struct PrivateTemp {
    tmp: tempfile::NamedTempFile,
    target: std::path::PathBuf,
}

impl PrivateTemp {
    pub fn beside(target: &Path) -> Result<Self, Error> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".tfsync-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(target, e))?;
        Ok(PrivateTemp {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// A second handle on the temporary file, for writing.
    pub fn reopen(&self) -> Result<std::fs::File, Error> {
        self.tmp.reopen().map_err(|e| Error::io(&self.target, e))
    }

    pub fn commit(self) -> Result<(), Error> {
        let target = self.target;
        self.tmp
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        Ok(())
    }
}

/// Read a local state file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
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
}
