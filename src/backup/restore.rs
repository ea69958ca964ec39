//! `restore --from SNAPSHOT`: states from a snapshot back into a store, each
//! checked against its manifest entry (MD5) before anything is written,
//! then written under its own lock with the push rules
//! ([`StateWrite`]).

use super::snapshot::{self, Entry};
use crate::error::Error;
use crate::location::join;
use crate::store::{ObjectStore, Payload, StoreError, md5_hex};
use crate::tfstate::guard::{self, LockSpec, Warn};
use crate::tfstate::write::{Purpose, Rules, StateWrite};
use serde::Serialize;
use std::time::Duration;

/// The lock's Operation while a state is restored.
pub const OPERATION: &str = "restore from backup";

/// The snapshot to restore from.
pub struct Source<'a> {
    pub store: &'a dyn ObjectStore,
    /// The backup root in `store`.
    pub root: &'a str,
    /// The snapshot; the newest complete one when `None`.
    pub snapshot: Option<&'a str>,
    /// The backup location, for messages.
    pub display: &'a str,
    /// The location as the user wrote it (for the `backup verify` hint).
    pub given: &'a str,
    /// `--max-state-size`: the most a gzipped object may decompress to.
    pub max_size: u64,
}

/// Which states of the snapshot.
pub enum Select<'a> {
    All,
    /// The state at this key (at the source of the backup).
    Key(&'a str),
}

/// Where, and how, the states are written.
pub struct Target<'a> {
    pub store: &'a dyn ObjectStore,
    /// Skip the push rules.
    pub force: bool,
    pub lock_timeout: Duration,
    pub warn: Warn<'a>,
}

/// One state restored (`--output json` prints these as they are).
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub key: String,
    pub location: String,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub size: u64,
    pub etag: Option<String>,
    pub previous_etag: Option<String>,
    pub unchanged: bool,
}

/// What a restore did.
#[derive(Debug)]
pub struct Outcome {
    pub snapshot: String,
    pub restored: Vec<Restored>,
}

/// Restore the `select`ed states of `from` into `to`, one after the other;
/// `done` hears of each state as soon as it is written. Stops at the first
/// failure (states restored before it stay restored).
pub async fn restore(
    from: &Source<'_>,
    select: Select<'_>,
    to: &Target<'_>,
    done: &dyn Fn(&str, &Restored),
) -> Result<Outcome, Error> {
    let store = from.store;
    let id = snapshot::chosen(store, from.root, from.snapshot, from.display).await?;
    let manifest = snapshot::read_manifest(store, from.root, &id).await?;
    snapshot::check_entries(store, from.root, &manifest)?;
    let entries: Vec<&Entry> = match select {
        Select::All => manifest.states.iter().collect(),
        Select::Key(key) => {
            let found: Vec<&Entry> = manifest.states.iter().filter(|e| e.key == key).collect();
            if found.is_empty() {
                return Err(Error::Store(StoreError::NotFound {
                    location: format!(
                        "{key} in snapshot {id} of {} (it holds {} states; use --all for every one, or check --key and --workspace)",
                        from.display,
                        manifest.states.len()
                    ),
                }));
            }
            found
        }
    };

    let mut restored = Vec::new();
    for e in entries {
        let bytes = read_entry(from, e).await?;
        // Restoring a snapshot is a push of its bytes (push's rules and words).
        let write = StateWrite::new(to.store, &e.key, Rules::push(to.force), Purpose::Push);
        let spec = LockSpec::new(to.store, &e.key, OPERATION);
        let written = guard::under_lock(
            spec,
            to.lock_timeout,
            to.warn,
            write.write_bytes(Payload::new(bytes)),
        )
        .await?;
        let r = Restored {
            key: e.key.clone(),
            location: to.store.location(&e.key),
            serial: e.serial,
            lineage: e.lineage.clone(),
            size: e.size,
            etag: written.etag.clone(),
            previous_etag: written.previous_etag.clone(),
            unchanged: written.unchanged(),
        };
        done(&id, &r);
        restored.push(r);
    }
    Ok(Outcome {
        snapshot: id,
        restored,
    })
}

/// The bytes of `e`, uncompressed, checked against the manifest's MD5.
async fn read_entry(from: &Source<'_>, e: &Entry) -> Result<Vec<u8>, Error> {
    let store = from.store;
    let object = join(from.root, &e.object);
    let got = store.get(&object).await?;
    let bytes = if e.gzip {
        snapshot::gunzip(&got.bytes, from.max_size).map_err(|message| StoreError::Other {
            location: store.location(&object),
            message,
        })?
    } else {
        got.bytes
    };
    if md5_hex(&bytes) != e.md5 {
        return Err(Error::Store(StoreError::Other {
            location: store.location(&object),
            message: format!(
                "its MD5 {} is not the manifest's {}: the backup is damaged; nothing was written for {}. Run `tfsync backup verify --from {}`",
                md5_hex(&bytes),
                e.md5,
                e.key,
                from.given
            ),
        }));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::copy::tests::{STATES, dirs, run, st};
    use crate::store::PutMode;
    use std::sync::Mutex;

    #[tokio::test]
    async fn restore_one_state_all_states_and_refuse_a_damaged_one() {
        let d = dirs().await;
        let snap = run(&d, true, None).await;
        let from = Source {
            store: &d.dst,
            root: "nightly",
            snapshot: None,
            display: "file:///b/nightly",
            given: "file:///b/nightly",
            max_size: crate::store::fs::DEFAULT_MAX_OBJECT_SIZE,
        };
        // The states move on, then are lost.
        d.src
            .put(STATES[0], st("lin-0", 2), PutMode::Overwrite)
            .await
            .expect("older");
        d.src.delete(STATES[1], None).await.expect("lost");
        let warn = |w: String| panic!("unexpected warning {w}");
        let to = Target {
            store: &d.src,
            force: false,
            lock_timeout: Duration::ZERO,
            warn: &warn,
        };
        let heard = Mutex::new(Vec::new());
        let done = |id: &str, r: &Restored| {
            heard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id.to_string(), r.key.clone()))
        };

        let one = restore(&from, Select::Key(STATES[1]), &to, &done)
            .await
            .expect("one");
        assert_eq!(one.snapshot, snap.snapshot);
        assert_eq!(one.restored.len(), 1);
        assert_eq!(
            d.src.get(STATES[1]).await.expect("back").bytes,
            st("lin-1", 3)
        );
        assert!(
            d.src
                .head(&crate::tfstate::keys::lock_key(STATES[1]))
                .await
                .is_err(),
            "lock released"
        );

        let all = restore(&from, Select::All, &to, &done).await.expect("all");
        let unchanged: Vec<bool> = all.restored.iter().map(|r| r.unchanged).collect();
        // app: unchanged; env:/prod: restored just before; net: serial 2 -> 3.
        assert_eq!(unchanged, [true, true, false]);
        assert_eq!(
            d.src.get(STATES[0]).await.expect("net").bytes,
            st("lin-0", 3)
        );
        assert_eq!(heard.lock().expect("heard").len(), 4);

        assert!(matches!(
            restore(&from, Select::Key("absent"), &to, &done).await,
            Err(Error::Store(StoreError::NotFound { .. }))
        ));

        // A damaged object: nothing written for it.
        let m = snapshot::read_manifest(&d.dst, "nightly", &snap.snapshot)
            .await
            .expect("manifest");
        let e = m.states.iter().find(|e| e.key == STATES[0]).expect("entry");
        d.dst
            .put(
                &join("nightly", &e.object),
                snapshot::gzip(&st("lin-0", 99)).expect("gz"),
                PutMode::Overwrite,
            )
            .await
            .expect("damage");
        d.src.delete(STATES[0], None).await.expect("lost");
        let err = restore(&from, Select::Key(STATES[0]), &to, &done)
            .await
            .expect_err("damaged");
        assert!(
            err.to_string()
                .contains("backup verify --from file:///b/nightly"),
            "{err}"
        );
        assert!(d.src.head(STATES[0]).await.is_err(), "nothing written");
    }

    #[tokio::test]
    async fn a_manifest_with_unsafe_keys_or_objects_is_refused() {
        let d = dirs().await;
        let snap = run(&d, false, None).await;
        let good = snapshot::read_manifest(&d.dst, "nightly", &snap.snapshot)
            .await
            .expect("manifest");
        let e0 = good.states[0].clone();
        let warn = |_: String| {};
        let to = Target {
            store: &d.src,
            force: true,
            lock_timeout: Duration::ZERO,
            warn: &warn,
        };
        let lock = crate::tfstate::keys::lock_key(&e0.key);
        let cases: Vec<(String, String)> = vec![
            (lock.clone(), e0.object.clone()),
            ("a//b".into(), e0.object.clone()),
            ("../x".into(), e0.object.clone()),
            ("a\x1b[2Jb".into(), e0.object.clone()),
            (e0.key.clone(), "manifests/evil.json".into()),
            (e0.key.clone(), format!("../{}", e0.object)),
            (e0.key.clone(), format!("{}/{}", snap.snapshot, STATES[1])),
        ];
        for (i, (key, object)) in cases.into_iter().enumerate() {
            let id = format!("9999-evil-{i}");
            let mut m = good.clone();
            m.id = id.clone();
            m.states = vec![good.states[1].clone(), e0.clone()];
            m.states[1].key = key.clone();
            m.states[1].object = object.clone();
            snapshot::write_manifest(&d.dst, "nightly", &m)
                .await
                .expect("write");
            // Every state is gone: a refused restore must write none of them.
            for k in STATES {
                let _ = d.src.delete(k, None).await;
            }
            let from = Source {
                store: &d.dst,
                root: "nightly",
                snapshot: Some(&id),
                display: "file:///b/nightly",
                given: "file:///b/nightly",
                max_size: crate::store::fs::DEFAULT_MAX_OBJECT_SIZE,
            };
            let err = restore(&from, Select::All, &to, &|_, _| {})
                .await
                .expect_err(&format!("{key:?} -> {object:?} accepted"));
            let msg = err.to_string();
            assert!(
                msg.contains(&id) && msg.contains(&format!("{key:?}")),
                "names the snapshot and the key: {msg}"
            );
            for k in STATES {
                assert!(d.src.head(k).await.is_err(), "{k} written for {key:?}");
            }
            assert!(d.src.head(&lock).await.is_err(), "lock object written");
        }
    }

    #[tokio::test]
    async fn the_push_rules_apply_unless_forced() {
        let d = dirs().await;
        run(&d, false, None).await;
        let from = Source {
            store: &d.dst,
            root: "nightly",
            snapshot: None,
            display: "d",
            given: "d",
            max_size: crate::store::fs::DEFAULT_MAX_OBJECT_SIZE,
        };
        d.src
            .put(STATES[2], st("lin-2", 8), PutMode::Overwrite)
            .await
            .expect("newer");
        let warn = |_: String| {};
        let mut to = Target {
            store: &d.src,
            force: false,
            lock_timeout: Duration::ZERO,
            warn: &warn,
        };
        let err = restore(&from, Select::Key(STATES[2]), &to, &|_, _| {})
            .await
            .expect_err("older serial");
        assert!(
            matches!(&err, Error::StateConflict { reason, .. } if reason.contains("serial 3 over newer state with serial 8")),
            "{err}"
        );
        to.force = true;
        restore(&from, Select::Key(STATES[2]), &to, &|_, _| {})
            .await
            .expect("forced");
        assert_eq!(
            d.src.get(STATES[2]).await.expect("get").bytes,
            st("lin-2", 3)
        );
    }
}
