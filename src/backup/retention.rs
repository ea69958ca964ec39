//! Retention: keep the newest N complete snapshots. Objects are shared
//! between snapshots (an incremental run points to the object an older
//! snapshot wrote), so an object goes only when no kept manifest points to
//! it.

use super::snapshot::{list_ids, manifest_key, read_manifest};
use crate::location::join;
use crate::store::{ObjectStore, StoreError};
use std::collections::HashSet;

/// What `prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub snapshots: Vec<String>,
    pub objects: usize,
}

/// Keep the `keep` newest complete snapshots; delete the others' manifests
/// (first, so they stop counting as complete) and then every object of
/// theirs that no kept manifest references.
pub async fn prune(store: &dyn ObjectStore, root: &str, keep: usize) -> Result<Pruned, StoreError> {
    let ids = list_ids(store, root).await?;
    if ids.len() <= keep {
        return Ok(Pruned::default());
    }
    let (old, kept) = ids.split_at(ids.len() - keep);
    let mut referenced = HashSet::new();
    for id in kept {
        for e in read_manifest(store, root, id).await?.states {
            referenced.insert(e.object);
        }
    }
    let mut out = Pruned::default();
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
        out.snapshots.push(id.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{Entry, FORMAT, Manifest, write_manifest};
    use super::*;
    use crate::store::PutMode;
    use chrono::Utc;

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
        let p = prune(&store, "", 1).await.expect("prune");
        assert_eq!(p.snapshots, ["a", "b"]);
        assert_eq!(list_ids(&store, "").await.expect("ids"), ["c"]);
        assert!(store.head("a/k").await.is_ok(), "still referenced by c");
        assert!(store.head("b/j").await.is_ok(), "still referenced by c");
        assert!(store.head("a/j").await.is_err(), "unreferenced: deleted");
    }
}
