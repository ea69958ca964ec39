//! How requests travel: retry waits, client-side rate limit, extra trusted
//! certificates. Flag, then environment, then the SDK's defaults.

use super::Source;
use super::table::{self, Resolver, Setting};
use crate::cli::GlobalOpts;
use crate::duration::parse_duration;
use crate::error::Error;
use crate::store::s3::TransportOptions;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn resolve(r: &mut Resolver<'_>, opts: &GlobalOpts) -> Result<TransportOptions, Error> {
    let min_wait = wait(r, &table::RETRY_MIN_WAIT, opts.retry_min_wait)?;
    let max_wait = wait(r, &table::RETRY_MAX_WAIT, opts.retry_max_wait)?;
    let rate = count(r, &table::RATE_LIMIT, opts.rate_limit)?;
    let burst = count(r, &table::RATE_BURST, opts.rate_burst)?;
    if let (Some(a), Some(b)) = (min_wait, max_wait)
        && a > b
    {
        return Err(Error::Config(
            "the retry min wait is longer than the max wait".into(),
        ));
    }
    if rate == Some(0) || burst == Some(0) {
        return Err(Error::Config(
            "the rate limit and burst must be at least 1".into(),
        ));
    }
    let ca_bundle = ca_bundle(r, opts)?;
    Ok(TransportOptions {
        max_attempts: max_attempts(r, opts)?,
        retry_min_wait: min_wait,
        retry_max_wait: max_wait,
        rate_limit: rate.map(|r| (r, burst.unwrap_or(1))),
        ca_bundle,
    })
}

/// The variable a value was read from, for messages.
fn var(setting: &Setting, source: &Source) -> &'static str {
    match source {
        Source::Env(v) => v,
        _ => setting.env.first().copied().unwrap_or(setting.name),
    }
}

fn wait(
    r: &mut Resolver<'_>,
    setting: &'static Setting,
    flag: Option<Duration>,
) -> Result<Option<Duration>, Error> {
    let parse = |v: &str, source: &Source| {
        parse_duration(v).map_err(|e| Error::Config(format!("{}: {e}", var(setting, source))))
    };
    r.typed(setting, &parse, &|d| format!("{d:?}"))
        .flag(flag)
        .get()
}

fn count(
    r: &mut Resolver<'_>,
    setting: &'static Setting,
    flag: Option<u32>,
) -> Result<Option<u32>, Error> {
    let parse = |v: &str, source: &Source| {
        v.trim().parse::<u32>().map_err(|_| {
            Error::Config(format!(
                "{}={v:?} is not a whole number",
                var(setting, source)
            ))
        })
    };
    r.typed(setting, &parse, &u32::to_string).flag(flag).get()
}

/// The PEM bundle's bytes, checked to hold a certificate.
fn ca_bundle(r: &mut Resolver<'_>, opts: &GlobalOpts) -> Result<Option<Vec<u8>>, Error> {
    let found = r
        .typed(&table::CA_BUNDLE, &|v, _| Ok(PathBuf::from(v)), &|p| {
            p.display().to_string()
        })
        .flag(opts.ca_bundle.clone())
        .get_sourced()?;
    let Some((file, source)) = found else {
        return Ok(None);
    };
    let pem = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
    check_ca_bundle(&pem).map_err(|why| {
        Error::Config(format!(
            "the CA bundle {} ({source}) {why}: give a file of PEM certificates (-----BEGIN CERTIFICATE-----)",
            file.display()
        ))
    })?;
    Ok(Some(pem))
}

/// Is every certificate of the bundle one the TLS client can trust? The
/// same reading the SDK does later, where a bad one is a panic, not an
/// error.
fn check_ca_bundle(pem: &[u8]) -> Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not valid PEM ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    for (i, cert) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(cert).map_err(|e| {
            format!(
                "holds a certificate that cannot be read (number {}: {e})",
                i + 1
            )
        })?;
    }
    Ok(())
}

/// `--max-attempts` has a clap default, so a value other than it is the
/// flag's (an explicit `--max-attempts 4` shows as the default: the same).
fn max_attempts(r: &mut Resolver<'_>, opts: &GlobalOpts) -> Result<u32, Error> {
    let n = opts.max_attempts.max(1);
    let flag = (n != crate::cli::DEFAULT_MAX_ATTEMPTS).then_some(n);
    let parse = |v: &str, _: &Source| {
        v.parse::<u32>()
            .map_err(|_| Error::Config(format!("{v:?} is not a number of attempts")))
    };
    Ok(r.typed(&table::MAX_ATTEMPTS, &parse, &u32::to_string)
        .flag(flag)
        .default(Some(n), Source::Default("tfsync's"))
        .get()?
        .unwrap_or(n))
}

/// `--max-state-size`: the largest state read from a file or a directory
/// store, in bytes (default 512 MiB).
pub(super) fn max_state_size(r: &mut Resolver<'_>, opts: &GlobalOpts) -> Result<u64, Error> {
    let parse = |v: &str, source: &Source| {
        crate::localfile::parse_size(v)
            .map_err(|e| Error::Config(format!("{}: {e}", var(&table::MAX_STATE_SIZE, source))))
    };
    Ok(r.typed(&table::MAX_STATE_SIZE, &parse, &u64::to_string)
        .flag(opts.max_state_size)
        .default(
            Some(crate::store::fs::DEFAULT_MAX_OBJECT_SIZE),
            Source::Default("512 MiB"),
        )
        .get()?
        .unwrap_or(crate::store::fs::DEFAULT_MAX_OBJECT_SIZE))
}
