//! How everything tfsync writes is stored: server-side encryption (SSE-S3,
//! SSE-KMS, SSE-C) and the canned ACL, as Terraform applies them to the lock
//! and the state.

use super::Source;
use super::table::{self, Resolver, given};
use crate::cli::GlobalOpts;
use crate::error::Error;
use crate::store::s3::WriteOptions;

/// The algorithms `--sse` / `TFSYNC_SSE` accept.
const ALGORITHMS: [&str; 3] = ["AES256", "aws:kms", "aws:kms:dsse"];

pub(super) fn resolve(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    create_only_header: Option<(String, String)>,
) -> Result<WriteOptions, Error> {
    let kms_key_id = r
        .text(&table::KMS_KEY_ID)
        .flag(given(&opts.kms_key_id))
        .get()?;
    let acl = r.text(&table::ACL).flag(given(&opts.acl)).get()?;
    let kms = kms_key_id.is_some();
    // Backend `encrypt = true`: AES256, or aws:kms with a KMS key.
    let encrypt =
        |v: &str| (v == "true").then(|| if kms { "aws:kms" } else { "AES256" }.to_string());
    let sse = r
        .text(&table::SSE)
        .flag(given(&opts.sse))
        .backend(&encrypt)
        .default(
            kms.then(|| "aws:kms".to_string()),
            Source::Default("kms_key_id is set"),
        )
        .get_sourced()?;
    if let Some((v, source)) = &sse {
        if !ALGORITHMS.contains(&v.as_str()) {
            return Err(Error::Config(format!(
                "server-side encryption {v:?} ({source}) is not one of {}",
                ALGORITHMS.join(", ")
            )));
        }
        if v == "AES256" && kms {
            return Err(Error::Config(
                "a KMS key was given with server-side encryption AES256: use aws:kms, or drop the key".into(),
            ));
        }
    }
    let sse_customer_key = r.text(&table::SSE_CUSTOMER_KEY).get()?;
    if let Some(k) = &sse_customer_key {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(k.trim())
            .unwrap_or_default();
        if raw.len() != 32 {
            return Err(Error::Config(
                "AWS_SSE_CUSTOMER_KEY must be the base64 of a 256-bit (32-byte) key; its value is not shown".into(),
            ));
        }
        if sse.is_some() {
            return Err(Error::Config(
                "AWS_SSE_CUSTOMER_KEY (SSE-C) cannot be combined with --sse / kms_key_id / encrypt"
                    .into(),
            ));
        }
    }
    Ok(WriteOptions {
        sse: sse.map(|(v, _)| v),
        kms_key_id,
        acl,
        sse_customer_key: sse_customer_key.map(|k| k.trim().to_string()),
        create_only_header,
    })
}
