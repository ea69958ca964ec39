//! Backup snapshots: layout, manifest, discovery. Domain only: nothing
//! here prints.
//!
//! Layout under the backup root (a directory, or a prefix in a bucket):
//!
//! ```text
//! <root>/<id>/<state key>[.gz]     the bytes copied by snapshot <id>
//! <root>/manifests/<id>.json       the manifest, written last
//! ```
//!
//! A snapshot exists only once its manifest does: the manifest is written
//! with one atomic PUT (or temporary file + rename) after every object of the
//! snapshot is stored, so a run that fails halfway leaves objects but no
//! manifest and is never taken for a complete snapshot.
//!
//! Incremental runs: a state whose source ETag and size are those recorded in
//! the newest complete manifest is not read again; the new manifest points to
//! the object that already holds its bytes (`object`, relative to the root),
//! which may live in an older snapshot's directory. Retention (`--keep N`,
//! [`super::retention`]) therefore deletes an object only when no kept
//! manifest points to it.

use crate::location::join;
use crate::store::{ObjectStore, PutMode, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "tfsync-backup/1";
pub const MANIFESTS: &str = "manifests";

/// One state in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The state's key at the source.
    pub key: String,
    /// Where its bytes are, relative to the backup root.
    pub object: String,
    /// Size of the state (uncompressed).
    pub size: u64,
    /// Hex MD5 of the state (uncompressed).
    pub md5: String,
    /// `null` when the object is not a readable state (e.g. encrypted).
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub source_etag: Option<String>,
    pub source_last_modified: Option<DateTime<Utc>>,
    /// When these bytes were read from the source.
    pub time: DateTime<Utc>,
    pub gzip: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub id: String,
    pub created: DateTime<Utc>,
    pub source: String,
    pub states: Vec<Entry>,
}

/// A new snapshot ID: the UTC time, sortable, safe in keys and file names.
pub fn new_id(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H-%M-%S%.3fZ").to_string()
}

pub fn manifest_key(root: &str, id: &str) -> String {
    join(root, &format!("{MANIFESTS}/{id}.json"))
}

/// The object key (relative to the root) of `state_key` in snapshot `id`.
pub fn object_for(id: &str, state_key: &str, gzip: bool) -> String {
    if gzip {
        format!("{id}/{state_key}.gz")
    } else {
        format!("{id}/{state_key}")
    }
}

/// IDs of the complete snapshots under `root`, oldest first.
pub async fn list_ids(store: &dyn ObjectStore, root: &str) -> Result<Vec<String>, StoreError> {
    let dir = join(root, &format!("{MANIFESTS}/"));
    let mut ids: Vec<String> = store
        .list(&dir)
        .await?
        .into_iter()
        .filter_map(|m| {
            m.key
                .strip_prefix(&dir)
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| !n.contains('/'))
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// The error for a backup location that holds no complete snapshot.
pub fn no_snapshot(display: &str) -> StoreError {
    StoreError::NotFound {
        location: format!("{display} (no complete snapshot: no manifests/*.json)"),
    }
}

/// The snapshot to read at `root`: `id` when given, else the newest.
pub async fn chosen(
    store: &dyn ObjectStore,
    root: &str,
    id: Option<&str>,
    display: &str,
) -> Result<String, StoreError> {
    match id {
        Some(id) => Ok(id.to_string()),
        None => list_ids(store, root)
            .await?
            .pop()
            .ok_or_else(|| no_snapshot(display)),
    }
}

pub async fn read_manifest(
    store: &dyn ObjectStore,
    root: &str,
    id: &str,
) -> Result<Manifest, StoreError> {
    let key = manifest_key(root, id);
    let got = store.get(&key).await?;
    let m: Manifest = serde_json::from_slice(&got.bytes).map_err(|e| StoreError::Other {
        location: store.location(&key),
        message: format!("not a tfsync backup manifest: {e}"),
    })?;
    if m.format != FORMAT {
        return Err(StoreError::Other {
            location: store.location(&key),
            message: format!("manifest format {:?} is not {FORMAT:?}", m.format),
        });
    }
    Ok(m)
}

/// Check every entry of manifest `m` (read from `store` at `root`) before
/// anything is written from it: each `key` passes the rules of a `--key`
/// ([`crate::tfstate::keys::validate_key`]), and each `object` is
/// `<snapshot id>/<key>[.gz]` (the layout [`object_for`] writes, in this
/// snapshot's directory or an older one's), never under `manifests/` nor
/// outside the root.
pub fn check_entries(store: &dyn ObjectStore, root: &str, m: &Manifest) -> Result<(), StoreError> {
    let refuse = |key: &str, why: String| StoreError::Other {
        location: store.location(&manifest_key(root, &m.id)),
        message: format!(
            "snapshot {} has an unsafe entry for key {key:?}: {why}; nothing was written. The manifest was not written by tfsync or was altered: check it, or restore from another snapshot",
            m.id
        ),
    };
    for e in &m.states {
        crate::tfstate::keys::validate_key(&e.key).map_err(|why| refuse(&e.key, why))?;
        let dir = e.object.split_once('/').map(|(dir, _)| dir);
        let ok = dir.is_some_and(|dir| {
            !dir.is_empty()
                && dir != "."
                && dir != ".."
                && dir != MANIFESTS
                && !dir.chars().any(char::is_control)
                && e.object == object_for(dir, &e.key, e.gzip)
        });
        if !ok {
            return Err(refuse(
                &e.key,
                format!(
                    "its object {:?} is not <snapshot id>/<key>{}",
                    e.object,
                    if e.gzip { ".gz" } else { "" }
                ),
            ));
        }
    }
    Ok(())
}

/// Write the manifest: the last step, one atomic write.
pub async fn write_manifest(
    store: &dyn ObjectStore,
    root: &str,
    m: &Manifest,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(m).map_err(|e| StoreError::Other {
        location: store.location(&manifest_key(root, &m.id)),
        message: e.to_string(),
    })?;
    store
        .put(&manifest_key(root, &m.id), body, PutMode::Create)
        .await?;
    Ok(())
}

/// Is this key one a backup copies? Never lock objects.
pub fn is_state_key(key: &str, pattern: Option<&glob::Pattern>) -> bool {
    !key.ends_with(crate::tfstate::keys::LOCK_SUFFIX)
        && !key.ends_with('/')
        && pattern.is_none_or(|p| {
            p.matches_with(
                key,
                glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: false,
                    require_literal_leading_dot: false,
                },
            )
        })
}

/// Gzip `bytes` (level 6).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}

/// Gunzip `bytes`, never holding more than `max` bytes of output
/// (`--max-state-size`): a larger state, or a gzip bomb, is refused when
/// its `max + 1`-th byte comes out. The error is the whole message.
pub fn gunzip(bytes: &[u8], max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("not valid gzip: {e}"))?;
    if out.len() as u64 > max {
        return Err(format!(
            "it decompresses to more than --max-state-size ({max} bytes): refused. Raise --max-state-size (or TFSYNC_MAX_STATE_SIZE) if it really is a state"
        ));
    }
    Ok(out)
}

/// The newest of `ids` (sorted, oldest first) that is not after `now`: a
/// snapshot from a clock ahead of ours is no base for an incremental run.
pub fn newest_not_after(ids: &[String], now: DateTime<Utc>) -> Option<&String> {
    let now = new_id(now);
    ids.iter().rev().find(|id| id.as_str() <= now.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T10:05:03.123456Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(new_id(t), "2026-11-22T10-05-03.123Z");
        assert_eq!(manifest_key("", "x"), "manifests/x.json");
        assert_eq!(manifest_key("nightly", "x"), "nightly/manifests/x.json");
        assert_eq!(object_for("x", "env:/a/k", true), "x/env:/a/k.gz");
        let p = glob::Pattern::new("prod/*").expect("glob");
        assert!(is_state_key("prod/net/terraform.tfstate", Some(&p)));
        assert!(!is_state_key("prod/net/terraform.tfstate.tflock", Some(&p)));
        assert!(!is_state_key("dev/x", Some(&p)));
        assert!(is_state_key("dev/x", None));
    }

    #[test]
    fn gzip_round_trip() {
        let b = b"{\"version\":4}".repeat(100);
        assert_eq!(gunzip(&gzip(&b).expect("gz"), 1300).expect("gunzip"), b);
        // One byte over the bound: refused, whatever the compression ratio.
        let bomb = gzip(&vec![0u8; 4 << 20]).expect("gz");
        assert!(bomb.len() < 8192);
        let e = gunzip(&bomb, (4 << 20) - 1).expect_err("bounded");
        assert!(e.contains("--max-state-size"), "{e}");
        assert!(
            gunzip(b"not gzip", 100)
                .expect_err("bad")
                .contains("not valid gzip")
        );
    }

    #[test]
    fn the_incremental_base_is_never_from_the_future() {
        let now = Utc::now();
        let ids: Vec<String> = [-2, -1, 400]
            .iter()
            .map(|d| new_id(now + chrono::Duration::days(*d)))
            .collect();
        assert_eq!(newest_not_after(&ids, now), Some(&ids[1]));
        assert_eq!(newest_not_after(&ids[2..], now), None);
    }
}
