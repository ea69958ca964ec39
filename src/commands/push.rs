//! `tfsync push`: replace the remote state under the lock, with the checks of
//! `terraform state push`, as a compare-and-swap on the state's ETag.

use super::{Ctx, under_lock};
use crate::cli::PushArgs;
use crate::error::Error;
use crate::localfile;
use crate::store::{PutMode, StoreError, md5_hex};
use crate::tfstate::lock::{self as tflock, Current};
use crate::tfstate::state::{self, StateInfo};

pub async fn run(ctx: &Ctx, args: PushArgs) -> Result<(), Error> {
    let bytes = localfile::read_bounded(&args.file, ctx.config.max_state_size)?;
    let what = args.file.display().to_string();
    match state::parse(&bytes) {
        Ok(StateInfo::Plain(_)) => {}
        Ok(StateInfo::Encrypted { .. }) if args.force => {}
        Ok(StateInfo::Encrypted { .. }) => {
            return Err(Error::InvalidState {
                what,
                reason: "it is encrypted (OpenTofu), so its lineage and serial cannot be checked; push it with --force".into(),
            });
        }
        Err(reason) => return Err(Error::InvalidState { what, reason }),
    }

    let outcome = match &args.lock_id {
        Some(id) => {
            check_held(ctx, id).await?;
            write(ctx, &ctx.config.state_key(), &bytes, args.force).await?
        }
        None => {
            ctx.store.set_lock_wait(args.lock_timeout);
            under_lock(
                ctx,
                "state-push",
                args.lock_timeout,
                write(ctx, &ctx.config.state_key(), &bytes, args.force),
            )
            .await?
        }
    };

    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "location": ctx.state_location(),
            "file": args.file,
            "size": bytes.len(),
            "etag": outcome.etag,
            "previous_etag": outcome.previous_etag,
            "unchanged": outcome.unchanged,
        }));
    }
    let verb = if outcome.unchanged {
        "already up to date:"
    } else {
        "pushed"
    };
    ctx.out.note(format!(
        "{verb} {} -> {} ({} bytes)",
        args.file.display(),
        ctx.state_location(),
        bytes.len()
    ));
    Ok(())
}

/// `--lock-id`: the caller says it holds the lock; make sure it does.
async fn check_held(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let lock = ctx.store.location(&crate::tfstate::keys::lock_key(&key));
    match tflock::read(ctx.store.as_ref(), &key).await? {
        Current::Locked { info, .. } if info.id == id => Ok(()),
        Current::Locked { info, .. } => Err(Error::LockIdMismatch {
            lock,
            given: id.into(),
            held: info.id,
        }),
        Current::Unlocked => Err(Error::NotLocked { lock }),
        Current::Unreadable { reason, .. } => Err(Error::LockUnreadable { lock, reason }),
    }
}

pub(crate) struct Outcome {
    pub etag: Option<String>,
    pub previous_etag: Option<String>,
    pub unchanged: bool,
}

/// Read the current state at `key`, apply the push rules, write with
/// If-Match. The caller holds the lock.
pub(crate) async fn write(
    ctx: &Ctx,
    key: &str,
    bytes: &[u8],
    force: bool,
) -> Result<Outcome, Error> {
    let key = key.to_string();
    let store = ctx.store.as_ref();
    let location = store.location(&key);
    let current = match store.get(&key).await {
        Ok(g) => Some(g),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if !force {
        state::check_push(bytes, current.as_ref().map(|c| c.bytes.as_slice())).map_err(|r| {
            Error::StateConflict {
                location: location.clone(),
                reason: format!("{r}. Use --force to push anyway"),
            }
        })?;
    }
    let previous_etag = current.as_ref().and_then(|c| c.meta.etag.clone());
    if current.as_ref().is_some_and(|c| c.bytes == bytes) {
        return Ok(Outcome {
            etag: previous_etag.clone(),
            previous_etag,
            unchanged: true,
        });
    }
    let mode = match &previous_etag {
        Some(e) => PutMode::Update(e.clone()),
        None if current.is_some() => PutMode::Overwrite, // a store without ETags
        None => PutMode::Create,
    };
    match store.put(&key, bytes.to_vec(), mode).await {
        Ok(etag) => Ok(Outcome {
            etag,
            previous_etag,
            unchanged: false,
        }),
        Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
            // Our own write may have landed and its response been lost (the
            // SDK's retry then fails its condition): compare the bytes.
            let now = store.get(&key).await.ok();
            if now
                .as_ref()
                .is_some_and(|n| md5_hex(&n.bytes) == md5_hex(bytes))
            {
                let etag = now.and_then(|n| n.meta.etag);
                return Ok(Outcome {
                    etag,
                    previous_etag,
                    unchanged: false,
                });
            }
            Err(Error::StateConflict {
                location,
                reason: format!(
                    "the state changed while it was being pushed (ETag was {}); nothing was written. Pull it again and retry",
                    previous_etag
                        .as_deref()
                        .unwrap_or("none: the state did not exist")
                ),
            })
        }
        Err(e) => Err(e.into()),
    }
}
