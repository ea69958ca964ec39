//! The DynamoDB table of Terraform's s3 backend (`dynamodb_table`) through
//! `aws-sdk-dynamodb`: the few item operations the lock items and the state
//! digests need, nothing about what they mean (that is `tfstate::dynamo`).
//!
//! The client is built from the same SDK configuration as the bucket's S3
//! client ([`sdk_config`]): the same credentials chain (never instance
//! metadata when an endpoint of its own or the bucket's is set), region,
//! retry attempts and waits, CA bundle; its own rate limiter at the same
//! rate (the limit is per server). Every item is keyed by the string
//! attribute `LockID`, the table's hash key.

use super::s3::{S3Options, SdkFailure, TransportOptions, rate_limiter, sdk_config, sdk_failure};
use super::{Result, StoreError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The table's hash key, as Terraform's docs create it.
pub const HASH_KEY: &str = "LockID";

/// Which table, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTableOptions {
    pub table: String,
    /// `None`: DynamoDB of the region (AWS itself).
    pub endpoint: Option<String>,
}

/// The string attributes of one item (attributes of other types are left
/// out: Terraform writes strings only).
pub type Item = BTreeMap<String, String>;

/// One DynamoDB table, reachable.
#[derive(Debug, Clone)]
pub struct LockTable {
    client: Client,
    table: String,
    verbose: bool,
    limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
}

/// What a failed request was doing, for the error mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A PutItem conditional on the item not existing.
    Create,
    /// A DeleteItem conditional on an attribute's value.
    DeleteIf,
    Other,
}

impl LockTable {
    /// Make the client (no request is sent). `bucket` gives the credentials,
    /// region and profile (the S3 endpoint only decides whether instance
    /// metadata may be asked for credentials).
    pub async fn connect(
        opts: &LockTableOptions,
        bucket: &S3Options,
        transport: &TransportOptions,
    ) -> Result<Self> {
        let location = format!("dynamodb://{}", opts.table);
        let custom = bucket.endpoint.is_some() || opts.endpoint.is_some();
        let sdk = sdk_config(bucket, transport, custom, &location).await?;
        let mut conf = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(ep) = &opts.endpoint {
            conf = conf.endpoint_url(ep);
        }
        Ok(LockTable {
            client: Client::from_conf(conf.build()),
            table: opts.table.clone(),
            verbose: bucket.verbose,
            limiter: rate_limiter(transport),
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// `dynamodb://table`, for messages.
    pub fn describe(&self) -> String {
        format!("dynamodb://{}", self.table)
    }

    /// Where one item is, for messages: `dynamodb://table/<LockID>`.
    pub fn location(&self, lock_id: &str) -> String {
        format!("dynamodb://{}/{lock_id}", self.table)
    }

    /// The SDK client, for tests and set-up scripts.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn pace(&self) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
    }

    fn log(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("tfsync: {what}");
        }
    }

    /// PutItem `attrs` at `lock_id` only if no item has that LockID
    /// (`attribute_not_exists(LockID)`): `AlreadyExists` otherwise.
    pub async fn put_new(&self, lock_id: &str, attrs: &[(&str, &str)]) -> Result<()> {
        self.put_item(lock_id, attrs, true).await
    }

    /// PutItem `attrs` at `lock_id`, replacing any item there.
    pub async fn put(&self, lock_id: &str, attrs: &[(&str, &str)]) -> Result<()> {
        self.put_item(lock_id, attrs, false).await
    }

    async fn put_item(&self, lock_id: &str, attrs: &[(&str, &str)], create: bool) -> Result<()> {
        self.pace().await;
        self.log(format_args!(
            "DynamoDB PutItem {}{}",
            self.location(lock_id),
            if create {
                " if attribute_not_exists(LockID)"
            } else {
                ""
            }
        ));
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(HASH_KEY, AttributeValue::S(lock_id.to_string()));
        for (k, v) in attrs {
            req = req.item(*k, AttributeValue::S(v.to_string()));
        }
        if create {
            req = req.condition_expression("attribute_not_exists(LockID)");
        }
        let op = if create { Op::Create } else { Op::Other };
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(lock_id, e, op))
    }

    /// GetItem (strongly consistent) at `lock_id`: its string attributes,
    /// or `None` when there is no item.
    pub async fn get(&self, lock_id: &str) -> Result<Option<Item>> {
        self.pace().await;
        self.log(format_args!(
            "DynamoDB GetItem {} (consistent)",
            self.location(lock_id)
        ));
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(HASH_KEY, AttributeValue::S(lock_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.map_err(lock_id, e, Op::Other))?;
        Ok(out.item.filter(|i| !i.is_empty()).map(strings))
    }

    /// DeleteItem at `lock_id` only if its attribute `attr` is exactly
    /// `value`: `Precondition` otherwise (another value, or no item).
    pub async fn delete_if(&self, lock_id: &str, attr: &str, value: &str) -> Result<()> {
        self.pace().await;
        self.log(format_args!(
            "DynamoDB DeleteItem {} if {attr} = <{} bytes>",
            self.location(lock_id),
            value.len()
        ));
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(HASH_KEY, AttributeValue::S(lock_id.to_string()))
            .condition_expression("#a = :v")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":v", AttributeValue::S(value.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(lock_id, e, Op::DeleteIf))
    }

    /// DeleteItem at `lock_id`, unconditionally (a missing item is fine).
    pub async fn delete(&self, lock_id: &str) -> Result<()> {
        self.pace().await;
        self.log(format_args!(
            "DynamoDB DeleteItem {}",
            self.location(lock_id)
        ));
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(HASH_KEY, AttributeValue::S(lock_id.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(lock_id, e, Op::Other))
    }

    /// Every item whose LockID starts with `prefix` (a Scan filtered with
    /// `begins_with`, all pages, consistent), sorted by LockID.
    pub async fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Item)>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            self.pace().await;
            self.log(format_args!(
                "DynamoDB Scan {} where begins_with(LockID, {prefix:?}){}",
                self.describe(),
                if start.is_some() { " (next page)" } else { "" }
            ));
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#k, :p)")
                .expression_attribute_names("#k", HASH_KEY)
                .expression_attribute_values(":p", AttributeValue::S(prefix.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.map_err("", e, Op::Other))?;
            for item in page.items.unwrap_or_default() {
                let item = strings(item);
                if let Some(id) = item.get(HASH_KEY).cloned() {
                    out.push((id, item));
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Create the table (hash key `LockID`, a string; on-demand billing) if
    /// it does not exist, and wait until it is active (tests, demo).
    pub async fn create_if_missing(&self) -> Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TableStatus,
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Other {
            location: self.describe(),
            message: e.to_string(),
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(HASH_KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(built)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(HASH_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(built)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(self.map_err("", e, Op::Other)),
        }
        for _ in 0..100 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.map_err("", e, Op::Other))?;
            if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(StoreError::Other {
            location: self.describe(),
            message: "the table did not become ACTIVE within 10 s".into(),
        })
    }

    fn map_err<E>(
        &self,
        lock_id: &str,
        err: SdkError<E, aws_smithy_runtime_api::http::Response>,
        op: Op,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let location = if lock_id.is_empty() {
            self.describe()
        } else {
            self.location(lock_id)
        };
        let SdkFailure { status, code } = match sdk_failure(
            &err,
            &location,
            "Check --dynamodb-endpoint (AWS_ENDPOINT_URL_DYNAMODB) and that the server is up",
            |what| self.log(what),
        ) {
            Ok(failure) => failure,
            Err(early) => return early,
        };
        let message = err
            .message()
            .filter(|m| !m.trim().is_empty())
            .map(str::to_string)
            .or_else(|| code.clone())
            .unwrap_or_else(|| format!("the server answered {}", status.unwrap_or(0)));
        match (code.as_deref(), status, op) {
            (Some("ConditionalCheckFailedException"), _, Op::Create) => {
                StoreError::AlreadyExists { location }
            }
            (Some("ConditionalCheckFailedException"), _, _) => {
                StoreError::Precondition { location }
            }
            (Some("ResourceNotFoundException"), _, _) => StoreError::Other {
                location: self.describe(),
                message: format!(
                    "the DynamoDB table {} does not exist (or is not visible with these credentials in this region): check --dynamodb-table and --dynamodb-endpoint, or create it with the hash key LockID (string)",
                    self.table
                ),
            },
            (
                Some(
                    "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "MissingAuthenticationTokenException",
                ),
                _,
                _,
            )
            | (_, Some(401 | 403), _) => StoreError::AccessDenied { location, message },
            (_, Some(s), _) if s >= 500 => StoreError::Transport {
                location,
                message: format!(
                    "server error {s} {} after retries",
                    code.as_deref().unwrap_or("")
                ),
            },
            _ => StoreError::Other { location, message },
        }
    }
}

fn strings(item: HashMap<String, AttributeValue>) -> Item {
    item.into_iter()
        .filter_map(|(k, v)| match v {
            AttributeValue::S(s) => Some((k, s)),
            _ => None,
        })
        .collect()
}
