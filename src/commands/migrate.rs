//! `tfsync migrate`: move a state and its workspaces to another bucket,
//! prefix or provider (the engine is `tfstate::migrate`).

use super::{Ctx, open_destination};
use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::location::join;
use crate::tfstate::migrate::{Item, Migration, Workspaces};

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<(), Error> {
    let cfg = &ctx.config;
    // The engine lays out both sides with one workspace prefix; the local
    // backend's workspaces (`<workspace_dir>/W/terraform.tfstate`) have
    // another shape: only its default workspace moves for now.
    if ctx.store.as_local().is_some()
        && (args.all_workspaces || cfg.workspace != crate::tfstate::keys::DEFAULT_WORKSPACE)
    {
        return Err(Error::Config(format!(
            "migrating the workspaces of a local backend is not supported yet: only its default workspace ({}) can be migrated; for workspace W, `tfsync -w W pull -o W.tfstate`, then push it at the destination",
            ctx.state_location()
        )));
    }
    let dest = open_destination(&ctx.config, &args.to, &args.side, false).await?;
    let dest_key = join(&dest.prefix, &cfg.key);
    let m = Migration {
        src: ctx.store.as_ref(),
        dst: dest.store.as_ref(),
        key: &cfg.key,
        dest_key: &dest_key,
        workspace_key_prefix: &cfg.workspace_key_prefix,
        to: &args.to,
        force: args.force,
        concurrency: args.concurrency as usize,
        lock_timeout: args.lock_timeout,
        delete_source: args.delete_source,
    };
    let which = if args.all_workspaces {
        Workspaces::All
    } else {
        Workspaces::One(&cfg.workspace)
    };
    let mut items = m.items(which).await?;
    if args.dry_run {
        m.plan(&mut items).await?;
        report(ctx, &args, &items, true);
        return Ok(());
    }
    let result = m.run(&mut items, &ctx.warn()).await;
    report(ctx, &args, &items, false);
    result
}

fn report(ctx: &Ctx, args: &MigrateArgs, items: &[Item], dry_run: bool) {
    if ctx.out.json() {
        ctx.out.emit_json(&serde_json::json!({
            "to": args.to,
            "dry_run": dry_run,
            "delete_source": args.delete_source,
            "workspaces": items,
        }));
        return;
    }
    if dry_run {
        ctx.out.data("plan (dry run, nothing changed):");
    }
    for it in items {
        let what = match (it.serial, &it.lineage) {
            (Some(s), Some(l)) => format!(" (serial {s}, lineage {l})"),
            _ => String::new(),
        };
        let reason = it
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let line = format!(
            "  {:<12} {} -> {}{what}: {} [{}]{reason}",
            it.workspace, it.source, it.destination, it.action, it.status
        );
        if dry_run {
            ctx.out.data(line);
        } else {
            ctx.out.note(line);
        }
    }
}
