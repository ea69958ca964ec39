//! `tfsync push`: replace the remote state under the lock, with the checks of
//! `terraform state push`, as a compare-and-swap on the state's ETag.

use super::Ctx;
use crate::cli::PushArgs;
use crate::error::Error;
use crate::localfile;
use crate::store::Payload;
use crate::tfstate::state::{self, StateInfo};
use crate::tfstate::write::{Purpose, Rules, StateWrite};

pub async fn run(ctx: &Ctx, args: PushArgs) -> Result<(), Error> {
    // Held once, shared with the write (never copied).
    let bytes = bytes::Bytes::from(localfile::read_bounded(
        &args.file,
        ctx.config.max_state_size,
    )?);
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

    let key = ctx.config.state_key();
    // Hashed once, for every step of the write (Content-MD5, the digest).
    let body = Payload::new(bytes.clone());
    let write = StateWrite::new(
        ctx.store.as_ref(),
        &key,
        Rules::push(args.force),
        Purpose::Push,
    );
    let outcome = match &args.lock_id {
        Some(id) => {
            // The caller says it holds the lock; make sure it does.
            ctx.lock_set().check(id, None).await?;
            write.write_bytes(body).await?
        }
        // `--lock=false`, as `terraform state push -lock=false`.
        None if !args.lock => write.write_bytes(body).await?,
        None => {
            ctx.under_lock(
                &key,
                "state-push",
                args.lock_timeout,
                write.write_bytes(body),
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
            "unchanged": outcome.unchanged(),
        }));
    }
    let verb = if outcome.unchanged() {
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
