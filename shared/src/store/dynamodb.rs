//! The production store: one DynamoDB table, partition key `account_id` (S), sort key `id` (N), one item per
//! meter with attributes named as the JSON fields (unset fields absent). Ids come from one counter item;
//! a keys-only index on `id` tells another account's meter (403) from no meter (404).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType,
};

use super::{
    BoxError, Claim, IdempotencyRecord, IfMatch, MeterStore, RememberedAnswer, StoreError,
    read_only_mismatch,
};
use crate::meter::{
    self, AccountId, Meter, MeterChanges, MeterId, NewMeter, ReadOnlyEcho, Timestamp,
    VERSION_ATTRIBUTE,
};

type Item = HashMap<String, AttributeValue>;

/// The keys-only global secondary index on `id`.
pub const ID_INDEX: &str = "id-index";
/// The counter item's partition key: not a UUID, so it can never collide with an account.
const COUNTER_PARTITION: &str = "#meter-id-counter";
const COUNTER_ATTRIBUTE: &str = "last_id";
/// Idempotency records' partition keys begin with this; accounts are UUIDs, so they never do.
const IDEMPOTENCY_PREFIX: &str = "#idempotency#";
/// The mark each update leaves on the item, to recognise its own write after a lost answer.
const WRITE_TOKEN_ATTRIBUTE: &str = "last_write";
/// Attempts of a delete, as the SDK's retry configuration gives other calls.
const DELETE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    /// Wraps a client built once per process (see `lambda::dynamodb_client`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table as the SAM template declares it, unless it exists (local development and tests).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(error) => return Err(sdk_error(error)),
        }
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(ID_INDEX)
            .key_schema(key("id", KeyType::Hash).map_err(internal)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(internal)?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("account_id", KeyType::Hash).map_err(internal)?)
            .key_schema(key("id", KeyType::Range).map_err(internal)?)
            .attribute_definitions(
                attribute("account_id", ScalarAttributeType::S).map_err(internal)?,
            )
            .attribute_definitions(attribute("id", ScalarAttributeType::N).map_err(internal)?)
            .global_secondary_indexes(index)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// After a miss in the caller's account: 403 if the id lives in another account, else 404. The index
    /// is eventually consistent, so it may still list a meter of the caller's own account that was just
    /// deleted: that is 404 too.
    async fn missing(&self, account: &AccountId, id: MeterId) -> Result<StoreError, StoreError> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ID_INDEX)
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", number(id.get()))
            .limit(1)
            .send()
            .await
            .map_err(sdk_error)?;
        let owner = found
            .items()
            .first()
            .and_then(|item| item.get("account_id"))
            .and_then(|owner| owner.as_s().ok());
        Ok(match owner {
            Some(owner) if *owner != account.to_string() => StoreError::OtherAccount(id),
            _ => StoreError::NotFound(id),
        })
    }

    fn key(account: &AccountId, id: MeterId) -> Item {
        HashMap::from([
            ("account_id".into(), AttributeValue::S(account.to_string())),
            ("id".into(), number(id.get())),
        ])
    }
}

#[async_trait]
impl MeterStore for DynamoDbStore {
    async fn create(&self, account: &AccountId, new: NewMeter) -> Result<Meter, StoreError> {
        let counter = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("account_id", AttributeValue::S(COUNTER_PARTITION.into()))
            .key("id", number(0))
            .update_expression("ADD #last :one")
            .expression_attribute_names("#last", COUNTER_ATTRIBUTE)
            .expression_attribute_values(":one", number(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_error)?;
        let last = counter
            .attributes()
            .and_then(|item| item.get(COUNTER_ATTRIBUTE))
            .and_then(|value| value.as_n().ok());
        let id = last
            .and_then(|n| n.parse().ok())
            .and_then(|n| MeterId::new(n).ok())
            .ok_or_else(|| internal("the id counter returned no id"))?;
        let meter = Meter::create(id, *account, new, meter::now());
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&meter)?))
            // The counter never repeats, so an item under this key is either this request's own earlier
            // attempt (its answer lost, the SDK retried) or someone writing the table by hand.
            .condition_expression("attribute_not_exists(account_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written {
            Ok(_) => Ok(meter),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    match failed
                        .item()
                        .map(|item| from_item(item.clone()))
                        .transpose()?
                    {
                        Some(stored) if stored == meter => Ok(meter),
                        _ => Err(internal(format!(
                            "meter {id} was already written by another hand"
                        ))),
                    }
                }
                _ => Err(sdk_error(error)),
            },
        }
    }

    async fn get(&self, account: &AccountId, id: MeterId) -> Result<Meter, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(account, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match output.item {
            Some(item) => from_item(item),
            None => Err(self.missing(account, id).await?),
        }
    }

    async fn list(&self, account: &AccountId) -> Result<Vec<Meter>, StoreError> {
        let mut meters = Vec::new();
        let mut start_key = None;
        // DynamoDB returns at most 1 MB a page; keep asking until it gives no `LastEvaluatedKey`.
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("account_id = :account")
                .expression_attribute_values(":account", AttributeValue::S(account.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                meters.push(from_item(item)?);
            }
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                return Ok(meters);
            }
        }
    }

    async fn update(
        &self,
        account: &AccountId,
        id: MeterId,
        changes: MeterChanges,
        read_only: ReadOnlyEcho,
        if_match: IfMatch,
    ) -> Result<Meter, StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        // This write's own mark: if its answer is lost and the SDK's retry fails its condition because the
        // first attempt already landed, the item carries the mark and the update is reported as done.
        let write_token = uuid::Uuid::new_v4().to_string();
        names.insert("#write".into(), WRITE_TOKEN_ATTRIBUTE.into());
        values.insert(":write".into(), AttributeValue::S(write_token.clone()));
        let mut sets = vec!["#write = :write".to_owned()];
        let mut removes = Vec::new();
        // Fields to clear serialise as NULL and become REMOVE; the rest are set.
        let mut changed: Item = serde_dynamo::to_item(&changes).map_err(internal)?;
        changed.insert(
            "updated_at".into(),
            serde_dynamo::to_attribute_value(meter::now()).map_err(internal)?,
        );
        for (n, (field, value)) in changed.into_iter().enumerate() {
            names.insert(format!("#c{n}"), field);
            if value.is_null() {
                removes.push(format!("#c{n}"));
            } else {
                values.insert(format!(":c{n}"), value);
                sets.push(format!("#c{n} = :c{n}"));
            }
        }
        let mut conditions = vec!["attribute_exists(account_id)".to_owned()];
        if let Some(condition) = version_condition(&if_match, &mut names, &mut values) {
            conditions.push(condition);
        }
        let echoed: Item = serde_dynamo::to_item(&read_only).map_err(internal)?;
        for (n, (field, value)) in echoed.into_iter().enumerate() {
            names.insert(format!("#r{n}"), field);
            values.insert(format!(":r{n}"), value);
            conditions.push(format!("#r{n} = :r{n}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        names.insert("#version".into(), VERSION_ATTRIBUTE.into());
        values.insert(":one".into(), number(1));
        expression.push_str(" ADD #version :one");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(account, id)))
            .update_expression(expression)
            .condition_expression(conditions.join(" AND "))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => from_item(output.attributes.unwrap_or_default()),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    match failed.item() {
                        // The meter is there, so its version or a read-only echo differed; the old item
                        // says which.
                        Some(old)
                            if old.get(WRITE_TOKEN_ATTRIBUTE).and_then(|t| t.as_s().ok())
                                == Some(&write_token) =>
                        {
                            from_item(old.clone())
                        }
                        Some(old) => {
                            let stored = from_item(old.clone())?;
                            if !if_match.allows(stored.version) {
                                return Err(StoreError::PreconditionFailed(id));
                            }
                            Err(read_only_mismatch(&read_only, &stored).unwrap_or_else(|| {
                                internal("conditional update failed with no differing field")
                            }))
                        }
                        None => Err(self.missing(account, id).await?),
                    }
                }
                _ => Err(sdk_error(error)),
            },
        }
    }

    async fn claim_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let record = IdempotencyRecord::claimed(fingerprint, now);
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(account, key, &record)?))
            // Free, or only an expired record (TTL deletes lazily): of concurrent claims exactly one wins.
            .condition_expression("attribute_not_exists(account_id) OR expires_at < :now")
            .expression_attribute_values(":now", number(now.timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(Claim::Claimed),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let held = failed
                        .item()
                        .ok_or_else(|| internal("a held idempotency key came back empty"))?;
                    Ok(idempotency_record(held.clone())?.claim_against(fingerprint))
                }
                _ => Err(sdk_error(error)),
            },
        }
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        answer: &RememberedAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let record = IdempotencyRecord::completed(fingerprint, answer, now);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(account, key, &record)?))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(account, key)))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn delete(
        &self,
        account: &AccountId,
        id: MeterId,
        if_match: IfMatch,
    ) -> Result<(), StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut condition = "attribute_exists(account_id)".to_owned();
        if let Some(version) = version_condition(&if_match, &mut names, &mut values) {
            condition.push_str(&format!(" AND {version}"));
        }
        // Retried here rather than by the SDK: after an attempt whose outcome is unknown (no answer), a
        // retry that finds no item means that attempt deleted it.
        let mut outcome_unknown = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(account, id)))
                .condition_expression(condition.clone())
                .set_expression_attribute_names(
                    Some(names.clone()).filter(|names| !names.is_empty()),
                )
                .set_expression_attribute_values(
                    Some(values.clone()).filter(|values| !values.is_empty()),
                )
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .customize()
                .config_override(
                    aws_sdk_dynamodb::config::Builder::default()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
                )
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            match error.as_service_error() {
                // The meter is there: only its version can have failed the condition.
                Some(DeleteItemError::ConditionalCheckFailedException(failed))
                    if failed.item().is_some() =>
                {
                    return Err(StoreError::PreconditionFailed(id));
                }
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                    return match self.missing(account, id).await? {
                        StoreError::NotFound(_) if outcome_unknown => Ok(()),
                        missing => Err(missing),
                    };
                }
                _ => {}
            }
            let failure = sdk_error(error);
            if !matches!(failure, StoreError::Unavailable(_)) || attempt == DELETE_ATTEMPTS {
                return Err(failure);
            }
            outcome_unknown = true;
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }
}

/// The condition `If-Match` adds to a write: the version is one of those named. Items written before
/// versions existed have no version attribute, and count as version 0.
fn version_condition(
    if_match: &IfMatch,
    names: &mut HashMap<String, String>,
    values: &mut Item,
) -> Option<String> {
    let IfMatch::Versions(versions) = if_match else {
        return None;
    };
    names.insert("#version".into(), VERSION_ATTRIBUTE.into());
    if versions.is_empty() {
        // Nothing named matches this meter: a condition that no item meets.
        values.insert(":no_version".into(), number(-1));
        return Some("#version = :no_version".into());
    }
    let mut alternatives = Vec::new();
    let mut named = Vec::new();
    for (n, version) in versions.iter().take(100).enumerate() {
        if *version == 0 {
            alternatives.push("attribute_not_exists(#version)".to_owned());
        }
        values.insert(format!(":v{n}"), AttributeValue::N(version.to_string()));
        named.push(format!(":v{n}"));
    }
    alternatives.push(format!("#version IN ({})", named.join(", ")));
    Some(format!("({})", alternatives.join(" OR ")))
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Idempotency records live beside the meters under a partition key that is not a UUID, so it can never be
/// an account's; `expires_at` is the table's TTL attribute.
fn idempotency_key(account: &AccountId, key: &str) -> Item {
    HashMap::from([
        (
            "account_id".into(),
            AttributeValue::S(format!("{IDEMPOTENCY_PREFIX}{account}#{key}")),
        ),
        ("id".into(), number(0)),
    ])
}

fn idempotency_item(
    account: &AccountId,
    key: &str,
    record: &IdempotencyRecord,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.extend(idempotency_key(account, key));
    Ok(item)
}

fn idempotency_record(mut item: Item) -> Result<IdempotencyRecord, StoreError> {
    item.remove("account_id");
    item.remove("id");
    serde_dynamo::from_item(item).map_err(internal)
}

/// The meter's item: attributes named as its JSON fields, unset fields absent rather than NULL, and its
/// version.
fn to_item(meter: &Meter) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(meter).map_err(internal)?;
    item.retain(|_, value| !value.is_null());
    item.insert(
        VERSION_ATTRIBUTE.into(),
        AttributeValue::N(meter.version.to_string()),
    );
    Ok(item)
}

fn from_item(mut item: Item) -> Result<Meter, StoreError> {
    let version = match item.remove(VERSION_ATTRIBUTE) {
        Some(AttributeValue::N(n)) => n.parse().map_err(internal)?,
        _ => 0,
    };
    let mut meter: Meter = serde_dynamo::from_item(item).map_err(internal)?;
    meter.version = version;
    Ok(meter)
}

/// Throttling, timeouts and unreachable endpoints may pass (503); everything else is a failure (500).
fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    const TRANSIENT_CODES: [&str; 7] = [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
        "TransactionInProgressException",
    ];
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    };
    let error: BoxError = Box::new(error);
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Internal(error)
    }
}

fn internal(error: impl Into<BoxError>) -> StoreError {
    StoreError::Internal(error.into())
}
