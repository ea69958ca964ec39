//! The DynamoDB table of Terraform's s3 backend (`dynamodb_table`): where
//! the lock items and the state digests are, and its endpoint. Flag, then
//! the backend block and `terraform init`'s record, then the environment.

use super::Target;
use super::table::{self, Resolver, given};
use crate::cli::GlobalOpts;
use crate::error::Error;
use crate::store::dynamo::LockTableOptions;

pub(super) fn resolve(
    r: &mut Resolver<'_>,
    opts: &GlobalOpts,
    target: &Target,
    warnings: &mut Vec<String>,
) -> Result<Option<LockTableOptions>, Error> {
    for (flag, v) in [
        ("dynamodb-table", &opts.dynamodb_table),
        ("dynamodb-endpoint", &opts.dynamodb_endpoint),
    ] {
        if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Error::Config(format!(
                "--{flag} is empty: give it a value, or leave it out to use the other sources"
            )));
        }
    }
    let Some(name) = r
        .text(&table::DYNAMODB_TABLE)
        .flag(given(&opts.dynamodb_table))
        .get()?
    else {
        if opts.dynamodb_endpoint.is_some() {
            warnings.push(
                "--dynamodb-endpoint is set without a table (--dynamodb-table, TFSYNC_DYNAMODB_TABLE or dynamodb_table): it is not used".into(),
            );
        }
        return Ok(None);
    };
    let name = name.trim().to_string();
    if matches!(
        target,
        Target::Dir(_) | Target::Local(_) | Target::Azure(_) | Target::Gcs(_)
    ) {
        warnings.push(format!(
            "the DynamoDB table {name} does not apply to a directory store (--dir): it is not used"
        ));
        return Ok(None);
    }
    let endpoint = r
        .text(&table::DYNAMODB_ENDPOINT)
        .flag(given(&opts.dynamodb_endpoint))
        .get()?;
    if let Some(ep) = &endpoint {
        super::target::check_endpoint(ep, warnings)?;
    }
    Ok(Some(LockTableOptions {
        table: name,
        endpoint,
    }))
}
