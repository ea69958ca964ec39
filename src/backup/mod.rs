//! Backups of many states: the snapshot layout ([`snapshot`]), taking a
//! snapshot ([`copy`]), checking one ([`verify`]), keeping the newest N
//! ([`retention`]) and putting states back ([`restore`]). Engines over
//! opened stores: nothing here opens a store, parses arguments or prints
//! (progress goes through [`Progress`]).

pub mod copy;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod verify;

use crate::error::Error;
use crate::location::Location;
use crate::store::StoreError;
use crate::store::open::Opened;
use serde::Serialize;

/// How an engine reports progress over many states (a progress bar on a
/// terminal, nothing elsewhere).
pub trait Progress: Sync {
    /// The number of states (or objects) the run will go through.
    fn start(&self, _total: u64) {}
    /// One more done, whatever its outcome.
    fn advance(&self) {}
    /// The run is over.
    fn finish(&self) {}
}

/// No progress to show.
pub struct Silent;

impl Progress for Silent {}

/// One key that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub key: String,
    pub error: String,
}

/// One indented `key: error` line per failure.
pub fn failure_lines(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("  {}: {}", f.key, f.error))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A backup location and, if it names one, a snapshot in it.
#[derive(Debug)]
pub struct Located {
    pub opened: Opened,
    /// The backup root in `opened.store`.
    pub root: String,
    pub snapshot: Option<String>,
}

/// `loc` as a backup root, or as `<root>/<snapshot id>` when its last part
/// (a directory's last component, a prefix's last segment) is the ID of a
/// complete snapshot there. `open` connects a location.
pub async fn locate(
    loc: &Location,
    open: impl AsyncFn(&Location) -> Result<Opened, Error>,
) -> Result<Located, Error> {
    let (parent, last) = match loc {
        Location::Dir(d) => (
            d.parent()
                .map(|p| Location::Dir(p.to_path_buf()))
                .filter(|_| d.file_name().is_some()),
            d.file_name().map(|n| n.to_string_lossy().into_owned()),
        ),
        Location::S3 {
            bucket,
            prefix,
            remote,
        } if !prefix.is_empty() => {
            let (p, last) = prefix.rsplit_once('/').unwrap_or(("", prefix));
            (
                Some(Location::S3 {
                    bucket: bucket.clone(),
                    prefix: p.to_string(),
                    remote: remote.clone(),
                }),
                Some(last.to_string()),
            )
        }
        Location::Azure {
            account,
            container,
            prefix,
        } if !prefix.is_empty() => {
            let (p, last) = prefix.rsplit_once('/').unwrap_or(("", prefix));
            (
                Some(Location::Azure {
                    account: account.clone(),
                    container: container.clone(),
                    prefix: p.to_string(),
                }),
                Some(last.to_string()),
            )
        }
        Location::Gcs { bucket, prefix } if !prefix.is_empty() => {
            let (p, last) = prefix.rsplit_once('/').unwrap_or(("", prefix));
            (
                Some(Location::Gcs {
                    bucket: bucket.clone(),
                    prefix: p.to_string(),
                }),
                Some(last.to_string()),
            )
        }
        Location::S3 { .. } | Location::Azure { .. } | Location::Gcs { .. } => (None, None),
    };
    if let (Some(parent), Some(id)) = (parent, last) {
        let opened = open(&parent).await?;
        let root = opened.prefix.clone();
        match opened.store.head(&snapshot::manifest_key(&root, &id)).await {
            Ok(_) => {
                return Ok(Located {
                    opened,
                    root,
                    snapshot: Some(id),
                });
            }
            Err(StoreError::NotFound { .. } | StoreError::BucketNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let opened = open(loc).await?;
    let root = opened.prefix.clone();
    Ok(Located {
        opened,
        root,
        snapshot: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::FsStore;
    use crate::store::{ObjectStore, Store};

    fn open_dir() -> impl AsyncFn(&Location) -> Result<Opened, Error> {
        async |loc: &Location| match loc {
            Location::Dir(d) => Ok(Opened {
                store: Store::Dir(FsStore::new(d.clone())?),
                prefix: String::new(),
                same_server: false,
                display: format!("file://{}", d.display()),
            }),
            Location::S3 { .. } | Location::Azure { .. } | Location::Gcs { .. } => {
                Err(Error::Config("no S3 in this test".into()))
            }
        }
    }

    #[tokio::test]
    async fn a_location_or_a_snapshot_in_it() {
        let d = copy::tests::dirs().await;
        let snap = copy::tests::run(&d, false, None).await;
        let root = tempfile::tempdir().expect("tmp");
        // The backup root of `run` is `nightly` in the destination store;
        // copy that tree into a directory of its own.
        let at = root.path().join("nightly");
        let store = FsStore::create(at.clone()).expect("store");
        for m in d.dst.list("nightly/").await.expect("list") {
            let got = d.dst.get(&m.key).await.expect("get");
            let key = m.key.trim_start_matches("nightly/");
            store
                .put(key, got.bytes, crate::store::PutMode::Overwrite)
                .await
                .expect("put");
        }
        let l = locate(&Location::Dir(at.clone()), open_dir())
            .await
            .expect("root");
        assert_eq!((l.root.as_str(), l.snapshot), ("", None));
        let l = locate(&Location::Dir(at.join(&snap.snapshot)), open_dir())
            .await
            .expect("snapshot");
        assert_eq!(l.snapshot.as_deref(), Some(snap.snapshot.as_str()));
        assert_eq!(l.opened.display, format!("file://{}", at.display()));
    }
}
