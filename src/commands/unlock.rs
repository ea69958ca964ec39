//! `tfsync unlock`: release a lock whose ID matches.

use super::Ctx;
use crate::cli::UnlockArgs;
use crate::error::Error;
use crate::tfstate::lock as tflock;

pub async fn run(ctx: &Ctx, args: UnlockArgs) -> Result<(), Error> {
    let info = tflock::release(ctx.store.as_ref(), &ctx.config.state_key(), &args.lock_id).await?;
    super::report_released(ctx, &info);
    Ok(())
}
