//! Retention: keep the newest N complete snapshots. Objects are shared
//! between snapshots (an incremental run points to the object an older
//! snapshot wrote), so an object goes only when no kept manifest points to
//! it, wherever it lives.
//!
//! After the manifests of pruned snapshots are deleted (first, so they stop
//! counting as complete), one listing of the root finds what to collect:
//! every object in a snapshot directory that no kept manifest references
//! (also those of directories pruned earlier, and leftovers of killed runs
//! in kept ones), and the partial directories of killed runs (no manifest)
//! older than the newest complete snapshot and untouched for an hour (a run
//! still writing is never collected). Then empty directories go (directory
//! stores). The current run's snapshot is never touched.

use super::snapshot::{MANIFESTS, check_entries, list_ids, manifest_key, new_id, read_manifest};
use crate::localfile::STALE_TEMP_AGE;
use crate::store::{ObjectStore, StoreError};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// What `prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub snapshots: Vec<String>,
    /// Objects deleted (those of pruned snapshots, unreferenced leftovers,
    /// partial runs).
    pub objects: usize,
    /// Snapshot IDs that sort after the time of this run (clock skew, or
    /// IDs not written by this clock): they count as the newest.
    pub future: Vec<String>,
}

/// Is `dir` a snapshot ID (what [`new_id`] writes)?
fn is_id(dir: &str) -> bool {
    NaiveDateTime::parse_from_str(dir, "%Y-%m-%dT%H-%M-%S%.3fZ").is_ok()
}

/// Keep the `keep` newest complete snapshots; delete the others' manifests
/// and then every object no kept manifest references (see the module
/// comment). `current`, the snapshot this run has just written, is always
/// kept (it is one of the `keep`), whatever IDs sort after it; IDs that
/// sort after `now` are listed in [`Pruned::future`] for a warning. Every
/// kept manifest must pass [`check_entries`] (one that points outside its
/// layout stops the prune before anything is deleted).
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
    let mut referenced = HashSet::new();
    for id in &kept {
        let m = read_manifest(store, root, id).await?;
        check_entries(store, root, &m)?;
        referenced.extend(m.states.into_iter().map(|e| e.object));
    }
    // Partial runs older than this (the newest complete snapshot not after
    // now, or this run's) are debris.
    let bound = ids
        .iter()
        .filter(|id| id.as_str() <= now_id.as_str() || Some(id.as_str()) == current)
        .max()
        .cloned();
    let mut out = Pruned {
        future,
        ..Pruned::default()
    };
    for id in &old {
        store.delete(&manifest_key(root, id), None).await?;
        out.snapshots.push(id.to_string());
    }

    let prefix = if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    };
    let mut dirs: BTreeMap<String, Vec<crate::store::ObjectMeta>> = BTreeMap::new();
    for m in store.list(&prefix).await? {
        let Some(rel) = m.key.strip_prefix(&prefix) else {
            continue;
        };
        if let Some((dir, _)) = rel.split_once('/') {
            dirs.entry(dir.to_string()).or_default().push(m);
        }
    }
    let quiet_since = now - chrono::Duration::from_std(STALE_TEMP_AGE).unwrap_or_default();
    let complete: HashSet<&str> = ids.iter().map(String::as_str).collect();
    for (dir, objects) in &dirs {
        if dir == MANIFESTS || Some(dir.as_str()) == current || !is_id(dir) {
            continue;
        }
        let collect = complete.contains(dir.as_str())
            || (bound.as_deref().is_some_and(|b| dir.as_str() < b)
                && objects
                    .iter()
                    .all(|o| o.last_modified.is_some_and(|t| t < quiet_since)));
        if !collect {
            continue;
        }
        for o in objects {
            let rel = &o.key[prefix.len()..];
            if !referenced.contains(rel) {
                store.delete(&o.key, None).await?;
                out.objects += 1;
            }
        }
    }
    store.remove_empty_dirs(&prefix).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{Entry, FORMAT, Manifest, write_manifest};
    use super::*;
    use crate::store::PutMode;

    fn entry(object: &str) -> Entry {
        Entry {
            key: object.split_once('/').map_or(object, |(_, k)| k).into(),
            object: object.into(),
            size: 1,
            md5: String::new(),
            serial: None,
            lineage: None,
            source_etag: None,
            source_last_modified: None,
            time: Utc::now(),
            gzip: false,
        }
    }

    fn manifest(id: &str, objects: &[&str]) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            id: id.into(),
            created: Utc::now(),
            source: "s".into(),
            states: objects.iter().map(|o| entry(o)).collect(),
        }
    }

    #[tokio::test]
    async fn prune_keeps_referenced_objects() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = crate::store::fs::FsStore::new(dir.path()).expect("store");
        let now = Utc::now();
        let id = |ago_min: i64| new_id(now - chrono::Duration::minutes(ago_min));
        let (a, b, c) = (id(3), id(2), id(1));
        let o = |id: &str, k: &str| format!("{id}/{k}");
        // a wrote a/k and a/j; b references a/k and wrote b/j; c references both of b's.
        for (id, objs) in [
            (&a, vec![o(&a, "k"), o(&a, "j")]),
            (&b, vec![o(&a, "k"), o(&b, "j")]),
            (&c, vec![o(&a, "k"), o(&b, "j")]),
        ] {
            for x in &objs {
                store
                    .put(x, b"x".to_vec(), PutMode::Overwrite)
                    .await
                    .expect("put");
            }
            let refs: Vec<&str> = objs.iter().map(String::as_str).collect();
            write_manifest(&store, "", &manifest(id, &refs))
                .await
                .expect("manifest");
        }
        let p = prune(&store, "", 1, None, now).await.expect("prune");
        assert_eq!(p.snapshots, [a.clone(), b.clone()]);
        assert_eq!(list_ids(&store, "").await.expect("ids"), [c]);
        assert!(
            store.head(&o(&a, "k")).await.is_ok(),
            "still referenced by c"
        );
        assert!(
            store.head(&o(&b, "j")).await.is_ok(),
            "still referenced by c"
        );
        assert!(
            store.head(&o(&a, "j")).await.is_err(),
            "unreferenced: deleted"
        );
    }

    /// Item 7 of issue 9: an object whose directory was pruned earlier,
    /// partial runs (with a temporary file) and empty directories are
    /// collected; a run still writing, the current run and what is not a
    /// snapshot are left alone.
    #[tokio::test]
    async fn prune_collects_leaks_partial_runs_and_empty_directories() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = crate::store::fs::FsStore::new(dir.path()).expect("store");
        let now = Utc::now();
        let id = |ago_min: i64| new_id(now - chrono::Duration::minutes(ago_min));
        let (a, b, p, e, c, q, d) = (id(300), id(240), id(180), id(210), id(120), id(1), id(0));
        let age = |key: &str| {
            let f = std::fs::File::options()
                .write(true)
                .open(dir.path().join(key))
                .expect("open");
            f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
                .expect("mtime");
        };
        let put = async |key: String, old: bool| {
            store
                .put(&key, b"x".to_vec(), PutMode::Overwrite)
                .await
                .expect("put");
            if old {
                age(&key);
            }
        };
        // A was pruned earlier; B referenced A/k then, and is pruned now.
        put(format!("{a}/k"), true).await;
        put(format!("{b}/j"), true).await;
        write_manifest(
            &store,
            "",
            &manifest(&b, &[&format!("{a}/k"), &format!("{b}/j")]),
        )
        .await
        .expect("b");
        // P: a killed run (an object, a temporary file, an empty directory).
        put(format!("{p}/env:/w/k"), true).await;
        std::fs::create_dir_all(dir.path().join(&p).join("empty/sub")).expect("mkdir");
        let tmp = format!("{p}/env:/w/.tfsync-tmp-killed");
        std::fs::write(dir.path().join(&tmp), b"partial").expect("tmp");
        age(&tmp);
        // E: nothing but empty directories (what older prunes left).
        std::fs::create_dir_all(dir.path().join(&e).join("a/b")).expect("mkdir");
        // C and D (this run) are kept; C refers to B/j.
        put(format!("{c}/m"), true).await;
        write_manifest(
            &store,
            "",
            &manifest(&c, &[&format!("{b}/j"), &format!("{c}/m")]),
        )
        .await
        .expect("c");
        // Q: a run still writing (fresh object, no manifest yet).
        put(format!("{q}/k"), false).await;
        put(format!("{d}/n"), false).await;
        write_manifest(
            &store,
            "",
            &manifest(&d, &[&format!("{c}/m"), &format!("{d}/n")]),
        )
        .await
        .expect("d");
        // Not a snapshot directory.
        put("notes/readme".into(), true).await;

        let pruned = prune(&store, "", 2, Some(&d), now).await.expect("prune");
        assert_eq!(pruned.snapshots, std::slice::from_ref(&b));
        assert_eq!(
            list_ids(&store, "").await.expect("ids"),
            [c.clone(), d.clone()]
        );
        let exists = |rel: String| dir.path().join(rel).exists();
        assert!(!exists(format!("{a}/k")), "referenced only by pruned B");
        assert!(exists(format!("{b}/j")), "referenced by C");
        assert!(
            !exists(p.clone()),
            "the partial run is gone, temp file and all"
        );
        assert!(!exists(e.clone()), "empty directories are gone");
        assert!(!exists(a.clone()), "A's directory is gone");
        assert!(exists(format!("{c}/m")) && exists(format!("{d}/n")));
        assert!(
            exists(format!("{q}/k")),
            "a run still writing is left alone"
        );
        assert!(exists("notes/readme".into()), "not a snapshot: left alone");
        assert_eq!(pruned.objects, 2, "{pruned:?}");
    }
}
