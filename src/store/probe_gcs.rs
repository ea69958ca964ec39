//! `tfsync doctor` on Google Cloud Storage (or a server that speaks its JSON
//! API): what the server really does with the generation preconditions the
//! gcs lock and the state writes rely on, measured with scratch objects
//! under a reserved prefix, removed afterwards.
//!
//! `Fail` is what makes locking unsafe: a second create of an existing lock
//! (`ifGenerationMatch=0`) accepted, so two writers could both get it.

use super::gcs::GcsStore;
use super::probe::{Check, Report, Requests, Verdict, check, permissions};
use super::{ObjectStore, PutMode, StoreError};

/// Every check on `store` under `prefix` (ending with `/`, unique to this
/// run), then everything written there is removed.
pub async fn run(store: &GcsStore, prefix: &str) -> Report {
    let mut checks = Vec::new();
    let can_write = permissions(store, prefix, &GCS_REQUESTS, &mut checks).await;
    let versioning = store.versioning().await;
    checks.push(match &versioning {
        Ok(false) => check("versioning", "bucket versioning", Verdict::Pass, "off"),
        Ok(true) => check(
            "versioning",
            "bucket versioning",
            Verdict::Pass,
            "enabled (generation preconditions apply to the live object; noncurrent versions stay)",
        ),
        Err(e) => check(
            "versioning",
            "bucket versioning",
            Verdict::Warn,
            format!("could not be read: {e}"),
        ),
    });
    if can_write {
        checks.push(create_only(store, &format!("{prefix}create-only.tflock")).await);
        checks.push(create_after_delete(store, &format!("{prefix}recreate.tflock")).await);
        checks.push(stale_update(store, &format!("{prefix}update")).await);
        checks.push(stale_delete(store, &format!("{prefix}delete")).await);
    } else {
        for (id, title) in [
            (
                "create_only",
                "create with ifGenerationMatch=0 refused the second time",
            ),
            (
                "create_after_delete",
                "create with ifGenerationMatch=0 after a delete",
            ),
            (
                "if_generation_match_stale",
                "upload with a stale ifGenerationMatch refused",
            ),
            (
                "conditional_delete",
                "delete with a stale ifGenerationMatch refused",
            ),
        ] {
            checks.push(check(
                id,
                title,
                Verdict::Skip,
                "not probed: cannot write under the prefix",
            ));
        }
    }
    checks.push(cleanup(store, prefix).await);
    Report {
        bucket: store.bucket().to_string(),
        prefix: prefix.to_string(),
        versioning: match versioning {
            Ok(true) => "enabled",
            Ok(false) => "off",
            Err(_) => "unknown",
        }
        .into(),
        checks,
    }
}

const GCS_REQUESTS: Requests = Requests {
    put: "upload",
    get: "download",
    list: "the listing",
    delete: "delete",
    title: "list, get, upload, delete on the prefix",
    fix: "grant storage.objects.create, .get, .delete and .list on the state's bucket (roles/storage.objectAdmin)",
};

const UNSAFE_FIX: &str = "this server ignores ifGenerationMatch: every writer would get the lock. Use Google Cloud Storage itself (or a server that honours generation preconditions) for the state and its lock";

async fn create_only(store: &GcsStore, key: &str) -> Check {
    let title = "create with ifGenerationMatch=0 refused the second time";
    let id = "create_only";
    if let Err(e) = store.put(key, b"one".to_vec(), PutMode::Create).await {
        return check(
            id,
            title,
            Verdict::Fail,
            format!("the first create failed: {e}"),
        );
    }
    match store.put(key, b"two".to_vec(), PutMode::Create).await {
        Err(StoreError::AlreadyExists { .. }) => check(id, title, Verdict::Pass, "refused with 412"),
        Ok(_) => check(
            id,
            title,
            Verdict::Fail,
            "the second create succeeded: this server ignores ifGenerationMatch=0, so every writer would get the lock",
        )
        .fix(UNSAFE_FIX),
        Err(e) => check(id, title, Verdict::Fail, format!("the second create failed otherwise: {e}")),
    }
}

async fn create_after_delete(store: &GcsStore, key: &str) -> Check {
    let title = "create with ifGenerationMatch=0 after a delete (lock, release, lock, lock)";
    let id = "create_after_delete";
    let steps = async {
        store.put(key, b"1".to_vec(), PutMode::Create).await?;
        store.delete(key, None).await?;
        store.put(key, b"3".to_vec(), PutMode::Create).await?;
        Ok::<_, StoreError>(store.put(key, b"4".to_vec(), PutMode::Create).await)
    };
    match steps.await {
        Err(e) => check(id, title, Verdict::Fail, format!("a released lock cannot be taken again: {e}")),
        Ok(Err(StoreError::AlreadyExists { .. })) => {
            check(id, title, Verdict::Pass, "the third create passed, the fourth was refused")
        }
        Ok(Ok(_)) => check(
            id,
            title,
            Verdict::Fail,
            "the fourth create succeeded: after a lock has once been released, every writer gets it",
        )
        .fix(UNSAFE_FIX),
        Ok(Err(e)) => check(id, title, Verdict::Fail, format!("the fourth create failed otherwise: {e}")),
    }
}

async fn stale_update(store: &GcsStore, key: &str) -> Check {
    let title = "upload with a stale ifGenerationMatch refused";
    let id = "if_generation_match_stale";
    let stale = match store.put(key, b"v1".to_vec(), PutMode::Overwrite).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return check(
                id,
                title,
                Verdict::Warn,
                "the upload reported no generation",
            );
        }
        Err(e) => return check(id, title, Verdict::Warn, format!("upload failed: {e}")),
    };
    if let Err(e) = store
        .put(key, b"v2".to_vec(), PutMode::Update(stale.clone()))
        .await
    {
        return check(
            id,
            title,
            Verdict::Warn,
            format!("an upload with the current generation was refused: {e}"),
        )
        .fix("pushes that update a state would fail here");
    }
    match store.put(key, b"v3".to_vec(), PutMode::Update(stale)).await {
        Err(StoreError::Precondition { .. }) => check(id, title, Verdict::Pass, "412"),
        Ok(_) => check(
            id,
            title,
            Verdict::Warn,
            "accepted: a state write does not notice that the state changed meanwhile (the lock alone then protects it, and here it does not either)",
        ),
        Err(e) => check(id, title, Verdict::Warn, format!("refused otherwise: {e}")),
    }
}

async fn stale_delete(store: &GcsStore, key: &str) -> Check {
    let title = "delete with a stale ifGenerationMatch refused";
    let id = "conditional_delete";
    let first = store.put(key, b"a".to_vec(), PutMode::Overwrite).await;
    let second = store.put(key, b"b".to_vec(), PutMode::Overwrite).await;
    let (Ok(Some(stale)), Ok(_)) = (first, second) else {
        return check(id, title, Verdict::Warn, "the uploads failed");
    };
    match store.delete_if(key, &stale).await {
        Err(StoreError::Precondition { .. }) => check(id, title, Verdict::Pass, "412"),
        Ok(_) => check(
            id,
            title,
            Verdict::Warn,
            "ignored: the object was deleted despite a stale generation (tfsync compares the lock's ID and generation before every delete, but cannot close the window between)",
        ),
        Err(e) => check(id, title, Verdict::Warn, format!("refused otherwise: {e}")),
    }
}

async fn cleanup(store: &GcsStore, prefix: &str) -> Check {
    let title = "scratch objects removed";
    let mut errors = Vec::new();
    match store.list(prefix).await {
        Ok(l) => {
            for m in l {
                if let Err(e) = store.delete(&m.key, None).await {
                    errors.push(e.to_string());
                }
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    let left = store
        .list(prefix)
        .await
        .map(|l| l.len())
        .unwrap_or(usize::MAX);
    if errors.is_empty() && left == 0 {
        check(
            "cleanup",
            title,
            Verdict::Pass,
            "nothing left under the prefix",
        )
    } else {
        check(
            "cleanup",
            title,
            Verdict::Warn,
            format!(
                "left under {prefix}: {left} object(s); {}",
                errors.join("; ")
            ),
        )
    }
}
