//! `--provider` presets: what each S3-compatible provider needs that its
//! users would otherwise have to know. A preset only fills in what no other
//! source set (it sits just above the defaults), except where the provider
//! leaves no choice (R2's and GCS's signing region, OSS's addressing).
//!
//! The presets are listed once, in [`Provider`]: `--provider`'s accepted
//! values and help, `TFSYNC_PROVIDER`'s parsing and the error naming the
//! choices all come from its `ValueEnum` derive.

use clap::ValueEnum;

/// A `--provider` preset; its clap name (`spaces`, `r2`...) is the lowercase
/// variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    Aws,
    Spaces,
    R2,
    Minio,
    Ceph,
    Oss,
    Gcs,
}

impl Provider {
    /// The name written on the command line and in `TFSYNC_PROVIDER`.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// Every preset's name, for messages: `aws, spaces, ... or gcs`.
    pub fn choices() -> String {
        let names: Vec<String> = Provider::value_variants()
            .iter()
            .map(|p| p.name())
            .collect();
        match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// A preset by name, ignoring case and surrounding blanks (as
    /// `TFSYNC_PROVIDER` is read); the error names every choice.
    pub fn parse(s: &str) -> Result<Provider, String> {
        Provider::from_str(s.trim(), true).map_err(|_| format!("use {}", Provider::choices()))
    }
}

/// What a preset decides, given the endpoint and region the other sources
/// found (`None` when none did).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: Option<String>,
    /// `Some` when the provider dictates the addressing style.
    pub path_style: Option<bool>,
    /// An extra header on create-only PUTs (the lock).
    pub create_only_header: Option<(String, String)>,
}

/// Apply `p` to the endpoint and region found so far. `env` reads the
/// process environment (for OSS's `ALICLOUD_*`).
pub fn apply(
    p: Provider,
    endpoint: Option<String>,
    region: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Applied, String> {
    let need_endpoint = |example: &str| {
        format!(
            "--provider {} needs an endpoint: --endpoint {example} (or TFSYNC_ENDPOINT, or endpoints.s3 in the backend block)",
            p.name()
        )
    };
    Ok(match p {
        Provider::Aws => Applied {
            endpoint,
            region,
            ..Default::default()
        },
        // DigitalOcean Spaces: the region is in the host; requests are
        // signed for us-east-1, as DigitalOcean documents for AWS SDKs.
        Provider::Spaces => {
            let endpoint = match (endpoint, &region) {
                (Some(e), _) => e,
                (None, Some(r)) => format!("https://{r}.digitaloceanspaces.com"),
                (None, None) => {
                    return Err(
                        "--provider spaces needs --region (the Spaces region, e.g. fra1) or --endpoint https://<region>.digitaloceanspaces.com".into(),
                    );
                }
            };
            Applied {
                endpoint: Some(endpoint),
                region: Some("us-east-1".into()),
                path_style: Some(true),
                ..Default::default()
            }
        }
        Provider::R2 => {
            Applied {
                endpoint: Some(endpoint.ok_or_else(|| {
                    need_endpoint("https://<account id>.r2.cloudflarestorage.com")
                })?),
                region: Some("auto".into()),
                path_style: Some(true),
                ..Default::default()
            }
        }
        Provider::Minio | Provider::Ceph => Applied {
            endpoint: Some(
                endpoint.ok_or_else(|| need_endpoint("https://s3.example.internal:9000"))?,
            ),
            region: Some(region.unwrap_or_else(|| "us-east-1".into())),
            path_style: Some(true),
            ..Default::default()
        },
        Provider::Gcs => Applied {
            endpoint: Some(endpoint.unwrap_or_else(|| "https://storage.googleapis.com".into())),
            region: Some("auto".into()),
            path_style: Some(true),
            create_only_header: Some(("x-goog-if-generation-match".into(), "0".into())),
        },
        // Alibaba Cloud OSS: virtual-hosted addressing only; its own
        // create-only header. Workspaces keep Terraform's prefix `env:`
        // (the oss backend's `prefix` default too).
        Provider::Oss => {
            let region = region.or_else(|| env("ALICLOUD_REGION").filter(|r| !r.trim().is_empty()));
            let endpoint = match endpoint
                .or_else(|| env("ALICLOUD_OSS_ENDPOINT").filter(|e| !e.trim().is_empty()))
            {
                Some(e) if e.starts_with("http://") || e.starts_with("https://") => e,
                Some(e) => format!("https://{e}"),
                None => match &region {
                    Some(r) => format!("https://oss-{r}.aliyuncs.com"),
                    None => {
                        return Err(
                            "--provider oss needs a region (--region, ALICLOUD_REGION) or an endpoint (--endpoint, ALICLOUD_OSS_ENDPOINT)".into(),
                        );
                    }
                },
            };
            Applied {
                endpoint: Some(endpoint),
                region,
                path_style: Some(false),
                create_only_header: Some(("x-oss-forbid-overwrite".into(), "true".into())),
            }
        }
    })
}

/// OSS credentials from `ALICLOUD_ACCESS_KEY` / `ALICLOUD_SECRET_KEY` /
/// `ALICLOUD_SECURITY_TOKEN`, when both key parts are set.
pub fn alicloud_credentials(
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<aws_credential_types::Credentials> {
    let id = env("ALICLOUD_ACCESS_KEY").filter(|v| !v.is_empty())?;
    let secret = env("ALICLOUD_SECRET_KEY").filter(|v| !v.is_empty())?;
    let token = env("ALICLOUD_SECURITY_TOKEN").filter(|v| !v.is_empty());
    Some(aws_credential_types::Credentials::new(
        id,
        secret,
        token,
        None,
        "alicloud-env",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        let none = |_: &str| None;
        let a = apply(Provider::Spaces, None, Some("fra1".into()), &none).expect("spaces");
        assert_eq!(
            a.endpoint.as_deref(),
            Some("https://fra1.digitaloceanspaces.com")
        );
        assert_eq!(a.region.as_deref(), Some("us-east-1"));
        assert!(apply(Provider::Spaces, None, None, &none).is_err());
        let a = apply(
            Provider::R2,
            Some("https://acc.r2.cloudflarestorage.com".into()),
            Some("eu".into()),
            &none,
        )
        .expect("r2");
        assert_eq!(a.region.as_deref(), Some("auto"));
        assert!(apply(Provider::R2, None, None, &none).is_err());
        assert!(apply(Provider::Minio, None, None, &none).is_err());
        let a = apply(Provider::Gcs, None, None, &none).expect("gcs");
        assert_eq!(
            a.endpoint.as_deref(),
            Some("https://storage.googleapis.com")
        );
        assert_eq!(
            a.create_only_header,
            Some(("x-goog-if-generation-match".into(), "0".into()))
        );
        let env = |k: &str| (k == "ALICLOUD_REGION").then(|| "cn-hangzhou".to_string());
        let a = apply(Provider::Oss, None, None, &env).expect("oss");
        assert_eq!(
            a.endpoint.as_deref(),
            Some("https://oss-cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(a.path_style, Some(false));
        assert_eq!(
            a.create_only_header,
            Some(("x-oss-forbid-overwrite".into(), "true".into()))
        );
        let env = |k: &str| match k {
            "ALICLOUD_ACCESS_KEY" => Some("ak".to_string()),
            "ALICLOUD_SECRET_KEY" => Some("sk".to_string()),
            _ => None,
        };
        assert!(alicloud_credentials(&env).is_some());
        assert!(alicloud_credentials(&none).is_none());
        assert_eq!(Provider::parse(" R2 "), Ok(Provider::R2));
        assert_eq!(
            Provider::parse("s3"),
            Err("use aws, spaces, r2, minio, ceph, oss or gcs".to_string())
        );
        for p in Provider::value_variants() {
            assert_eq!(Provider::parse(&p.name()), Ok(*p));
        }
    }
}
