//! `tfsync restore --from SNAPSHOT`: states from a backup snapshot back into
//! the configured store, each under its own lock and with the push rules.

use super::backup::open_backup;
use super::push::write;
use super::{Ctx, under_lock_on};
use crate::cli::RestoreArgs;
use crate::error::Error;
use crate::location::join;
use crate::snapshot::{self, Entry};
use crate::store::{PutMode, StoreError, md5_hex};
use crate::tfstate::state::{self, StateInfo};

pub const OPERATION: &str = "restore from backup";

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> Result<(), Error> {
    let from = match (&args.from, &args.version_id) {
        (_, Some(v)) => return by_version(ctx, v, &args).await,
        (Some(f), None) => f.clone(),
        (None, None) => {
            return Err(Error::Config(
                "restore needs --from SNAPSHOT or --version-id V".into(),
            ));
        }
    };
    let b = open_backup(&ctx.config, &from, &args.side).await?;
    let store = b.opened.store.as_ref();
    let id = match &b.snapshot {
        Some(id) => id.clone(),
        None => snapshot::list_ids(store, &b.root)
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound {
                location: format!(
                    "{} (no complete snapshot: no manifests/*.json)",
                    b.opened.display
                ),
            })?,
    };
    let manifest = snapshot::read_manifest(store, &b.root, &id).await?;
    let entries: Vec<&Entry> = if args.all {
        manifest.states.iter().collect()
    } else {
        let key = ctx.config.state_key();
        let found: Vec<&Entry> = manifest.states.iter().filter(|e| e.key == key).collect();
        if found.is_empty() {
            return Err(Error::Store(StoreError::NotFound {
                location: format!(
                    "{key} in snapshot {id} of {} (it holds {} states; use --all for every one, or check --key and --workspace)",
                    b.opened.display,
                    manifest.states.len()
                ),
            }));
        }
        found
    };

    let mut restored = Vec::new();
    for e in entries {
        let object = join(&b.root, &e.object);
        let got = store.get(&object).await?;
        let bytes = if e.gzip {
            snapshot::gunzip(&got.bytes).map_err(|err| StoreError::Other {
                location: store.location(&object),
                message: format!("not valid gzip: {err}"),
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
                    from
                ),
            }));
        }
        let outcome = under_lock_on(
            ctx,
            &e.key,
            OPERATION,
            args.lock_timeout,
            write(ctx, &e.key, &bytes, args.force),
        )
        .await?;
        ctx.out.note(format!(
            "{} {} (serial {}) from snapshot {id}",
            if outcome.unchanged {
                "already up to date:"
            } else {
                "restored"
            },
            ctx.store.location(&e.key),
            e.serial.map_or("?".to_string(), |s| s.to_string())
        ));
        restored.push(serde_json::json!({
            "key": e.key,
            "location": ctx.store.location(&e.key),
            "serial": e.serial,
            "lineage": e.lineage,
            "size": e.size,
            "etag": outcome.etag,
            "previous_etag": outcome.previous_etag,
            "unchanged": outcome.unchanged,
        }));
    }
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "snapshot": id,
            "from": b.opened.display,
            "restored": restored,
        }));
    }
    Ok(())
}

pub const VERSION_OPERATION: &str = "restore state version";

/// `restore --version-id V`: under the lock, the bytes of version `V` with
/// the serial set to the current serial + 1 (same lineage required unless
/// `--force`), written compare-and-swap over the current state.
async fn by_version(ctx: &Ctx, version_id: &str, args: &RestoreArgs) -> Result<(), Error> {
    let store = super::history::versioned(ctx).await?;
    let key = ctx.config.state_key();
    let location = ctx.state_location();
    let work = async {
        let old = store.get_version(&key, version_id).await?;
        let old_state = match state::parse(&old.bytes) {
            Ok(StateInfo::Plain(s)) => s,
            Ok(StateInfo::Encrypted { .. }) => {
                return Err(Error::InvalidState {
                    what: format!("{location} version {version_id}"),
                    reason: "it is encrypted (OpenTofu): its serial cannot be set".into(),
                });
            }
            Err(reason) => {
                return Err(Error::InvalidState {
                    what: format!("{location} version {version_id}"),
                    reason,
                });
            }
        };
        let current = match ctx.store.get(&key).await {
            Ok(g) => Some(g),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let (bytes, mode, serial) = match &current {
            None => (old.bytes.clone(), PutMode::Create, old_state.serial),
            Some(cur) => {
                let cur_state = match state::parse(&cur.bytes) {
                    Ok(StateInfo::Plain(s)) => Some(s),
                    _ => None,
                };
                if let Some(c) = &cur_state
                    && !c.lineage.is_empty()
                    && c.lineage != old_state.lineage
                    && !args.force
                {
                    return Err(Error::StateConflict {
                        location: location.clone(),
                        reason: format!(
                            "version {version_id} has lineage {:?}, the current state {:?}: it belongs to another state. Use --force to restore it anyway",
                            old_state.lineage, c.lineage
                        ),
                    });
                }
                let serial =
                    cur_state.map_or(old_state.serial, |c| c.serial.max(old_state.serial)) + 1;
                let bytes = state::with_serial(&old.bytes, serial).map_err(|reason| {
                    Error::InvalidState {
                        what: format!("{location} version {version_id}"),
                        reason,
                    }
                })?;
                let mode = match &cur.meta.etag {
                    Some(e) => PutMode::Update(e.clone()),
                    None => PutMode::Overwrite,
                };
                (bytes, mode, serial)
            }
        };
        match ctx.store.put(&key, bytes.clone(), mode).await {
            Ok(etag) => Ok((etag, serial, bytes.len())),
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                Err(Error::StateConflict {
                    location: location.clone(),
                    reason: "the state changed while it was being restored (written without the lock); nothing was written. Retry".into(),
                })
            }
            Err(e) => Err(e.into()),
        }
    };
    let (etag, serial, size) =
        under_lock_on(ctx, &key, VERSION_OPERATION, args.lock_timeout, work).await?;
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "location": location,
            "version_id": version_id,
            "serial": serial,
            "size": size,
            "etag": etag,
        }));
    }
    ctx.out.note(format!(
        "restored version {version_id} of {location} as serial {serial}"
    ));
    Ok(())
}
