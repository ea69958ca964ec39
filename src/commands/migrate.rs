//! `tfsync migrate`: move a state and its workspaces to another bucket,
//! prefix or provider (the engine is `tfstate::migrate`).

use super::{Ctx, open_destination};
use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::location::{self, Location, join};
use crate::tfstate::keys;
use crate::tfstate::migrate::{Item, Migration, Workspaces};

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<(), Error> {
    let cfg = &ctx.config;
    // The engine lays out both sides with one workspace prefix; the local
    // backend's workspaces (`<workspace_dir>/W/terraform.tfstate`) have
    // another shape: only its default workspace moves for now.
    // The gcs backend's (`<prefix>/W.tfstate`) too.
    if ctx.store.as_gcs().is_some()
        && (args.all_workspaces || cfg.workspace != crate::tfstate::keys::DEFAULT_WORKSPACE)
    {
        return Err(Error::Config(format!(
            "migrating the workspaces of a gcs backend is not supported yet: only its default workspace ({}) can be migrated; for workspace W, `tfsync -w W pull -o W.tfstate`, then push it at the destination",
            ctx.state_location()
        )));
    }
    if ctx.store.as_local().is_some()
        && (args.all_workspaces || cfg.workspace != crate::tfstate::keys::DEFAULT_WORKSPACE)
    {
        return Err(Error::Config(format!(
            "migrating the workspaces of a local backend is not supported yet: only its default workspace ({}) can be migrated; for workspace W, `tfsync -w W pull -o W.tfstate`, then push it at the destination",
            ctx.state_location()
        )));
    }
    if let Location::Gcs { .. } = Location::parse(&args.to)? {
        return Err(Error::Config(format!(
            "migrating into a gcs bucket ({}) is not supported yet: the migration engine would lay the states out as s3's, not as <prefix>/<W>.tfstate; `backup --to gs://...` works",
            args.to
        )));
    }
    let (dest_key, dest_prefix) = destination_keys(&args, &cfg.workspace_key_prefix)?;
    let dest = open_destination(&ctx.config, &args.to, &args.side, false).await?;
    let dest_key = dest_key.unwrap_or_else(|| join(&dest.prefix, &cfg.key));
    let m = Migration {
        src: ctx.store.as_ref(),
        dst: dest.store.as_ref(),
        key: &cfg.key,
        dest_key: &dest_key,
        workspace_key_prefix: &cfg.workspace_key_prefix,
        dest_workspace_key_prefix: &dest_prefix,
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
        report(ctx, &args, &m, &items, true);
        return Ok(());
    }
    let result = m.run(&mut items, &ctx.warn()).await;
    report(ctx, &args, &m, &items, false);
    result
}

/// `--to-key` (checked, the whole key: the location may then name no
/// prefix) and the destination's workspace key prefix: the flag; with
/// `--to-key`, the remote's `workspace_key_prefix`, else `env:`
/// (Terraform's default); without it, the source's (as before).
fn destination_keys(
    args: &MigrateArgs,
    source_prefix: &str,
) -> Result<(Option<String>, String), Error> {
    let loc = Location::parse(&args.to)?;
    if let Some(k) = &args.to_key {
        keys::validate_key(k).map_err(|e| Error::Config(format!("--to-key: {e}")))?;
        if !loc.prefix().is_empty() {
            return Err(Error::Config(format!(
                "--to {} names a prefix ({}) and --to-key the whole destination key: put the prefix in --to-key (e.g. --to-key {}) and leave it out of --to",
                args.to,
                loc.prefix(),
                join(loc.prefix(), k)
            )));
        }
    }
    let remote_prefix = match &loc {
        Location::S3 {
            remote: Some(name), ..
        } => {
            let env = |k: &str| std::env::var(k).ok();
            location::find_remote(Some(name), &env)?.and_then(|r| r.workspace_key_prefix)
        }
        _ => None,
    };
    let prefix = match (&args.to_workspace_key_prefix, &args.to_key) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => {
            remote_prefix.unwrap_or_else(|| keys::DEFAULT_WORKSPACE_KEY_PREFIX.to_string())
        }
        (None, None) => source_prefix.to_string(),
    };
    keys::validate_prefix(&prefix)
        .map_err(|e| Error::Config(format!("the destination's workspace key prefix: {e}")))?;
    Ok((args.to_key.clone(), prefix))
}

fn report(ctx: &Ctx, args: &MigrateArgs, m: &Migration<'_>, items: &[Item], dry_run: bool) {
    if ctx.out.json() {
        let mapping: Vec<_> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "workspace": i.workspace,
                    "source_key": i.source_key,
                    "destination_key": i.dest_key,
                })
            })
            .collect();
        ctx.out.emit_json(&serde_json::json!({
            "to": args.to,
            "dry_run": dry_run,
            "delete_source": args.delete_source,
            "destination_key": m.dest_key,
            "destination_workspace_key_prefix": m.dest_workspace_key_prefix,
            "mapping": mapping,
            "workspaces": items,
        }));
        return;
    }
    if dry_run {
        ctx.out.data("plan (dry run, nothing changed):");
    }
    if dry_run && (args.to_key.is_some() || args.to_workspace_key_prefix.is_some()) {
        use crate::output::escape_for_terminal as esc;
        ctx.out.data(format!(
            "  destination key {}, workspaces at {}",
            esc(m.dest_key),
            esc(&keys::state_key(
                m.dest_key,
                "<W>",
                m.dest_workspace_key_prefix
            ))
        ));
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
