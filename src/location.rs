//! Where backups and migrations go: locations written as URLs.
//!
//! - `s3://bucket/prefix`: a bucket (and a key prefix in it);
//! - `file:///dir`: a local directory;
//! - `az://account/container/prefix`: an Azure storage container (and a
//!   blob name prefix in it), with the account key or SAS token from where
//!   the azurerm backend takes them (`config::azure_side`);
//! - `NAME:bucket/prefix`: a bucket on the named remote of the config file
//!   (`$TFSYNC_CONFIG`, else `$XDG_CONFIG_HOME/tfsync/config.toml`, else
//!   `~/.config/tfsync/config.toml`):
//!
//! ```toml
//! [remotes.spaces]
//! endpoint = "https://fra1.digitaloceanspaces.com"
//! region = "fra1"
//! profile = "spaces"
//! ```
//!
//! The endpoint, region and profile of an `s3://` side come from the
//! command's `--to-endpoint`, `--to-region`, `--to-profile` (or `--from-*`),
//! then the remote, then the source's own settings: a location without any
//! of them is on the same server as the source. Connecting is
//! `store::open`'s (which also says what else a side inherits).

use crate::config::Target;
use crate::error::Error;
use crate::store::s3::S3Options;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A parsed location, before it is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 {
        bucket: String,
        prefix: String,
        /// The named remote it was written with, if any.
        remote: Option<String>,
    },
    Dir(PathBuf),
    /// `gs://bucket/prefix`: a Google Cloud Storage bucket (and a prefix
    /// in it).
    Gcs {
        bucket: String,
        prefix: String,
    },
    /// An Azure storage container.
    Azure {
        account: String,
        container: String,
        prefix: String,
    },
}

/// Per-side settings given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SideSettings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// One remote of the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Path-style addressing (always on for a custom endpoint).
    #[serde(default)]
    pub path_style: bool,
    /// The workspace key prefix of states there (`migrate --to-key`).
    pub workspace_key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    remotes: BTreeMap<String, Remote>,
}

impl Location {
    pub fn parse(text: &str) -> Result<Location, Error> {
        let bad = |why: &str| {
            Error::Config(format!(
                "location {text:?} {why}; write s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix, file:///dir or REMOTE:bucket/prefix"
            ))
        };
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("needs an absolute path (file:///dir)"));
            }
            return Ok(Location::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("gs://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("has no bucket"));
            }
            return Ok(Location::Gcs {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("az://") {
            let mut parts = rest.splitn(3, '/');
            let account = parts.next().unwrap_or_default();
            let container = parts.next().unwrap_or_default();
            let prefix = parts.next().unwrap_or_default();
            // Azure's rules: an account is 3-24 lowercase letters and
            // digits; a container 3-63 of those and `-`.
            let ok = |s: &str, max: usize, dash: bool| {
                (3..=max).contains(&s.len())
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || (dash && c == '-'))
            };
            if !ok(account, 24, false) {
                return Err(bad(
                    "has no valid storage account (3-24 lowercase letters and digits)",
                ));
            }
            if !ok(container, 63, true) {
                return Err(bad(
                    "has no valid container (3-63 lowercase letters, digits and -)",
                ));
            }
            return Ok(Location::Azure {
                account: account.to_string(),
                container: container.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let (remote, rest) = if let Some(rest) = text.strip_prefix("s3://") {
            (None, rest)
        } else if let Some((name, rest)) = text.split_once(':')
            && !name.is_empty()
            && !name.contains('/')
        {
            (Some(name.to_string()), rest.trim_start_matches("//"))
        } else {
            return Err(bad("has no scheme"));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("has no bucket"));
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            remote,
        })
    }

    /// The key prefix inside the store ("" for the whole bucket or directory).
    pub fn prefix(&self) -> &str {
        match self {
            Location::S3 { prefix, .. }
            | Location::Azure { prefix, .. }
            | Location::Gcs { prefix, .. } => prefix,
            Location::Dir(_) => "",
        }
    }
}

/// Read the remotes of the config file (none if there is no file).
pub fn remotes(env: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, Remote>, Error> {
    let path = match env("TFSYNC_CONFIG") {
        Some(p) => PathBuf::from(p),
        None => match env("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(x) => Path::new(&x).join("tfsync/config.toml"),
            None => match env("HOME") {
                Some(h) => Path::new(&h).join(".config/tfsync/config.toml"),
                None => return Ok(BTreeMap::new()),
            },
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let file: ConfigFile =
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(file.remotes)
}

/// The S3 settings of one side: flags, then the remote, then the source's.
pub fn s3_options(
    bucket: &str,
    remote: Option<&Remote>,
    side: &SideSettings,
    source: &Target,
    verbose: bool,
) -> S3Options {
    let src = match source {
        Target::S3(o) => Some(o),
        Target::Dir(_) | Target::Local(_) | Target::Azure(_) | Target::Gcs(_) => None,
    };
    let pick =
        |flag: &Option<String>, rem: Option<&Option<String>>, src: Option<&Option<String>>| {
            flag.clone()
                .or_else(|| rem.and_then(|r| r.clone()))
                .or_else(|| src.and_then(|s| s.clone()))
        };
    // A remote or a flag that names an endpoint starts a new side: the
    // source's region and profile do not carry over to it.
    let inherit = if own_endpoint(remote, side) {
        None
    } else {
        src
    };
    let endpoint = pick(
        &side.endpoint,
        remote.map(|r| &r.endpoint),
        inherit.map(|s| &s.endpoint),
    );
    let region = pick(
        &side.region,
        remote.map(|r| &r.region),
        inherit.map(|s| &s.region),
    );
    let profile = pick(
        &side.profile,
        remote.map(|r| &r.profile),
        inherit.map(|s| &s.profile),
    );
    let path_style = endpoint.is_some()
        || remote.is_some_and(|r| r.path_style)
        || inherit.is_some_and(|s| s.path_style);
    S3Options {
        bucket: bucket.to_string(),
        endpoint,
        region,
        profile,
        path_style,
        verbose,
        credentials: inherit.and_then(|s| s.credentials.clone()),
    }
}

/// The remote `name` of the config file (`None` when no name is given).
pub fn find_remote(
    name: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Remote>, Error> {
    let Some(name) = name else {
        return Ok(None);
    };
    let all = remotes(env)?;
    match all.get(name) {
        Some(r) => Ok(Some(r.clone())),
        None => Err(Error::Config(format!(
            "no remote named {name:?} in the config file (known: {}); add [remotes.{name}] with endpoint, region and profile to ~/.config/tfsync/config.toml or $TFSYNC_CONFIG",
            if all.is_empty() {
                "none".to_string()
            } else {
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        ))),
    }
}

/// Does the side name an endpoint of its own (a flag or its remote)? Then
/// it starts a new side: the source's region, profile and credentials do
/// not carry over to it.
fn own_endpoint(remote: Option<&Remote>, side: &SideSettings) -> bool {
    side.endpoint.is_some() || remote.is_some_and(|r| r.endpoint.is_some())
}

/// `prefix/key`, or `key` when the prefix is empty.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else if key.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("s3://b/p/q/").expect("ok"),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into(),
                remote: None
            }
        );
        assert_eq!(
            Location::parse("s3://b").expect("ok").prefix(),
            "",
            "no prefix"
        );
        assert_eq!(
            Location::parse("spaces:b/x").expect("ok"),
            Location::S3 {
                bucket: "b".into(),
                prefix: "x".into(),
                remote: Some("spaces".into())
            }
        );
        assert_eq!(
            Location::parse("file:///var/backups").expect("ok"),
            Location::Dir("/var/backups".into())
        );
        assert_eq!(
            Location::parse("az://acct1/tf-states/a/b/").expect("ok"),
            Location::Azure {
                account: "acct1".into(),
                container: "tf-states".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("az://acct1/tfstate").expect("ok").prefix(),
            ""
        );
        for bad in [
            "file://rel",
            "bucket/key",
            "s3://",
            "s3:///p",
            "",
            "az://",
            "az://acct1",
            "az://acct1/",
            "az://Acct/c-1",
            "az://a/cont",
            "az://acct1/UPPER",
            "az://acct1/c_1",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn side_settings_precedence() {
        let src = Target::S3(S3Options {
            bucket: "src".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("r1".into()),
            profile: Some("p1".into()),
            path_style: true,
            ..Default::default()
        });
        let same = s3_options("b", None, &SideSettings::default(), &src, false);
        assert_eq!(same.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(same.region.as_deref(), Some("r1"));
        let remote = Remote {
            endpoint: Some("https://x".into()),
            region: None,
            profile: Some("rp".into()),
            path_style: false,
            workspace_key_prefix: None,
        };
        let other = s3_options("b", Some(&remote), &SideSettings::default(), &src, false);
        assert_eq!(other.endpoint.as_deref(), Some("https://x"));
        assert_eq!(
            other.region, None,
            "a new server does not inherit the region"
        );
        assert_eq!(other.profile.as_deref(), Some("rp"));
        let side = SideSettings {
            endpoint: None,
            region: Some("r9".into()),
            profile: None,
        };
        let flags = s3_options("b", Some(&remote), &side, &src, false);
        assert_eq!(flags.region.as_deref(), Some("r9"));
    }

    #[test]
    fn remotes_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[remotes.spaces]\nendpoint = \"https://fra1.digitaloceanspaces.com\"\nregion = \"fra1\"\n",
        )
        .expect("write");
        let path = p.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "TFSYNC_CONFIG").then(|| path.clone());
        let r = remotes(&env).expect("read");
        assert_eq!(r["spaces"].region.as_deref(), Some("fra1"));
        std::fs::write(&p, "[remotes.x]\nendpont = \"typo\"\n").expect("write");
        assert!(remotes(&env).is_err(), "unknown fields are refused");
    }
}
