//! `tfsync pull`: the remote bytes exactly, to stdout or a private file.
//!
//! The object is streamed (memory stays flat whatever its size) and its MD5
//! is checked against the ETag when the ETag is an MD5. A file is written to
//! a 0600 temporary beside the target and renamed into place only once the
//! bytes are complete and verified: an interrupted or corrupt transfer never
//! leaves a partial file, and a body cut off mid-transfer is fetched again
//! (up to `--max-attempts`). On stdout, bytes already written cannot be taken
//! back: the check comes after them, and a cut-off or mismatch is reported
//! with a non-zero exit code (use `-o` for retries).
//!
//! `-o -` is stdout. An existing device or FIFO is written through (never
//! replaced); a symbolic link is refused (see [`localfile::out_target`]).

use super::Ctx;
use crate::cli::PullArgs;
use crate::error::Error;
use crate::localfile::{self, OutTarget};
use crate::store::{ObjectMeta, StoreError, local_write_error, md5_hex};
use crate::tfstate::read;

pub async fn run(ctx: &Ctx, args: PullArgs) -> Result<(), Error> {
    let key = ctx.config.state_key();
    let target = match &args.out {
        None => OutTarget::Stdout,
        Some(path) => localfile::out_target(path)?,
    };
    let file = args
        .out
        .as_ref()
        .filter(|_| !matches!(target, OutTarget::Stdout));
    let (meta, md5) = match (&target, file) {
        (OutTarget::File, Some(path)) => {
            // Ctrl-C / SIGTERM: the future is dropped, and with it the
            // temporary file; FILE is left as it was.
            let mut signals = crate::tfstate::guard::Signals::install()?;
            tokio::select! {
                r = to_file(ctx, &key, args.version_id.as_deref(), path) => r?,
                signal = signals.recv() => {
                    return Err(Error::Interrupted {
                        signal,
                        detail: format!("{} was left as it was (no partial file)", path.display()),
                    });
                }
            }
        }
        (OutTarget::Device, Some(path)) => {
            // A device or FIFO is written through, never replaced: like
            // stdout, bytes written cannot be taken back (no retries).
            let mut dev = tokio::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
                .open(path)
                .await
                .map_err(|e| Error::io(path, e))?;
            let md = dev.metadata().await.map_err(|e| Error::io(path, e))?;
            if md.is_file() {
                return Err(Error::io(
                    path,
                    std::io::Error::other(
                        "was replaced by a regular file while it was being opened; retry",
                    ),
                ));
            }
            fetch(ctx, &key, args.version_id.as_deref(), &mut dev).await?
        }
        _ => {
            let mut stdout = tokio::io::stdout();
            fetch(ctx, &key, args.version_id.as_deref(), &mut stdout).await?
        }
    };
    if args.version_id.is_none() {
        warn_on_stale_digest(ctx, &key, &md5).await;
    }
    if ctx.out.json() && file.is_some() {
        ctx.out.emit_json(&serde_json::json!({
            "location": ctx.state_location(),
            "file": file,
            "size": meta.size,
            "etag": meta.etag,
            "md5": md5,
        }));
    }
    if let Some(path) = file {
        ctx.out.note(format!(
            "pulled {} ({} bytes) to {}",
            ctx.state_location(),
            meta.size,
            path.display()
        ));
    }
    Ok(())
}

/// Into a 0600 temporary file beside `path`, renamed onto it once complete
/// and verified; a body cut off mid-way is fetched again.
async fn to_file(
    ctx: &Ctx,
    key: &str,
    version_id: Option<&str>,
    path: &std::path::Path,
) -> Result<(ObjectMeta, String), Error> {
    let tmp = localfile::PrivateTemp::beside(path)?;
    let mut attempt = 1;
    let got = loop {
        // Each attempt starts from an empty temporary file.
        let mut file = tokio::fs::File::from_std(tmp.reopen()?);
        file.set_len(0).await.map_err(|e| Error::io(path, e))?;
        match fetch(ctx, key, version_id, &mut file).await {
            Err(Error::Store(StoreError::BodyInterrupted { .. }))
                if attempt < ctx.config.max_attempts() =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
            }
            other => {
                let got = other?;
                file.sync_all().await.map_err(|e| Error::io(path, e))?;
                break got;
            }
        }
    };
    tmp.commit()?;
    Ok(got)
}

/// Stream the state (or, with `--version-id`, one bucket version of it)
/// into `sink` and verify it against its ETag.
async fn fetch(
    ctx: &Ctx,
    key: &str,
    version_id: Option<&str>,
    sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
) -> Result<(ObjectMeta, String), Error> {
    let location = ctx.store.location(key);
    let got = match version_id {
        Some(v) => match ctx.versioned().await?.get_version(key, v).await {
            Ok(g) => {
                use tokio::io::AsyncWriteExt;
                sink.write_all(&g.bytes).await.map_err(local_write_error)?;
                sink.flush().await.map_err(local_write_error)?;
                let md5 = md5_hex(&g.bytes);
                read::check(&location, &g.meta, &md5).map(|()| (g.meta, md5))
            }
            Err(e) => Err(e),
        },
        None => read::get_to(ctx.store.as_ref(), key, sink).await,
    };
    match got {
        Err(StoreError::NotFound { location }) => Err(Error::StateNotFound { location }),
        other => Ok(other?),
    }
}

/// With a DynamoDB lock table: warn when the digest stored there is not the
/// MD5 of the bytes pulled (Terraform's next read of this state fails).
async fn warn_on_stale_digest(ctx: &Ctx, key: &str, md5: &str) {
    use crate::tfstate::dynamo::{self, DigestCheck};
    let Some(table) = ctx.store.lock_table() else {
        return;
    };
    match dynamo::read_digest(table, ctx.store.bucket(), key).await {
        Ok(stored) => {
            let check = DigestCheck {
                stored,
                actual: Some(md5.to_string()),
            };
            if check.matches() == Some(false) {
                ctx.out.warn(format!(
                    "the state's MD5 {md5} is not the digest {} stored in {}: Terraform refuses to read this state (\"state data in S3 does not have the expected content\"). If the state is right, store its digest with `tfsync digest --fix`",
                    check.stored.text().unwrap_or_default(),
                    table.location(&dynamo::digest_id(ctx.store.bucket(), key))
                ));
            }
        }
        Err(e) => ctx
            .out
            .warn(format!("could not compare the state with its digest: {e}")),
    }
}
