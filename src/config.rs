//! From parsed options to one validated `Config`.
//!
//! Precedence, first that has it wins: command-line flag; `TFSYNC_*`
//! variable (clap reads those); the standard AWS variables
//! (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, `AWS_PROFILE`); defaults.

use crate::cli::{GlobalOpts, OutputFormat};
use crate::error::{Error, MissingSetting};
use crate::store::s3::S3Options;
use crate::tfstate::keys;
use std::path::PathBuf;

/// Where the states live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    S3(S3Options),
    Dir(PathBuf),
}

/// What a command needs configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A bucket (or directory) and a state key.
    State,
    /// A bucket (or directory) only.
    Bucket,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub key: String,
    pub workspace: String,
    pub workspace_key_prefix: String,
    pub output: OutputFormat,
    pub quiet: bool,
    pub verbose: bool,
    /// Warnings found while resolving (printed by the caller).
    pub warnings: Vec<String>,
}

impl Config {
    /// Resolve `opts` with `env` as the process environment.
    pub fn resolve(
        opts: &GlobalOpts,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        Self::resolve_for(opts, env, Needs::State)
    }

    /// Like [`Config::resolve`], for a command that needs only `needs`: a
    /// bucket-wide command (`locks`, `force-unlock --all`) has no state key,
    /// and then `key` is empty.
    pub fn resolve_for(
        opts: &GlobalOpts,
        env: &dyn Fn(&str) -> Option<String>,
        needs: Needs,
    ) -> Result<Config, Error> {
        let env_nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let mut missing = Vec::new();
        let mut warnings = Vec::new();

        let bucket = nonempty(&opts.bucket);
        if bucket.is_none() && opts.dir.is_none() {
            missing.push(MissingSetting {
                name: "bucket",
                flag: "bucket",
                env: "TFSYNC_BUCKET",
            });
        }
        let key = match needs {
            Needs::State => nonempty(&opts.key),
            Needs::Bucket => Some(nonempty(&opts.key).unwrap_or_default()),
        };
        if key.is_none() {
            missing.push(MissingSetting {
                name: "state key",
                flag: "key",
                env: "TFSYNC_KEY",
            });
        }
        let (Some(key), true) = (key, missing.is_empty()) else {
            return Err(Error::MissingSettings(missing));
        };
        if needs == Needs::State || !key.is_empty() {
            keys::validate_key(&key).map_err(Error::Config)?;
        }

        let workspace = nonempty(&opts.workspace).unwrap_or_else(|| keys::DEFAULT_WORKSPACE.into());
        keys::validate_workspace(&workspace).map_err(Error::Config)?;
        // An empty prefix is meaningful (states at `W/<key>`), so only an unset one defaults.
        let workspace_key_prefix = opts
            .workspace_key_prefix
            .clone()
            .unwrap_or_else(|| keys::DEFAULT_WORKSPACE_KEY_PREFIX.into());
        keys::validate_prefix(&workspace_key_prefix).map_err(Error::Config)?;

        let target = match (&opts.dir, bucket) {
            (Some(dir), _) => Target::Dir(dir.clone()),
            (None, Some(bucket)) => {
                let endpoint = nonempty(&opts.endpoint)
                    .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
                    .or_else(|| env_nonempty("AWS_ENDPOINT_URL"));
                if let Some(ep) = &endpoint {
                    check_endpoint(ep, &mut warnings)?;
                }
                let region = nonempty(&opts.region)
                    .or_else(|| env_nonempty("AWS_REGION"))
                    .or_else(|| env_nonempty("AWS_DEFAULT_REGION"));
                let profile = nonempty(&opts.profile).or_else(|| env_nonempty("AWS_PROFILE"));
                // S3-compatible servers are addressed path-style: virtual hosts
                // rarely resolve for them (and never for an IP address).
                let path_style = opts.path_style || endpoint.is_some();
                Target::S3(S3Options {
                    bucket,
                    endpoint,
                    region,
                    profile,
                    path_style,
                    max_attempts: opts.max_attempts.max(1),
                    verbose: opts.verbose,
                    credentials: None,
                })
            }
            (None, None) => {
                return Err(Error::MissingSettings(vec![MissingSetting {
                    name: "bucket",
                    flag: "bucket",
                    env: "TFSYNC_BUCKET",
                }]));
            }
        };

        Ok(Config {
            target,
            key,
            workspace,
            workspace_key_prefix,
            output: opts.output,
            quiet: opts.quiet,
            verbose: opts.verbose,
            warnings,
        })
    }

    /// Attempts per request (1 for a directory store).
    pub fn max_attempts(&self) -> u32 {
        match &self.target {
            Target::S3(o) => o.max_attempts.max(1),
            Target::Dir(_) => 1,
        }
    }

    /// The key of the state of the configured workspace.
    pub fn state_key(&self) -> String {
        keys::state_key(&self.key, &self.workspace, &self.workspace_key_prefix)
    }
}

fn check_endpoint(ep: &str, warnings: &mut Vec<String>) -> Result<(), Error> {
    let rest = ep
        .strip_prefix("https://")
        .or_else(|| ep.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::Config(format!(
                "endpoint {ep:?} must start with http:// or https://"
            ))
        })?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() {
        return Err(Error::Config(format!("endpoint {ep:?} has no host")));
    }
    let hostname = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let loopback = hostname == "localhost"
        || hostname
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if ep.starts_with("http://") && !loopback {
        warnings.push(format!(
            "endpoint {ep} is plain http on a non-loopback host: requests and state contents travel unencrypted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(opts: GlobalOpts, env: &[(&str, &str)]) -> Result<Config, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve(&opts, &move |k| env.get(k).cloned())
    }

    fn base() -> GlobalOpts {
        GlobalOpts {
            bucket: Some("b".into()),
            key: Some("k.tfstate".into()),
            max_attempts: 4,
            ..Default::default()
        }
    }

    fn s3(c: &Config) -> &S3Options {
        match &c.target {
            Target::S3(o) => o,
            Target::Dir(_) => panic!("expected S3"),
        }
    }

    #[test]
    fn missing_values_are_named_together() {
        let err = resolve(GlobalOpts::default(), &[]).expect_err("error");
        let msg = err.to_string();
        assert!(msg.contains("--bucket or TFSYNC_BUCKET"), "{msg}");
        assert!(msg.contains("--key or TFSYNC_KEY"), "{msg}");
        assert_eq!(crate::exit::code(&err), crate::exit::USAGE);
    }

    #[test]
    fn endpoint_precedence() {
        let env = [
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:2"),
        ];
        let mut o = base();
        o.endpoint = Some("http://127.0.0.1:3".into());
        assert_eq!(
            s3(&resolve(o, &env).expect("ok")).endpoint.as_deref(),
            Some("http://127.0.0.1:3")
        );
        assert_eq!(
            s3(&resolve(base(), &env).expect("ok")).endpoint.as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            s3(&resolve(base(), &env[1..]).expect("ok"))
                .endpoint
                .as_deref(),
            Some("http://127.0.0.1:2")
        );
        let aws = resolve(base(), &[]).expect("ok");
        assert_eq!(s3(&aws).endpoint, None);
        assert!(
            !s3(&aws).path_style,
            "AWS keeps virtual-host addressing unless asked"
        );
        assert!(
            s3(&resolve(base(), &env).expect("ok")).path_style,
            "custom endpoints are path-style"
        );
    }

    #[test]
    fn region_and_profile_precedence() {
        let env = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-2"),
            ("AWS_PROFILE", "ops"),
        ];
        let mut o = base();
        o.region = Some("us-west-2".into());
        assert_eq!(
            s3(&resolve(o, &env).expect("ok")).region.as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            s3(&resolve(base(), &env).expect("ok")).region.as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            s3(&resolve(base(), &env[1..]).expect("ok"))
                .region
                .as_deref(),
            Some("eu-west-2")
        );
        assert_eq!(
            s3(&resolve(base(), &env).expect("ok")).profile.as_deref(),
            Some("ops")
        );
        let mut o = base();
        o.profile = Some("admin".into());
        assert_eq!(
            s3(&resolve(o, &env).expect("ok")).profile.as_deref(),
            Some("admin")
        );
    }

    #[test]
    fn workspace_keys() {
        let mut o = base();
        o.workspace = Some("dev".into());
        assert_eq!(
            resolve(o.clone(), &[]).expect("ok").state_key(),
            "env:/dev/k.tfstate"
        );
        o.workspace_key_prefix = Some("".into());
        assert_eq!(
            resolve(o.clone(), &[]).expect("ok").state_key(),
            "dev/k.tfstate"
        );
        o.workspace = Some("a/b".into());
        assert!(resolve(o, &[]).is_err());
    }

    #[test]
    fn endpoints_are_checked() {
        let mut o = base();
        o.endpoint = Some("ftp://x".into());
        assert!(resolve(o.clone(), &[]).is_err());
        o.endpoint = Some("http://s3.example.com".into());
        assert_eq!(resolve(o.clone(), &[]).expect("ok").warnings.len(), 1);
        o.endpoint = Some("http://[::1]:9000".into());
        assert!(resolve(o.clone(), &[]).expect("ok").warnings.is_empty());
        o.endpoint = Some("https://s3.example.com".into());
        assert!(resolve(o, &[]).expect("ok").warnings.is_empty());
    }
}
