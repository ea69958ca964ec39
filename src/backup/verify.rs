//! `backup verify`: every object of the chosen snapshots, read once each
//! (even when several manifests point to it), checked for size and MD5
//! against its manifest entry.

use super::snapshot::{self, Entry};
use super::{Failure, Progress, failure_lines};
use crate::error::Error;
use crate::location::join;
use crate::store::{ObjectStore, md5_hex};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;

/// What a verification found (`--output json` prints it as it is).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub location: String,
    pub snapshots: Vec<String>,
    pub objects: usize,
    pub ok: usize,
    pub failed: usize,
    /// Set by the caller, who knows when the run started.
    pub seconds: f64,
    pub failures: Vec<Failure>,
}

impl Summary {
    /// The error for damaged or missing objects, each listed.
    pub fn incomplete(&self) -> Option<Error> {
        if self.failures.is_empty() {
            return None;
        }
        Some(Error::Incomplete(format!(
            "{} of {} backup objects are damaged or missing:\n{}",
            self.failed,
            self.objects,
            failure_lines(&self.failures)
        )))
    }
}

/// Verify snapshot `id` (or, without one, every complete snapshot) of the
/// backup at `root` of `store`; `display` names it in messages.
pub async fn verify(
    store: &dyn ObjectStore,
    root: &str,
    id: Option<&str>,
    display: &str,
    concurrency: usize,
    max_size: u64,
    progress: &dyn Progress,
) -> Result<Summary, Error> {
    let ids = match id {
        Some(id) => vec![id.to_string()],
        None => snapshot::list_ids(store, root).await?,
    };
    if ids.is_empty() {
        return Err(snapshot::no_snapshot(display).into());
    }
    // One check per object, even when several manifests point to it.
    // A manifest whose entries fail the checks of a restore (keys, object
    // layout) is a failure of its own, and none of its objects is read.
    let mut objects: HashMap<String, Entry> = HashMap::new();
    let mut unsafe_manifests = Vec::new();
    for id in &ids {
        let m = snapshot::read_manifest(store, root, id).await?;
        if let Err(e) = snapshot::check_entries(store, root, &m) {
            unsafe_manifests.push(Failure {
                key: store.location(&snapshot::manifest_key(root, id)),
                error: match e {
                    crate::store::StoreError::Other { message, .. } => message,
                    e => e.to_string(),
                },
            });
            continue;
        }
        for e in m.states {
            objects.entry(e.object.clone()).or_insert(e);
        }
    }
    let mut summary = Summary {
        location: display.to_string(),
        snapshots: ids,
        objects: objects.len() + unsafe_manifests.len(),
        failed: unsafe_manifests.len(),
        failures: unsafe_manifests,
        ..Default::default()
    };
    progress.start(objects.len() as u64);
    let mut results = futures_util::stream::iter(objects.values())
        .map(|e| async move {
            let key = join(root, &e.object);
            check(store, &key, e, max_size)
                .await
                .map_err(|err| Failure {
                    key: store.location(&key),
                    error: err,
                })
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        progress.advance();
        match r {
            Ok(()) => summary.ok += 1,
            Err(f) => {
                summary.failed += 1;
                summary.failures.push(f);
            }
        }
    }
    drop(results);
    progress.finish();
    summary.failures.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(summary)
}

/// Is the object at `key` what `e` says it is?
async fn check(store: &dyn ObjectStore, key: &str, e: &Entry, max_size: u64) -> Result<(), String> {
    let got = store.get(key).await.map_err(|e| e.to_string())?;
    let bytes = if e.gzip {
        snapshot::gunzip(&got.bytes, max_size)?
    } else {
        got.bytes
    };
    let md5 = md5_hex(&bytes);
    if bytes.len() as u64 != e.size || md5 != e.md5 {
        return Err(format!(
            "{} bytes with MD5 {md5}, the manifest says {} bytes with MD5 {}",
            bytes.len(),
            e.size,
            e.md5
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Silent;
    use crate::backup::copy::tests::{dirs, run};
    use crate::store::PutMode;

    const MAX: u64 = crate::store::fs::DEFAULT_MAX_OBJECT_SIZE;

    #[tokio::test]
    async fn verify_finds_a_damaged_object_and_a_missing_one() {
        let d = dirs().await;
        let first = run(&d, false, None).await;
        run(&d, true, None).await;
        let all = verify(&d.dst, "nightly", None, "file:///b", 2, MAX, &Silent)
            .await
            .expect("verify");
        assert_eq!(
            (all.snapshots.len(), all.objects, all.ok, all.failed),
            (2, 3, 3, 0)
        );
        assert!(all.incomplete().is_none());

        let m = snapshot::read_manifest(&d.dst, "nightly", &first.snapshot)
            .await
            .expect("manifest");
        let damaged = join("nightly", &m.states[0].object);
        d.dst
            .put(&damaged, b"{}".to_vec(), PutMode::Overwrite)
            .await
            .expect("damage");
        let missing = join("nightly", &m.states[1].object);
        d.dst.delete(&missing, None).await.expect("delete");
        let one = verify(
            &d.dst,
            "nightly",
            Some(&first.snapshot),
            "file:///b",
            2,
            MAX,
            &Silent,
        )
        .await
        .expect("verify");
        assert_eq!((one.ok, one.failed), (1, 2), "{one:?}");
        let msg = one.incomplete().expect("error").to_string();
        assert!(
            msg.contains(&damaged) && msg.contains("MD5") && msg.contains(&missing),
            "{msg}"
        );

        assert!(matches!(
            verify(&d.dst, "empty", None, "file:///b/empty", 1, MAX, &Silent).await,
            Err(Error::Store(crate::store::StoreError::NotFound { .. }))
        ));
    }

    /// Issue 9: gunzip is bounded by --max-state-size, and a manifest whose
    /// entries fail the checks of a restore is a failure of its own.
    #[tokio::test]
    async fn verify_bounds_gunzip_and_checks_manifest_entries() {
        // A gzipped object that decompresses beyond --max-state-size.
        let d = dirs().await;
        let gz = run(&d, true, None).await;
        let bounded = verify(
            &d.dst,
            "nightly",
            Some(&gz.snapshot),
            "file:///b",
            2,
            10,
            &Silent,
        )
        .await
        .expect("verify");
        assert_eq!(bounded.failed, bounded.objects, "{bounded:?}");
        assert!(
            bounded.failures[0].error.contains("--max-state-size"),
            "{bounded:?}"
        );

        // A manifest entry that fails the checks of a restore: a failure,
        // its objects not read.
        let mut evil = snapshot::read_manifest(&d.dst, "nightly", &gz.snapshot)
            .await
            .expect("manifest");
        evil.id = snapshot::new_id(chrono::Utc::now() + chrono::Duration::seconds(1));
        evil.states[0].key = format!("{}.tflock", evil.states[0].key);
        snapshot::write_manifest(&d.dst, "nightly", &evil)
            .await
            .expect("evil");
        let checked = verify(
            &d.dst,
            "nightly",
            Some(&evil.id),
            "file:///b",
            2,
            MAX,
            &Silent,
        )
        .await
        .expect("verify");
        assert_eq!((checked.objects, checked.failed), (1, 1), "{checked:?}");
        assert!(
            checked.failures[0]
                .key
                .ends_with(&format!("manifests/{}.json", evil.id))
                && checked.failures[0].error.contains("unsafe entry"),
            "{checked:?}"
        );
    }
}
