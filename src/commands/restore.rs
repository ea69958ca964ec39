//! `tfsync restore --from SNAPSHOT`: states from a backup snapshot back into
//! the configured store, each under its own lock and with the push rules.

use super::Ctx;
use super::backup::open_backup;
use crate::cli::RestoreArgs;
use crate::error::Error;
use crate::location::join;
use crate::snapshot::{self, Entry};
use crate::store::{StoreError, md5_hex};
use crate::tfstate::write::{Purpose, Rules, StateWrite};

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
        // Restoring a snapshot is a push of its bytes (push's rules and words).
        let write = StateWrite::new(
            ctx.store.as_ref(),
            &e.key,
            Rules::push(args.force),
            Purpose::Push,
        );
        let outcome = ctx
            .under_lock(&e.key, OPERATION, args.lock_timeout, write.write(&bytes))
            .await?;
        ctx.out.note(format!(
            "{} {} (serial {}) from snapshot {id}",
            if outcome.unchanged() {
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
            "unchanged": outcome.unchanged(),
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
    let write = StateWrite::new(
        ctx.store.as_ref(),
        &key,
        Rules::Version {
            id: version_id.to_string(),
            force: args.force,
        },
        Purpose::RestoreVersion,
    );
    let work = async {
        let old = store.get_version(&key, version_id).await?;
        write.write(&old.bytes).await
    };
    let written = ctx
        .under_lock(&key, VERSION_OPERATION, args.lock_timeout, work)
        .await?;
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "location": location,
            "version_id": version_id,
            "serial": written.serial,
            "size": written.size,
            "etag": written.etag,
        }));
    }
    ctx.out.note(format!(
        "restored version {version_id} of {location} as serial {}",
        written.serial.map_or("?".to_string(), |s| s.to_string())
    ));
    Ok(())
}
