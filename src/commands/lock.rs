//! `tfsync lock`: take the state lock and print its ID.

use super::Ctx;
use crate::cli::LockArgs;
use crate::error::Error;
use crate::tfstate::lock::{self as tflock, LockInfo};

pub async fn run(ctx: &Ctx, args: LockArgs) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let info = LockInfo::new(&args.operation, &args.info, ctx.store.bucket(), &key);
    tflock::acquire(ctx.store.as_ref(), &key, &info, args.wait).await?;
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
