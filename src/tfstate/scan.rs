//! Finding locks across a bucket: every `*.tflock` object under a prefix,
//! read and parsed, and, when the store has a DynamoDB lock table, every
//! lock item of the bucket under that prefix beside them. A local
//! backend's locks are its OS-locked state files, an azurerm container's
//! its leased blobs.

use super::dynamo;
use super::keys::{self, LOCK_SUFFIX};
use super::lock::{self, Current};
use crate::error::Error;
use crate::store::{ObjectMeta, ObjectStore};
use std::collections::BTreeMap;
use std::time::Duration;

/// One lock found by [`locks`]: a `.tflock`, its DynamoDB lock item, or both.
pub struct FoundLock {
    pub lock_key: String,
    /// The state key this lock guards (the lock key without `.tflock`).
    pub state_key: String,
    /// What the listing said about the lock object (for a lock held by a
    /// DynamoDB item only: the `.tflock`'s key, nothing else).
    pub meta: ObjectMeta,
    /// What the lock says (it may have gone since the listing): the
    /// `.tflock`, or the item when there is no `.tflock`.
    pub current: Current,
    /// The `.tflock` exists.
    pub has_tflock: bool,
    /// With a lock table: what the state's lock item says (`Unlocked`: no
    /// item). `None` without a table.
    pub item: Option<Current>,
}

/// How the two records of a lock agree, with a lock table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// The `.tflock` and the item, with one ID: a pair lock.
    Both,
    /// A `.tflock` without its item (a writer with `use_lockfile` and no
    /// table, or a pair half released).
    TflockOnly,
    /// An item without its `.tflock` (a writer with `dynamodb_table` and
    /// no `use_lockfile`).
    ItemOnly,
    /// Both, with different IDs (or one unreadable).
    Different,
}

impl Pair {
    /// The JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            Pair::Both => "both",
            Pair::TflockOnly => "tflock_only",
            Pair::ItemOnly => "item_only",
            Pair::Different => "different_ids",
        }
    }

    /// The table cell.
    pub fn cell(self) -> &'static str {
        match self {
            Pair::Both => "both",
            Pair::TflockOnly => ".tflock only",
            Pair::ItemOnly => "item only",
            Pair::Different => "IDs differ",
        }
    }
}

impl FoundLock {
    /// The lock's age from its `Created` field, or `None` when it is unreadable
    /// or gone.
    pub fn age(&self) -> Option<Duration> {
        match &self.current {
            Current::Locked { info, .. } => Some(info.age()),
            _ => None,
        }
    }

    /// With a lock table, how the `.tflock` and the item agree.
    pub fn pair(&self) -> Option<Pair> {
        let item = self.item.as_ref()?;
        let id = |c: &Current| match c {
            Current::Locked { info, .. } => Some(info.id.clone()),
            _ => None,
        };
        Some(match (self.has_tflock, matches!(item, Current::Unlocked)) {
            (true, true) => Pair::TflockOnly,
            (false, _) => Pair::ItemOnly,
            (true, false) => match (id(&self.current), id(item)) {
                (Some(a), Some(b)) if a == b => Pair::Both,
                _ => Pair::Different,
            },
        })
    }
}

/// Every lock object under `prefix` (all pages), sorted by key, each read
/// once, and with a lock table every lock item of the bucket under `prefix`
/// (one Scan, all pages), matched to its `.tflock` by state key. Locks
/// released between the listing and the read are dropped.
pub async fn locks(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<FoundLock>, Error> {
    if store.as_local().is_some() {
        return local_locks(store, prefix).await;
    }
    if let Some(azure) = store.as_azure() {
        return azure_locks(store, azure, prefix).await;
    }
    if store.as_gcs().is_some() {
        return gcs_locks(store, prefix).await;
    }
    let mut items: BTreeMap<String, dynamo::FoundItem> = match store.lock_table() {
        Some(t) => dynamo::scan(t, store.bucket(), prefix)
            .await?
            .locks
            .into_iter()
            .map(|i| (i.state_key.clone(), i))
            .collect(),
        None => BTreeMap::new(),
    };
    let with_table = store.lock_table().is_some();
    let mut out = Vec::new();
    for meta in store.list(prefix).await? {
        let Some(state_key) = meta.key.strip_suffix(LOCK_SUFFIX) else {
            continue;
        };
        if state_key.is_empty() {
            continue;
        }
        let state_key = state_key.to_string();
        let current = lock::read(store, &state_key).await?;
        let item = with_table.then(|| {
            items
                .remove(&state_key)
                .map_or(Current::Unlocked, |i| i.current)
        });
        let has_tflock = !matches!(current, Current::Unlocked);
        let current = match &item {
            _ if has_tflock => current,
            // The .tflock went since the listing: the item, if any, holds it.
            Some(i) if !matches!(i, Current::Unlocked) => i.clone(),
            _ => continue,
        };
        out.push(FoundLock {
            lock_key: meta.key.clone(),
            state_key,
            meta,
            current,
            has_tflock,
            item,
        });
    }
    for (state_key, i) in items {
        let lock_key = keys::lock_key(&state_key);
        out.push(FoundLock {
            meta: ObjectMeta {
                key: lock_key.clone(),
                size: 0,
                etag: None,
                last_modified: None,
            },
            lock_key,
            state_key,
            current: i.current.clone(),
            has_tflock: false,
            item: Some(i.current),
        });
    }
    out.sort_by(|a, b| a.lock_key.cmp(&b.lock_key));
    Ok(out)
}

/// The gcs backend's locks: every `<prefix>/<W>.tflock` under `prefix`,
/// read through its lock (ID = the lock object's generation), guarding
/// `<prefix>/<W>.tfstate`.
async fn gcs_locks(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<FoundLock>, Error> {
    let mut out = Vec::new();
    for meta in store.list(prefix).await? {
        let Some(state_key) = super::gcs_lock::state_key_of_lock(&meta.key) else {
            continue;
        };
        let (_, current) = super::guard::LockSet::new(store, &state_key)
            .holder()
            .await?;
        if matches!(current, Current::Unlocked) {
            continue;
        }
        out.push(FoundLock {
            lock_key: meta.key.clone(),
            state_key,
            meta,
            current,
            has_tflock: true,
            item: None,
        });
    }
    out.sort_by(|a, b| a.lock_key.cmp(&b.lock_key));
    Ok(out)
}

/// The azurerm backend's locks: every blob under `prefix` with a lease
/// (empty ones too: Terraform's lock creates the state blob empty), with
/// the holder from its `terraformlockid` metadata (`tfstate::azure_lock`).
/// The lock's key is the blob's: the lease is on the state itself.
async fn azure_locks(
    store: &dyn ObjectStore,
    azure: &crate::store::azure::AzureStore,
    prefix: &str,
) -> Result<Vec<FoundLock>, Error> {
    let mut out = Vec::new();
    for blob in azure.list_blobs(prefix).await? {
        if blob.lease_state != "leased" {
            continue;
        }
        let key = blob.meta.key.clone();
        let (_, current) = super::guard::LockSet::new(store, &key).holder().await?;
        // Released since the listing.
        if matches!(current, Current::Unlocked) {
            continue;
        }
        out.push(FoundLock {
            lock_key: key.clone(),
            state_key: key,
            meta: blob.meta,
            current,
            has_tflock: true,
            item: None,
        });
    }
    Ok(out)
}

/// The local backend's locks: every state of its layout under `prefix`
/// whose file a process holds locked (`tfstate::local_lock`), with the
/// holder from its lock info file.
async fn local_locks(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<FoundLock>, Error> {
    let mut out = Vec::new();
    for state in store.list(prefix).await? {
        let (_, current) = super::guard::LockSet::new(store, &state.key)
            .holder()
            .await?;
        if matches!(current, Current::Unlocked) {
            continue;
        }
        let lock_key = super::local_lock::info_key(&state.key);
        out.push(FoundLock {
            meta: ObjectMeta {
                key: lock_key.clone(),
                size: 0,
                etag: None,
                last_modified: None,
            },
            lock_key,
            state_key: state.key,
            current,
            has_tflock: true,
            item: None,
        });
    }
    out.sort_by(|a, b| a.lock_key.cmp(&b.lock_key));
    Ok(out)
}
