//! `tfsync force-unlock`: show who holds the lock, confirm, release it.
//! As in Terraform, the lock ID must be given and must match.

use super::{Ctx, interactive};
use crate::cli::ForceUnlockArgs;
use crate::error::{Error, Holder};
use crate::tfstate::keys;
use crate::tfstate::lock::{self as tflock, Current};
use std::io::{BufRead, Write};

pub async fn run(ctx: &Ctx, args: ForceUnlockArgs) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let lock = ctx.store.location(&keys::lock_key(&key));
    let held = match tflock::read(ctx.store.as_ref(), &key).await? {
        Current::Unlocked => return Err(Error::NotLocked { lock }),
        Current::Unreadable { reason, .. } => return Err(Error::LockUnreadable { lock, reason }),
        Current::Locked { info, .. } => info,
    };
    if held.id != args.lock_id {
        return Err(Error::LockIdMismatch {
            lock,
            given: args.lock_id,
            held: held.id,
        });
    }
    if !ctx.out.json() || !args.yes {
        eprintln!("Lock on {lock}:\n{}", Holder::Lock(Box::new(held.clone())));
    }
    if !args.yes {
        if !interactive() {
            return Err(Error::NotConfirmed(format!(
                "refusing to force-unlock {lock} without confirmation: no terminal to ask on. Pass --yes to confirm"
            )));
        }
        eprint!(
            "\nDo you really want to force-unlock?\n  Whoever holds this lock may still be writing the state.\n  Only 'yes' will be accepted to confirm.\n\n  Enter a value: "
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Error::io("standard input", e))?;
        if answer.trim() != "yes" {
            return Err(Error::NotConfirmed(
                "force-unlock cancelled: the lock was left in place".into(),
            ));
        }
    }
    let info = tflock::release(ctx.store.as_ref(), &key, &args.lock_id).await?;
    super::report_released(ctx, &info);
    Ok(())
}
