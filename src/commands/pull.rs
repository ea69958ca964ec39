//! `tfsync pull`: the remote bytes exactly, to stdout or a private file.

use super::Ctx;
use crate::cli::PullArgs;
use crate::error::Error;
use crate::localfile;
use crate::store::{StoreError, etag_is_md5, md5_hex};
use std::io::Write;

pub async fn run(ctx: &Ctx, args: PullArgs) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let got = match &args.version_id {
        Some(v) => {
            super::history::versioned(ctx)
                .await?
                .get_version(&key, v)
                .await
        }
        None => ctx.store.get(&key).await,
    };
    let got = match got {
        Err(StoreError::NotFound { location }) => return Err(Error::StateNotFound { location }),
        other => other?,
    };
    if let Some(etag) = got.meta.etag.as_deref().filter(|e| etag_is_md5(e)) {
        let md5 = md5_hex(&got.bytes);
        if md5 != etag.to_ascii_lowercase() {
            return Err(StoreError::Transport {
                location: ctx.state_location(),
                message: format!("the bytes received (MD5 {md5}) do not match the ETag {etag}; nothing was written. Retry"),
            }
            .into());
        }
    }
    match &args.out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&got.bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| Error::io("standard output", e))?;
        }
        Some(path) => {
            localfile::write_private_atomic(path, &got.bytes)?;
            if ctx.out.json() {
                ctx.out.emit_json(&serde_json::json!({
                    "location": ctx.state_location(),
                    "file": path,
                    "size": got.bytes.len(),
                    "etag": got.meta.etag,
                }));
            }
            ctx.out.note(format!(
                "pulled {} ({} bytes) to {}",
                ctx.state_location(),
                got.bytes.len(),
                path.display()
            ));
        }
    }
    Ok(())
}
