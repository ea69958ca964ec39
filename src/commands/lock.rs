//! `tfsync lock`: take the state lock and print its ID.

use super::Ctx;
use crate::cli::LockArgs;
use crate::error::Error;
use crate::tfstate::lock::{self as tflock, LockInfo};

pub async fn run(ctx: &Ctx, args: LockArgs) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let info = LockInfo::new(&args.operation, &args.info, ctx.store.bucket(), &key);
    // Ctrl-C while waiting must not leave behind a lock nobody knows the ID
    // of (a PUT may have landed as the signal came): release it by its ID.
    let mut signals = super::Signals::install()?;
    tokio::select! {
        r = tflock::acquire(ctx.store.as_ref(), &key, &info, args.wait) => { r?; }
        signal = signals.recv() => {
            let detail = match tflock::release(ctx.store.as_ref(), &key, &info.id).await {
                Ok(_) => "the lock taken as the signal came was released".to_string(),
                Err(Error::NotLocked { .. } | Error::LockIdMismatch { .. }) => "no lock was taken".to_string(),
                Err(e) => format!("lock {} may be held ({e}); release it with: tfsync unlock {}", info.id, info.id),
            };
            return Err(Error::Interrupted { signal, detail });
        }
    }
    super::warn_if_unsafe(ctx).await;
    if ctx.out.json() {
        ctx.out
            .emit_json(&serde_json::to_value(&info).unwrap_or_default());
    } else {
        ctx.out.data(&info.id);
        ctx.out.note(format!(
            "locked {}; release with: tfsync unlock {}",
            ctx.state_location(),
            info.id
        ));
    }
    Ok(())
}
