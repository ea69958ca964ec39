//! Retention: keep the newest N complete snapshots. Objects are shared
//! between snapshots (an incremental run points to the object an older
//! snapshot wrote), so an object goes only when no kept manifest points to
//! it.

use super::snapshot::{list_ids, manifest_key, new_id, read_manifest};
use crate::location::join;
use crate::store::{ObjectStore, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// What `prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub snapshots: Vec<String>,
    pub objects: usize,
    /// Snapshot IDs that sort after the time of this run (clock skew, or
    /// IDs not written by this clock): they count as the newest.
    pub future: Vec<String>,
}

/// Keep the `keep` newest complete snapshots; delete the others' manifests
/// (first, so they stop counting as complete) and then every object of
/// theirs that no kept manifest references. `current`, the snapshot this
/// run has just written, is always kept (it is one of the `keep`), whatever
/// IDs sort after it; IDs that sort after `now` are listed in
/// [`Pruned::future`] for a warning.
pub async fn prune(
    store: &dyn ObjectStore,
    root: &str,
    keep: usize,
    current: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Pruned, StoreError> {
    let ids = list_ids(store, root).await?;
    let now_id = new_id(now);
    let future: Vec<String> = ids
        .iter()
        .filter(|id| id.as_str() > now_id.as_str() && Some(id.as_str()) != current)
        .cloned()
        .collect();
    // The current run first, then the newest others.
    let mut kept: Vec<&String> = ids
        .iter()
        .filter(|id| Some(id.as_str()) == current)
        .collect();
    kept.extend(
        ids.iter()
            .rev()
            .filter(|id| Some(id.as_str()) != current)
            .take(keep.saturating_sub(kept.len())),
    );
    let old: Vec<&String> = ids.iter().filter(|id| !kept.contains(id)).collect();
    if old.is_empty() {
        return Ok(Pruned {
            future,
            ..Pruned::default()
        });
    }
    let mut referenced = HashSet::new();
    for id in kept {
        for e in read_manifest(store, root, id).await?.states {
            referenced.insert(e.object);
        }
    }
    let mut out = Pruned {
        future,
        ..Pruned::default()
    };
    for id in old {
        let m = read_manifest(store, root, id).await?;
        store.delete(&manifest_key(root, id), None).await?;
        for e in m.states {
            // Only objects this snapshot wrote itself: older ones are dealt
            // with when their own snapshot is pruned (or are referenced).
            if e.object.starts_with(&format!("{id}/")) && !referenced.contains(&e.object) {
                store.delete(&join(root, &e.object), None).await?;
                out.objects += 1;
            }
        }
        out.snapshots.push(id.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{Entry, FORMAT, Manifest, write_manifest};
    use super::*;
    use crate::store::PutMode;

    #[tokio::test]
    async fn prune_keeps_referenced_objects() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = crate::store::fs::FsStore::new(dir.path()).expect("store");
        let entry = |object: &str| Entry {
            key: "k".into(),
            object: object.into(),
            size: 1,
            md5: String::new(),
            serial: None,
            lineage: None,
            source_etag: None,
            source_last_modified: None,
            time: Utc::now(),
            gzip: false,
        };
        // a wrote a/k and a/j; b references a/k and wrote b/j; c references both of b's.
        for (id, objs) in [
            ("a", vec!["a/k", "a/j"]),
            ("b", vec!["a/k", "b/j"]),
            ("c", vec!["a/k", "b/j"]),
        ] {
            for o in &objs {
                store
                    .put(o, b"x".to_vec(), PutMode::Overwrite)
                    .await
                    .expect("put");
            }
            let m = Manifest {
                format: FORMAT.into(),
                id: id.into(),
                created: Utc::now(),
                source: "s".into(),
                states: objs.iter().map(|o| entry(o)).collect(),
            };
            write_manifest(&store, "", &m).await.expect("manifest");
        }
        let p = prune(&store, "", 1, None, Utc::now()).await.expect("prune");
        assert_eq!(p.snapshots, ["a", "b"]);
        assert_eq!(list_ids(&store, "").await.expect("ids"), ["c"]);
        assert!(store.head("a/k").await.is_ok(), "still referenced by c");
        assert!(store.head("b/j").await.is_ok(), "still referenced by c");
        assert!(store.head("a/j").await.is_err(), "unreferenced: deleted");
    }
}
