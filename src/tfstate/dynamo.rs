//! The DynamoDB side of Terraform's s3 backend (`dynamodb_table`), exactly
//! as hashicorp/terraform and opentofu/opentofu
//! `internal/backend/remote-state/s3/client.go` use it:
//!
//! - a **lock item** `LockID = "<bucket>/<state key>"`, `Info = <the
//!   LockInfo JSON>`, created with `attribute_not_exists(LockID)` after the
//!   `.tflock` ([`ItemLock`], the second [`LockStore`] of a lock set);
//!   released after reading it and comparing the ID, with a delete
//!   conditional on its exact `Info` (as OpenTofu does);
//! - a **digest item** `LockID = "<bucket>/<state key>-md5"`, `Digest = <hex
//!   MD5 of the state's bytes>`, stored after every state write (the
//!   [`AfterWrite`] of the state write), compared by every Terraform read
//!   (which fails after 10 s of mismatch; a missing digest only warns).
//!
//! Nothing here prints.

use super::guard::LockStore;
use super::lock::{Attempt, Current, LockError, LockInfo, acquire_with, check};
use super::write::AfterWrite;
use crate::error::Error;
use crate::store::dynamo::{Item, LockTable};
use crate::store::probe::{self, Check, Verdict};
use crate::store::{ObjectStore, Payload, StoreError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// The suffix of a state's digest item.
pub const DIGEST_SUFFIX: &str = "-md5";
/// The attribute of a lock item holding the LockInfo JSON.
pub const INFO: &str = "Info";
/// The attribute of a digest item holding the hex MD5.
pub const DIGEST: &str = "Digest";

/// The LockID of the lock item of `state_key` in `bucket`.
pub fn lock_id(bucket: &str, state_key: &str) -> String {
    format!("{bucket}/{state_key}")
}

/// The LockID of the digest item of `state_key` in `bucket`.
pub fn digest_id(bucket: &str, state_key: &str) -> String {
    format!("{bucket}/{state_key}{DIGEST_SUFFIX}")
}

/// What a lock item says.
fn item_current(item: Option<Item>) -> Current {
    let Some(item) = item else {
        return Current::Unlocked;
    };
    match item.get(INFO) {
        None => Current::Unreadable {
            reason: "the item has no Info attribute (string)".into(),
            etag: None,
        },
        Some(raw) => match LockInfo::from_json(raw.as_bytes()) {
            Ok(info) => Current::Locked {
                info,
                etag: Some(raw.clone()),
            },
            Err(reason) => Current::Unreadable {
                reason,
                etag: Some(raw.clone()),
            },
        },
    }
}

/// The lock item of one state as a [`LockStore`]: taken after the
/// `.tflock`, released before it.
pub struct ItemLock<'a> {
    table: &'a LockTable,
    lock_id: String,
}

impl<'a> ItemLock<'a> {
    pub fn new(table: &'a LockTable, bucket: &str, state_key: &str) -> Self {
        ItemLock {
            table,
            lock_id: lock_id(bucket, state_key),
        }
    }

    /// Delete the item if its Info is still `raw`.
    async fn delete_if_info(&self, raw: &str) -> Result<(), LockError> {
        match self.table.delete_if(&self.lock_id, INFO, raw).await {
            Ok(()) => Ok(()),
            Err(StoreError::Precondition { .. }) => match self.read().await? {
                Current::Unlocked => Err(LockError::NotLocked {
                    lock: self.location(),
                }),
                _ => Err(LockError::Changed {
                    lock: self.location(),
                }),
            },
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl LockStore for ItemLock<'_> {
    fn location(&self) -> String {
        format!(
            "the DynamoDB lock item {}",
            self.table.location(&self.lock_id)
        )
    }

    /// PutItem with `attribute_not_exists(LockID)`; when refused, GetItem:
    /// our own ID is our own item (the response to our PutItem was lost).
    /// The tag is the Info written.
    async fn acquire(&self, info: &LockInfo, wait: Duration) -> Result<Option<String>, LockError> {
        let json = String::from_utf8_lossy(&info.to_json()).into_owned();
        let lock = self.location();
        let json = &json;
        acquire_with(&lock, wait, move || async move {
            match self.table.put_new(&self.lock_id, &[(INFO, json)]).await {
                Ok(()) => Ok(Attempt::Taken(Some(json.clone()))),
                Err(StoreError::AlreadyExists { .. }) => Ok(Attempt::refused(
                    info,
                    item_current(self.table.get(&self.lock_id).await?),
                )),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn release_own(&self, info: &LockInfo, tag: Option<&str>) -> Result<(), LockError> {
        let json = match tag {
            Some(t) => t.to_string(),
            None => String::from_utf8_lossy(&info.to_json()).into_owned(),
        };
        self.delete_if_info(&json).await
    }

    async fn release(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        let (info, raw) = check(self.read().await?, &self.location(), id, min_age)?;
        match raw {
            Some(raw) => self.delete_if_info(&raw).await.map(|()| info),
            None => Err(LockError::Changed {
                lock: self.location(),
            }),
        }
    }

    async fn read(&self) -> Result<Current, LockError> {
        Ok(item_current(self.table.get(&self.lock_id).await?))
    }
}

/// A state's stored digest, as Terraform would judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// No digest item: Terraform only warns.
    Missing,
    /// A digest item whose Digest is not a hex MD5: Terraform warns
    /// ("invalid md5") and reads on.
    Invalid(String),
    /// A hex MD5 (lower case).
    Md5(String),
}

impl Stored {
    /// The stored text, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Stored::Missing => None,
            Stored::Invalid(s) | Stored::Md5(s) => Some(s),
        }
    }
}

fn stored(item: Option<&Item>) -> Stored {
    match item.map(|i| i.get(DIGEST).map(String::as_str).unwrap_or("")) {
        None => Stored::Missing,
        Some(d) if d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Stored::Md5(d.to_ascii_lowercase())
        }
        Some(d) => Stored::Invalid(d.to_string()),
    }
}

/// The stored digest of a state against the MD5 of its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCheck {
    pub stored: Stored,
    /// The hex MD5 of the object's bytes, `None` when there is no state.
    pub actual: Option<String>,
}

impl DigestCheck {
    /// Would Terraform read this state? `Some(false)` when a valid stored
    /// digest differs from the object (or there is no object): Terraform
    /// then fails every read after 10 s. `None` when there is no valid
    /// digest to compare (Terraform warns and reads on).
    pub fn matches(&self) -> Option<bool> {
        match &self.stored {
            Stored::Md5(d) => Some(self.actual.as_deref() == Some(d.as_str())),
            Stored::Missing | Stored::Invalid(_) => None,
        }
    }

    /// `{stored, actual, matches}` for `--output json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "stored": self.stored.text(),
            "actual": self.actual,
            "matches": self.matches(),
        })
    }
}

/// The digest stored for `state_key` (one consistent GetItem).
pub async fn read_digest(
    table: &LockTable,
    bucket: &str,
    state_key: &str,
) -> Result<Stored, StoreError> {
    Ok(stored(
        table.get(&digest_id(bucket, state_key)).await?.as_ref(),
    ))
}

/// Store `md5` as the digest of `state_key` (PutItem, as Terraform does).
pub async fn write_digest(
    table: &LockTable,
    bucket: &str,
    state_key: &str,
    md5: &str,
) -> Result<(), StoreError> {
    table
        .put(&digest_id(bucket, state_key), &[(DIGEST, md5)])
        .await
}

/// Remove the digest of a state that was deleted (as Terraform's Delete
/// does: a digest left behind makes every later read of that key fail).
pub async fn delete_digest(
    table: &LockTable,
    bucket: &str,
    state_key: &str,
) -> Result<(), StoreError> {
    table.delete(&digest_id(bucket, state_key)).await
}

/// Delete the state at `key` (with the ETag it was copied with, when
/// given) and, when the store has a lock table, its digest item. The caller
/// holds the state's lock.
pub async fn delete_state(
    store: &dyn ObjectStore,
    key: &str,
    if_match: Option<&str>,
) -> Result<(), Error> {
    store.delete(key, if_match).await?;
    if let Some(table) = store.lock_table() {
        delete_digest(table, store.bucket(), key)
            .await
            .map_err(|e| {
                Error::Incomplete(format!(
                    "{} was deleted, but its digest item {} could not be removed ({e}): Terraform will refuse to read that key until it is. Remove it with `tfsync digest --fix` on that key",
                    store.location(key),
                    table.location(&digest_id(store.bucket(), key))
                ))
            })?;
    }
    Ok(())
}

/// The digest of every state write, when the store has a lock table: the
/// MD5 of exactly the bytes written.
#[async_trait]
impl AfterWrite for LockTable {
    async fn state_written(
        &self,
        store: &dyn ObjectStore,
        key: &str,
        body: &Payload,
        _etag: Option<&str>,
    ) -> Result<(), Error> {
        let md5 = body.md5_hex();
        write_digest(self, store.bucket(), key, &md5)
            .await
            .map_err(|e| {
                Error::Incomplete(format!(
                    "{} was written, but its digest could not be stored in {} ({e}): Terraform refuses to read the state until the digest is {md5}. Run `tfsync digest --fix` to store it",
                    store.location(key),
                    self.location(&digest_id(store.bucket(), key))
                ))
            })
    }
}

/// One lock item found by [`scan`].
pub struct FoundItem {
    pub lock_id: String,
    /// The state key it guards (the LockID without `<bucket>/`).
    pub state_key: String,
    pub current: Current,
}

impl FoundItem {
    pub fn age(&self) -> Option<Duration> {
        match &self.current {
            Current::Locked { info, .. } => Some(info.age()),
            _ => None,
        }
    }
}

/// What the table holds for the states under a prefix of one bucket.
pub struct TableScan {
    /// Lock items, sorted by state key.
    pub locks: Vec<FoundItem>,
    /// Digests by state key.
    pub digests: BTreeMap<String, Stored>,
}

/// Every item of `bucket` whose state key starts with `prefix`: one Scan
/// filtered on the LockID prefix `<bucket>/<prefix>`, all pages. An item
/// with a `Digest` and no `Info` whose LockID ends in `-md5` is a digest;
/// every other item is a lock item.
pub async fn scan(table: &LockTable, bucket: &str, prefix: &str) -> Result<TableScan, Error> {
    let head = format!("{bucket}/");
    let mut out = TableScan {
        locks: Vec::new(),
        digests: BTreeMap::new(),
    };
    for (id, item) in table.scan_prefix(&format!("{head}{prefix}")).await? {
        let Some(key) = id.strip_prefix(&head) else {
            continue;
        };
        if !item.contains_key(INFO)
            && item.contains_key(DIGEST)
            && let Some(state_key) = key.strip_suffix(DIGEST_SUFFIX)
        {
            out.digests
                .insert(state_key.to_string(), stored(Some(&item)));
            continue;
        }
        if key.is_empty() {
            continue;
        }
        out.locks.push(FoundItem {
            lock_id: id.clone(),
            state_key: key.to_string(),
            current: item_current(Some(item)),
        });
    }
    Ok(out)
}

/// `tfsync doctor` with a lock table: can a lock item be created with
/// `attribute_not_exists(LockID)`, and is it refused the second time (a
/// scratch item `<bucket>/<prefix>dynamodb-probe`, removed afterwards)? Is
/// a delete conditional on Info honoured? Are the bucket's digests those of
/// its states? Is the bucket ready to drop DynamoDB (no lock item held)?
pub async fn doctor_checks(store: &dyn ObjectStore, table: &LockTable, prefix: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let id = format!("{}/{prefix}dynamodb-probe", store.bucket());
    let info = r#"{"ID":"tfsync-doctor"}"#;
    let created = table.put_new(&id, &[(INFO, info)]).await;
    let create_title =
        "DynamoDB lock item: PutItem if attribute_not_exists(LockID), refused the second time";
    match created {
        Err(e) => checks.push(
            probe::check(
                "dynamodb_create_only",
                create_title,
                Verdict::Fail,
                format!("the first conditional PutItem failed: {e}"),
            )
            .fix(format!(
                "grant dynamodb:PutItem, GetItem, DeleteItem (and Scan for `tfsync locks`) on {} and check that its hash key is LockID (string)",
                table.describe()
            )),
        ),
        Ok(()) => {
            checks.push(match table.put_new(&id, &[(INFO, info)]).await {
                Err(StoreError::AlreadyExists { .. }) => probe::check(
                    "dynamodb_create_only",
                    create_title,
                    Verdict::Pass,
                    "created once, refused the second time (ConditionalCheckFailedException)",
                ),
                Ok(()) => probe::check(
                    "dynamodb_create_only",
                    create_title,
                    Verdict::Fail,
                    "the second conditional PutItem succeeded: every writer would get the lock item",
                )
                .fix("use a DynamoDB that honours condition expressions"),
                Err(e) => probe::check(
                    "dynamodb_create_only",
                    create_title,
                    Verdict::Fail,
                    format!("the second conditional PutItem failed otherwise: {e}"),
                ),
            });
            let title = "DynamoDB lock item: DeleteItem if Info = <its Info> honoured";
            let wrong = table.delete_if(&id, INFO, "{}").await;
            let right = table.delete_if(&id, INFO, info).await;
            checks.push(match (wrong, right) {
                (Err(StoreError::Precondition { .. }), Ok(())) => probe::check(
                    "dynamodb_conditional_delete",
                    title,
                    Verdict::Pass,
                    "refused with another Info, done with its own",
                ),
                (Ok(()), _) => probe::check(
                    "dynamodb_conditional_delete",
                    title,
                    Verdict::Warn,
                    "deleted despite another Info: a release compares the ID first, but a lock re-taken in between could be removed",
                ),
                (_, Err(e)) | (Err(e), _) => probe::check(
                    "dynamodb_conditional_delete",
                    title,
                    Verdict::Warn,
                    format!("failed: {e}"),
                ),
            });
        }
    }
    let _ = table.delete(&id).await;
    checks.push(match table.get(&id).await {
        Ok(None) => probe::check(
            "dynamodb_cleanup",
            "DynamoDB scratch item removed",
            Verdict::Pass,
            "nothing left",
        ),
        Ok(Some(_)) => probe::check(
            "dynamodb_cleanup",
            "DynamoDB scratch item removed",
            Verdict::Warn,
            format!("{} is still there", table.location(&id)),
        ),
        Err(e) => probe::check(
            "dynamodb_cleanup",
            "DynamoDB scratch item removed",
            Verdict::Warn,
            format!("cannot tell: {e}"),
        ),
    });

    let found = match scan(table, store.bucket(), "").await {
        Ok(f) => f,
        Err(e) => {
            let detail = format!("cannot Scan {}: {e}", table.describe());
            for (id, title) in [
                ("dynamodb_digests", "digests match the states"),
                (
                    "dynamodb_drop_ready",
                    "ready to drop DynamoDB (no lock item held)",
                ),
            ] {
                checks.push(
                    probe::check(id, title, Verdict::Warn, detail.clone())
                        .fix("grant dynamodb:Scan on the table"),
                );
            }
            return checks;
        }
    };
    let mut stale = Vec::new();
    for (key, stored) in &found.digests {
        let actual = match super::read::get_opt(store, key).await {
            Ok(v) => v.map(|v| v.md5()),
            Err(e) => {
                stale.push(format!("{key} (unreadable: {e})"));
                continue;
            }
        };
        let c = DigestCheck {
            stored: stored.clone(),
            actual,
        };
        if c.matches() != Some(true) {
            stale.push(key.clone());
        }
    }
    checks.push(if stale.is_empty() {
        probe::check(
            "dynamodb_digests",
            "digests match the states",
            Verdict::Pass,
            format!(
                "{} digest(s), each the MD5 of its state",
                found.digests.len()
            ),
        )
    } else {
        probe::check(
            "dynamodb_digests",
            "digests match the states",
            Verdict::Warn,
            format!(
                "{} of {} digest(s) stale (Terraform refuses to read those states): {}",
                stale.len(),
                found.digests.len(),
                stale.join(", ")
            ),
        )
        .fix("check those states, then run `tfsync digest --all --fix`")
    });
    let held: Vec<&str> = found
        .locks
        .iter()
        .map(|l| l.state_key.as_str())
        .filter(|k| !k.starts_with(prefix))
        .collect();
    let title = "ready to drop DynamoDB (no lock item held)";
    checks.push(if held.is_empty() {
        probe::check(
            "dynamodb_drop_ready",
            title,
            Verdict::Pass,
            "no lock item is held under this bucket: once every writer has use_lockfile = true, remove dynamodb_table (the .tflock alone excludes writers; digests are then ignored)",
        )
    } else {
        probe::check(
            "dynamodb_drop_ready",
            title,
            Verdict::Warn,
            format!(
                "{} lock item(s) held, for: {}",
                held.len(),
                held.join(", ")
            ),
        )
        .fix("keep dynamodb_table until they are released (`tfsync locks` shows who holds them): writers without use_lockfile take only the item")
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::md5_hex;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ids_are_terraforms() {
        assert_eq!(lock_id("b", "env:/w/k"), "b/env:/w/k");
        assert_eq!(digest_id("b", "k.tfstate"), "b/k.tfstate-md5");
    }

    #[test]
    fn an_item_is_a_lock_or_unreadable() {
        let info = LockInfo::new("plan", "", "b", "k");
        let raw = String::from_utf8(info.to_json()).expect("utf8");
        match item_current(Some(item(&[("LockID", "b/k"), ("Info", &raw)]))) {
            Current::Locked { info: got, etag } => {
                assert_eq!(got, info);
                assert_eq!(
                    etag.as_deref(),
                    Some(raw.as_str()),
                    "the raw Info is the tag"
                );
            }
            _ => panic!("not locked"),
        }
        assert!(matches!(item_current(None), Current::Unlocked));
        assert!(matches!(
            item_current(Some(item(&[("LockID", "b/k")]))),
            Current::Unreadable { .. }
        ));
        assert!(matches!(
            item_current(Some(item(&[("LockID", "b/k"), ("Info", "{")]))),
            Current::Unreadable { .. }
        ));
    }

    #[test]
    fn digests_are_judged_as_terraform_does() {
        let md5 = md5_hex(b"state");
        let check = |s: Stored, actual: Option<&str>| {
            DigestCheck {
                stored: s,
                actual: actual.map(str::to_string),
            }
            .matches()
        };
        assert_eq!(check(Stored::Md5(md5.clone()), Some(&md5)), Some(true));
        assert_eq!(
            check(Stored::Md5(md5.clone()), Some(&md5_hex(b"x"))),
            Some(false)
        );
        // A digest left behind by a deleted state: Terraform fails too.
        assert_eq!(check(Stored::Md5(md5.clone()), None), Some(false));
        assert_eq!(check(Stored::Missing, Some(&md5)), None);
        assert_eq!(
            stored(Some(&item(&[("Digest", &md5.to_uppercase())]))),
            Stored::Md5(md5.clone())
        );
        assert_eq!(
            stored(Some(&item(&[("Digest", "abc")]))),
            Stored::Invalid("abc".into())
        );
        assert_eq!(stored(Some(&item(&[]))), Stored::Invalid(String::new()));
        assert_eq!(stored(None), Stored::Missing);
    }
}
