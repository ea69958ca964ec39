//! `tfsync lock`: take the state lock and print its ID.

use super::Ctx;
use crate::cli::LockArgs;
use crate::error::Error;
use crate::tfstate::guard::{self, LockSpec};

pub async fn run(ctx: &Ctx, args: LockArgs) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let spec = LockSpec::new(ctx.store.as_ref(), &key, &args.operation).with_info(&args.info);
    // Ctrl-C while waiting does not leave behind a lock nobody knows the ID
    // of: `take` releases it by its ID.
    let info = guard::take(&spec, args.wait, &ctx.warn()).await?;
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
