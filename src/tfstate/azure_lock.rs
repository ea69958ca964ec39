//! The lock of a state of Terraform's azurerm backend, exactly as
//! `internal/backend/remote-state/azure/client.go` takes it: the state blob
//! (created empty when missing), an infinite lease on it whose ID is the
//! lock's ID (`x-ms-proposed-lease-id`), then the lock info, base64 of its
//! JSON with `Path` = `<container>/<blob>`, in the blob's metadata
//! `terraformlockid`. Unlock reads that metadata, matches the ID, clears it
//! under the lease and releases the lease by the ID.
//!
//! A lease outlives the process, so `tfsync lock` keeps it and another
//! process can release it by its ID. A lease whose ID is not the lock's
//! (not taken by Terraform or tfsync) is broken by `unlock` /
//! `force-unlock` only once the metadata's lock ID matched the ID given.

use super::guard::LockStore;
use super::lock::{Attempt, Current, Holder, LockError, LockInfo, acquire_with, check};
use crate::store::StoreError;
use crate::store::azure::AzureStore;
use async_trait::async_trait;
use hyper::Method;
use std::time::Duration;

pub struct LeaseLock<'a> {
    store: &'a AzureStore,
    blob: String,
}

impl<'a> LeaseLock<'a> {
    pub fn new(store: &'a AzureStore, state_key: &str) -> Self {
        LeaseLock {
            store,
            blob: state_key.to_string(),
        }
    }

    fn http(&self, what: &str, status: u16, code: Option<&str>) -> LockError {
        LockError::Store(StoreError::Other {
            location: self.location(),
            message: format!("{what}: HTTP {status} {}", code.unwrap_or("")),
        })
    }

    /// The lock info in the metadata, as a holder.
    async fn holder(&self) -> Result<Holder, LockError> {
        Ok(match self.store.client().read_lock_info(&self.blob).await? {
            Some(json) => match LockInfo::from_json(&json) {
                Ok(info) => Holder::Lock(Box::new(info)),
                Err(reason) => Holder::Unreadable(format!(
                    "the blob is leased and its terraformlockid metadata is not a lock: {reason}"
                )),
            },
            None => Holder::Unreadable(
                "the blob is leased but has no terraformlockid metadata (a lease not taken by Terraform or tfsync)".into(),
            ),
        })
    }

    async fn try_once(&self, info: &LockInfo) -> Result<Attempt, LockError> {
        let c = self.store.client();
        let head = c
            .request(Method::HEAD, Some(&self.blob), &[], &[], Vec::new())
            .await?;
        match head.status {
            200 => {
                if head.header("x-ms-lease-state") == Some("leased") {
                    return Ok(Attempt::Held(self.holder().await?));
                }
            }
            404 => {
                // Terraform creates the state blob empty to lease it.
                let r = c
                    .request(
                        Method::PUT,
                        Some(&self.blob),
                        &[],
                        &[
                            ("x-ms-blob-type", "BlockBlob".into()),
                            ("content-type", "application/json".into()),
                            ("if-none-match", "*".into()),
                        ],
                        Vec::new(),
                    )
                    .await?;
                if !matches!(r.status, 201 | 409 | 412) {
                    return Err(self.http("creating the state blob", r.status, r.error_code()));
                }
            }
            s => return Err(self.http("reading the state blob", s, head.error_code())),
        }
        let r = c
            .lease(
                &self.blob,
                "acquire",
                &[
                    ("x-ms-lease-duration", "-1".into()),
                    ("x-ms-proposed-lease-id", info.id.clone()),
                ],
            )
            .await?;
        match r.status {
            201 => {}
            409 => return Ok(Attempt::Held(self.holder().await?)),
            s => return Err(self.http("acquiring the lease", s, r.error_code())),
        }
        self.store.use_lease(&self.blob, Some(&info.id));
        // Its Path is `<container>/<blob>`, as Terraform writes it.
        let r = c
            .write_lock_info(&self.blob, Some(&info.to_json()), &info.id)
            .await?;
        if r.status != 200 {
            let _ = self.let_go(&info.id).await;
            return Err(self.http("writing the lock info", r.status, r.error_code()));
        }
        Ok(Attempt::Taken(None))
    }

    /// Clear the lock info under the lease `id`, then release the lease; a
    /// lease with another ID (the metadata said `id`) is broken.
    async fn let_go(&self, id: &str) -> Result<(), LockError> {
        let c = self.store.client();
        let r = c.write_lock_info(&self.blob, None, id).await?;
        let mismatch = r.status == 409 || r.status == 412;
        if !(r.status == 200 || mismatch) {
            return Err(self.http("clearing the lock info", r.status, r.error_code()));
        }
        let r = c
            .lease(&self.blob, "release", &[("x-ms-lease-id", id.to_string())])
            .await?;
        match r.status {
            200 => {}
            409 | 412 => {
                let r = c
                    .lease(
                        &self.blob,
                        "break",
                        &[("x-ms-lease-break-period", "0".into())],
                    )
                    .await?;
                if r.status != 202 {
                    return Err(self.http("breaking the lease", r.status, r.error_code()));
                }
            }
            s => return Err(self.http("releasing the lease", s, r.error_code())),
        }
        self.store.use_lease(&self.blob, None);
        Ok(())
    }
}

#[async_trait]
impl LockStore for LeaseLock<'_> {
    /// The lease is on the state blob itself.
    fn location(&self) -> String {
        format!("{} (its lease)", self.store.client().location(&self.blob))
    }

    async fn acquire(&self, info: &LockInfo, wait: Duration) -> Result<Option<String>, LockError> {
        let lock = self.location();
        acquire_with(&lock, wait, || self.try_once(info)).await
    }

    async fn release_own(&self, info: &LockInfo, _tag: Option<&str>) -> Result<(), LockError> {
        // A blob deleted under our lease (`migrate --delete-source`) took
        // the lease with it: nothing is left to release.
        if self.store.lease_of(&self.blob).as_deref() == Some(info.id.as_str()) {
            let head = self
                .store
                .client()
                .request(Method::HEAD, Some(&self.blob), &[], &[], Vec::new())
                .await?;
            if head.status == 404 && head.error_code() != Some("ContainerNotFound") {
                self.store.use_lease(&self.blob, None);
                return Ok(());
            }
        }
        let (found, _) = check(self.read().await?, &self.location(), &info.id, None)?;
        self.let_go(&found.id).await
    }

    async fn release(&self, id: &str, min_age: Option<Duration>) -> Result<LockInfo, LockError> {
        let (info, _) = check(self.read().await?, &self.location(), id, min_age)?;
        self.let_go(id).await?;
        Ok(info)
    }

    /// Locked while the blob is leased (the holder from the metadata).
    async fn read(&self) -> Result<Current, LockError> {
        let head = self
            .store
            .client()
            .request(Method::HEAD, Some(&self.blob), &[], &[], Vec::new())
            .await?;
        match head.status {
            404 => return Ok(Current::Unlocked),
            200 => {}
            s => return Err(self.http("reading the state blob", s, head.error_code())),
        }
        if head.header("x-ms-lease-state") != Some("leased") {
            return Ok(Current::Unlocked);
        }
        Ok(match self.holder().await? {
            Holder::Lock(info) => Current::Locked {
                info: *info,
                etag: None,
            },
            Holder::Unreadable(reason) => Current::Unreadable { reason, etag: None },
        })
    }

    fn adopt(&self, id: &str) {
        self.store.use_lease(&self.blob, Some(id));
    }
}
