//! How everything tfsync writes is stored: server-side encryption (SSE-S3,
//! SSE-KMS, SSE-C) and the canned ACL, as Terraform applies them to the lock
//! and the state.
//!
//! Terraform's rules (hashicorp/terraform, `internal/backend/remote-state/s3`):
//!
//! - `backend.go`, `(*Backend).Configure`: `encrypt` (bool), `kms_key_id`,
//!   and the customer key from the block's `sse_customer_key`, else
//!   `AWS_SSE_CUSTOMER_KEY` (44 characters of base64); `kms_key_id` with
//!   `AWS_SSE_CUSTOMER_KEY` is an error ("Only one of ..."), and
//!   `(*Backend).PrepareConfig` refuses `kms_key_id` with `sse_customer_key`
//!   (`validateAttributesConflict`), whether `encrypt` is set or not.
//! - `client.go`, `(*RemoteClient).put` and `lockWithFile`: only
//!   `if c.serverSideEncryption` is anything sent: the KMS key (aws:kms),
//!   else the customer key (SSE-C), else `AES256`. `get` (HEAD and GET) and
//!   `unlockWithFile` (GET of the lock) send the SSE-C headers only
//!   `if c.serverSideEncryption && c.customerEncryptionKey != nil`.
//!
//! So a KMS key or a customer key without `encrypt = true` is ignored by
//! Terraform (it writes plaintext, and reads without the key): tfsync
//! ignores it too, and warns. tfsync's `--sse ALGORITHM` / `TFSYNC_SSE` is
//! its `encrypt` with an explicit algorithm.

use super::Source;
use super::table::{self, Resolver, given};
use crate::cli::GlobalOpts;
use crate::error::Error;
use crate::store::s3::WriteOptions;

/// The algorithms `--sse` / `TFSYNC_SSE` accept.
const ALGORITHMS: [&str; 3] = ["AES256", "aws:kms", "aws:kms:dsse"];

/// What backend `encrypt = true` resolves to with a customer key (shown by
/// `tfsync config`; never sent as `x-amz-server-side-encryption`).
const SSE_C: &str = "SSE-C";

pub(super) fn resolve(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    create_only_header: Option<(String, String)>,
    warnings: &mut Vec<String>,
) -> Result<WriteOptions, Error> {
    let kms = r
        .text(&table::KMS_KEY_ID)
        .flag(given(&opts.kms_key_id))
        .get_sourced()?;
    let acl = r.text(&table::ACL).flag(given(&opts.acl)).get()?;
    let customer = r.text(&table::SSE_CUSTOMER_KEY).get_sourced()?;
    if let (Some((_, ks)), Some((_, cs))) = (&kms, &customer) {
        return Err(Error::Config(format!(
            "kms_key_id ({ks}) and an SSE-C customer key ({cs}) are both set: Terraform refuses this configuration (kms_key_id is SSE-KMS, the customer key SSE-C); keep one of them"
        )));
    }
    if let Some((k, source)) = &customer {
        check_customer_key(k, source)?;
    }
    let (with_kms, with_key) = (kms.is_some(), customer.is_some());
    // Backend `encrypt = true`: aws:kms with a KMS key, SSE-C with a customer
    // key, else AES256 (client.go, `put` / `lockWithFile`).
    let encrypt = |v: &str| {
        (v == "true").then(|| {
            match (with_kms, with_key) {
                (true, _) => "aws:kms",
                (false, true) => SSE_C,
                (false, false) => "AES256",
            }
            .to_string()
        })
    };
    let sse = r
        .text(&table::SSE)
        .flag(given(&opts.sse))
        .backend(&encrypt)
        .get_sourced()?;
    let Some((algorithm, source)) = sse else {
        // No `encrypt`: Terraform sends none of them, on writes or reads.
        if let Some((_, s)) = &kms {
            warnings.push(format!(
                "kms_key_id ({s}) is not applied: Terraform uses it only with encrypt = true, so without it the lock and the state are written without SSE-KMS; set encrypt = true in the backend block (or --sse aws:kms) to use the key"
            ));
        }
        if let Some((_, s)) = &customer {
            warnings.push(format!(
                "the SSE-C customer key ({s}) is not applied: Terraform uses it only with encrypt = true, so without it the lock and the state are written and read without the key; set encrypt = true in the backend block (or --sse AES256) to use it"
            ));
        }
        return Ok(WriteOptions {
            acl,
            create_only_header,
            ..Default::default()
        });
    };
    let sse = match algorithm.as_str() {
        SSE_C
            if matches!(
                source,
                Source::BackendBlock(_) | Source::OtherBlock(..) | Source::TerraformInit(_)
            ) =>
        {
            None
        }
        a if !ALGORITHMS.contains(&a) => {
            return Err(Error::Config(format!(
                "server-side encryption {a:?} ({source}) is not one of {}",
                ALGORITHMS.join(", ")
            )));
        }
        "AES256" if with_kms => {
            return Err(Error::Config(format!(
                "a KMS key was given with server-side encryption AES256 ({source}): use aws:kms, or drop the key"
            )));
        }
        // SSE-C encrypts with AES256 under the customer's key: `--sse
        // AES256` with a customer key is Terraform's `encrypt = true` with it.
        "AES256" if with_key => None,
        a if with_key => {
            return Err(Error::Config(format!(
                "server-side encryption {a} ({source}) cannot be combined with an SSE-C customer key: use --sse AES256 (or encrypt = true) for SSE-C, or drop the customer key"
            )));
        }
        a => Some(a.to_string()),
    };
    Ok(WriteOptions {
        sse,
        kms_key_id: kms.map(|(k, _)| k),
        acl,
        sse_customer_key: customer.map(|(k, _)| k.trim().to_string()),
        create_only_header,
    })
}

/// A customer key is the base64 of 256 bits (Terraform: 44 characters of
/// base64); the message never shows it.
fn check_customer_key(k: &str, source: &Source) -> Result<(), Error> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(k.trim())
        .unwrap_or_default();
    if raw.len() != 32 {
        return Err(Error::Config(format!(
            "the SSE-C customer key ({source}) must be the base64 of a 256-bit (32-byte) key, 44 characters; its value is not shown"
        )));
    }
    Ok(())
}
