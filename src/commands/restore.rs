//! `tfsync restore --from SNAPSHOT`: states from a backup snapshot back into
//! the configured store, each under its own lock and with the push rules
//! (the engine is `backup::restore`); `restore --version-id V`: a bucket
//! version of the state, written as the next serial.

use super::{Ctx, open_backup};
use crate::backup::restore::{self, Restored, Select, Source, Target};
use crate::cli::RestoreArgs;
use crate::error::Error;
use crate::store::Payload;
use crate::tfstate::write::{Purpose, Rules, StateWrite};

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> Result<(), Error> {
    let from = match (&args.from, &args.version_id) {
        (_, Some(v)) => return by_version(ctx, v, &args).await,
        (Some(_), None) if !args.lock => {
            return Err(Error::Config(
                "--lock=false works with restore --version-id only: restore --from takes each state's lock (pull the snapshot's state and use push --lock=false instead)".into(),
            ));
        }
        (Some(f), None) => f.clone(),
        (None, None) => {
            return Err(Error::Config(
                "restore needs --from SNAPSHOT or --version-id V".into(),
            ));
        }
    };
    let b = open_backup(&ctx.config, &from, &args.side).await?;
    let source = Source {
        store: b.opened.store.as_ref(),
        root: &b.root,
        snapshot: b.snapshot.as_deref(),
        display: &b.opened.display,
        given: &from,
        max_size: ctx.config.max_state_size,
    };
    let key = ctx.config.state_key();
    let select = if args.all {
        Select::All
    } else {
        Select::Key(&key)
    };
    let warn = ctx.warn();
    let target = Target {
        store: ctx.store.as_ref(),
        force: args.force,
        lock_timeout: args.lock_timeout,
        warn: &warn,
    };
    let done = |id: &str, r: &Restored| {
        ctx.out.note(format!(
            "{} {} (serial {}) from snapshot {id}",
            if r.unchanged {
                "already up to date:"
            } else {
                "restored"
            },
            r.location,
            r.serial.map_or("?".to_string(), |s| s.to_string())
        ));
    };
    let outcome = restore::restore(&source, select, &target, &done).await?;
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "snapshot": outcome.snapshot,
            "from": b.opened.display,
            "restored": outcome.restored,
        }));
    }
    Ok(())
}

pub const VERSION_OPERATION: &str = "restore state version";

/// `restore --version-id V`: under the lock, the bytes of version `V` with
/// the serial set to the current serial + 1 (same lineage required unless
/// `--force`), written compare-and-swap over the current state.
async fn by_version(ctx: &Ctx, version_id: &str, args: &RestoreArgs) -> Result<(), Error> {
    let store = ctx.versioned().await?;
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
        write.write_bytes(Payload::new(old.bytes)).await
    };
    let written = if args.lock {
        ctx.under_lock(&key, VERSION_OPERATION, args.lock_timeout, work)
            .await?
    } else {
        work.await?
    };
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
