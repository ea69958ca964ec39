//! `tfsync unlock`: release a lock whose ID matches.

use super::Ctx;
use crate::cli::UnlockArgs;
use crate::error::Error;

pub async fn run(ctx: &Ctx, args: UnlockArgs) -> Result<(), Error> {
    let info = ctx.lock_set().release(&args.lock_id, None).await?;
    super::report_released(ctx, &info);
    Ok(())
}
