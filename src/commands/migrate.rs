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
    // Each side has its own layout: the source's backend's, and the
    // destination's (its location's kind).
    let src_layout = cfg.states();
    let (dest_key, dest_prefix, layout) = destination_keys(&args, &src_layout)?;
    let dest = open_destination(&ctx.config, &args.to, &args.side, false).await?;
    let dst_layout = if layout == keys::Layout::Gcs {
        // gcs: `<prefix>/<W>.tfstate`, the prefix the location names.
        keys::StateLayout::new(layout, String::new(), dest.prefix.clone())
    } else {
        let dest_key = dest_key.unwrap_or_else(|| join(&dest.prefix, &cfg.key));
        keys::StateLayout::new(layout, dest_key, dest_prefix)
    };
    let m = Migration {
        src: ctx.store.as_ref(),
        dst: dest.store.as_ref(),
        src_layout,
        dst_layout,
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

/// The layout of the destination `loc`: azurerm's in an Azure container,
/// gcs's in a gcs bucket;
/// in a bucket or directory the oss backend's for an oss source (the same
/// rule on the other bucket), else the s3 backend's.
fn destination_layout(loc: &Location, src: &keys::StateLayout) -> keys::Layout {
    match (loc, src.layout) {
        (Location::Azure { .. }, _) => keys::Layout::Azure,
        (Location::Gcs { .. }, _) => keys::Layout::Gcs,
        (_, keys::Layout::Oss) => keys::Layout::Oss,
        (_, keys::Layout::S3 | keys::Layout::Local | keys::Layout::Azure | keys::Layout::Gcs) => {
            keys::Layout::S3
        }
    }
}

/// `--to-key` (checked, the whole key: the location may then name no
/// prefix) and the destination's workspace key prefix: the flag; with
/// `--to-key`, the remote's `workspace_key_prefix`, else `env:`
/// (Terraform's default); without it, the source's when the source is an
/// s3 (or oss) backend, else `env:`. An Azure destination has no prefix
/// (its workspaces are `<key>env:W`). And the destination's layout.
fn destination_keys(
    args: &MigrateArgs,
    src: &keys::StateLayout,
) -> Result<(Option<String>, String, keys::Layout), Error> {
    let loc = Location::parse(&args.to)?;
    let layout = destination_layout(&loc, src);
    if layout == keys::Layout::Gcs
        && (args.to_key.is_some() || args.to_workspace_key_prefix.is_some())
    {
        return Err(Error::Config(format!(
            "--to {} is a gcs bucket: its workspaces are <prefix>/<W>.tfstate, as Terraform's gcs backend lays them out, with the prefix the location names (gs://bucket/PREFIX); leave out --to-key and --to-workspace-key-prefix",
            args.to
        )));
    }
    if layout == keys::Layout::Azure && args.to_workspace_key_prefix.is_some() {
        return Err(Error::Config(format!(
            "--to {} is an Azure container: its workspaces are <key>env:<W>, as Terraform's azurerm backend lays them out; it has no workspace key prefix (leave out --to-workspace-key-prefix)",
            args.to
        )));
    }
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
        (None, None) => match src.layout {
            keys::Layout::S3 | keys::Layout::Oss => src.prefix.clone(),
            keys::Layout::Local | keys::Layout::Azure | keys::Layout::Gcs => {
                keys::DEFAULT_WORKSPACE_KEY_PREFIX.to_string()
            }
        },
    };
    keys::validate_prefix(&prefix)
        .map_err(|e| Error::Config(format!("the destination's workspace key prefix: {e}")))?;
    if layout == keys::Layout::Azure {
        return Ok((args.to_key.clone(), String::new(), layout));
    }
    Ok((args.to_key.clone(), prefix, layout))
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
            "destination_key": m.dst_layout.key,
            "destination_workspace_key_prefix": m.dst_layout.prefix,
            "destination_workspaces": m.dst_layout.pattern(),
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
            esc(&m.dst_layout.key),
            esc(&m.dst_layout.pattern())
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
