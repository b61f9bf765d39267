//! Meter writes: create, update and delete, each one transaction with the account's head, conditional on
//! the meter's state, and each recognising its own earlier attempt when an answer was lost. Each records its
//! actor: on the meter (`created_by`, `updated_by`), or for a delete on the meter's tombstone.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::capacity::spend_write_all;
use super::client::Table;
use super::errors::{internal, sdk_error};
use super::items::{
    Item, actor_value, from_item, head_key, meter_key, name_sort, number, to_item, tombstone_key,
};
use super::schema::{
    COUNT_ATTRIBUTE, CREATED_BY_ATTRIBUTE, DELETED_AT_ATTRIBUTE, DELETED_BY_ATTRIBUTE,
    EXPIRES_AT_ATTRIBUTE, LIST_VERSION_ATTRIBUTE, NAME_SORT_ATTRIBUTE, RECENT_ATTRIBUTE,
    RECENT_CAP, RECENT_SINCE_ATTRIBUTE, TOMBSTONE_DAYS, UPDATED_BY_ATTRIBUTE, VERSION_ATTRIBUTE,
    WRITE_TOKEN_ATTRIBUTE,
};
use crate::domain::Actor;
use crate::domain::meter::{AccountId, Meter, MeterChanges, MeterId, NewMeter, ReadOnlyEcho, now};
use crate::domain::precondition::IfMatch;
use crate::store::error::{StoreError, read_only_mismatch};
use crate::store::meters::Created;
use crate::telemetry;

/// Attempts of a transaction that met another on the same account head.
const TRANSACTION_ATTEMPTS: u32 = 12;
/// Attempts of an update whose meter another write changed first. Each starts from the meter as the
/// refusal found it, so concurrent updates take turns; the request's deadline ends a longer run first.
const UPDATE_ATTEMPTS: u32 = 100;
/// Attempts of a delete, as the SDK's retry configuration gives other calls.
const DELETE_ATTEMPTS: u32 = 3;

/// Why a meter write's transaction did not land.
enum Refused {
    /// The meter item's condition failed; the item as it was, if there was one.
    Condition(Option<Item>),
    Store(StoreError),
}

/// What a meter write did to the meter (and its version now), and so to its account's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Added(MeterId, u64),
    Changed(MeterId, u64),
    Removed(MeterId),
}

impl Written {
    fn count_change(self) -> i64 {
        match self {
            Written::Added(..) => 1,
            Written::Changed(..) => 0,
            Written::Removed(_) => -1,
        }
    }

    /// The meter's entry in the head's recent changes: its id, and its version now (0: deleted).
    fn recent_entry(self) -> (MeterId, u64) {
        match self {
            Written::Added(id, version) | Written::Changed(id, version) => (id, version),
            Written::Removed(id) => (id, 0),
        }
    }
}

/// How a write moves the head's recent changes: adds its entry, or, when the map is full (or the head
/// has none yet), starts it afresh from the list version the head was at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecentChanges {
    Add,
    StartAfresh { seen: Option<u64> },
}

/// Whether the SDK retries a transaction whose answer was lost. A delete retries itself instead, because
/// it must know that an attempt went unanswered to read a missing item as its own success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SdkRetries {
    On,
    Off,
}

/// A pause before trying again after meeting another write: a few milliseconds, longer as attempts go on
/// (at most 100 ms), jittered so that writers that met do not meet again.
async fn contention_pause(attempt: u32) {
    let ceiling = (5u64 << attempt.min(5)).min(100);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % ceiling.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(ceiling / 2 + jitter / 2)).await;
}

impl Table {
    pub(super) async fn create_with_id(
        &self,
        account: &AccountId,
        id: MeterId,
        new: NewMeter,
        actor: &Actor,
    ) -> Result<Created, StoreError> {
        let meter = Meter::create(id, *account, new, now());
        let mut item = to_item(&meter)?;
        item.insert(CREATED_BY_ATTRIBUTE.into(), actor_value(actor)?);
        item.insert(UPDATED_BY_ATTRIBUTE.into(), actor_value(actor)?);
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            // Ids are reserved for one create, so an item under this key is this create's own earlier
            // attempt: the SDK's retry of a write whose answer was lost, or an idempotent retry.
            .condition_expression("attribute_not_exists(account_id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        match self
            .write_meter(
                account,
                vec![TransactWriteItem::builder().put(put).build()],
                Written::Added(id, meter.version),
                SdkRetries::On,
            )
            .await
        {
            Ok(()) => Ok(Created {
                meter,
                earlier_attempt: false,
            }),
            Err(Refused::Condition(Some(stored))) => Ok(Created {
                meter: from_item(stored)?,
                earlier_attempt: true,
            }),
            Err(Refused::Condition(None)) => Err(internal(format!(
                "meter {id} could not be written and nothing stands under its key"
            ))),
            Err(Refused::Store(error)) => Err(error),
        }
    }

    pub(super) async fn update(
        &self,
        account: &AccountId,
        id: MeterId,
        changes: MeterChanges,
        read_only: ReadOnlyEcho,
        if_match: IfMatch,
        actor: &Actor,
    ) -> Result<Meter, StoreError> {
        // Check and write on the condition that the version read is still the stored one: the answer is
        // then exactly the meter as written. A write in between refuses it and hands back the meter as it
        // is now, and the update goes again from there: only a precondition the request asked for can fail
        // it, never another writer.
        let Some(mut stored) = self.read_meter(account, id).await? else {
            return Err(self.missing(account, id).await?);
        };
        for attempt in 1..=UPDATE_ATTEMPTS {
            if !if_match.allows(stored.version) {
                return Err(StoreError::PreconditionFailed(id));
            }
            if let Some(mismatch) = read_only_mismatch(&read_only, &stored) {
                return Err(mismatch);
            }
            let updated = stored.with_changes(&changes, now());
            // This write's own mark: if its answer is lost and the SDK's retry fails its condition
            // because the first attempt already landed, the item carries the mark.
            let write_token = uuid::Uuid::new_v4().to_string();
            let write =
                self.update_item(account, &stored, &changes, &updated, &write_token, actor)?;
            match self
                .write_meter(
                    account,
                    vec![write],
                    Written::Changed(id, updated.version),
                    SdkRetries::On,
                )
                .await
            {
                Ok(()) => return Ok(updated),
                Err(Refused::Condition(Some(now_stored)))
                    if now_stored
                        .get(WRITE_TOKEN_ATTRIBUTE)
                        .and_then(|token| token.as_s().ok())
                        == Some(&write_token) =>
                {
                    return from_item(now_stored);
                }
                Err(Refused::Condition(Some(now_stored))) => {
                    stored = from_item(now_stored)?;
                    contention_pause(attempt).await;
                }
                Err(Refused::Condition(None)) => return Err(self.missing(account, id).await?),
                Err(Refused::Store(error)) => return Err(error),
            }
        }
        // Contention, not an outage: not counted as the store's failure.
        Err(StoreError::Unavailable(
            format!("meter {id} changed under {UPDATE_ATTEMPTS} attempts to update it").into(),
        ))
    }

    pub(super) async fn delete(
        &self,
        account: &AccountId,
        id: MeterId,
        if_match: IfMatch,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut condition = "attribute_exists(account_id)".to_owned();
        if let Some(version) = version_condition(&if_match, &mut names, &mut values) {
            condition.push_str(&format!(" AND {version}"));
        }
        let delete = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(meter_key(account, id)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names).filter(|names| !names.is_empty()))
            .set_expression_attribute_values(Some(values).filter(|values| !values.is_empty()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        let delete = TransactWriteItem::builder().delete(delete).build();
        let tombstone = self.tombstone(account, id, actor)?;
        // Retried here rather than by the SDK: after an attempt whose outcome is unknown (no answer), a
        // retry that finds no item means that attempt deleted it.
        let mut outcome_unknown = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self
                .write_meter(
                    account,
                    vec![delete.clone(), tombstone.clone()],
                    Written::Removed(id),
                    SdkRetries::Off,
                )
                .await
            {
                Ok(()) => return Ok(()),
                // The meter is there: only its version can have failed the condition.
                Err(Refused::Condition(Some(_))) => return Err(StoreError::PreconditionFailed(id)),
                Err(Refused::Condition(None)) => {
                    return match self.missing(account, id).await? {
                        StoreError::NotFound(_) if outcome_unknown => Ok(()),
                        missing => Err(missing),
                    };
                }
                Err(Refused::Store(failure)) => failure,
            };
            if !matches!(failure, StoreError::Unavailable(_)) || attempt == DELETE_ATTEMPTS {
                return Err(failure);
            }
            outcome_unknown = true;
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }

    /// Who deleted the meter and when, beside it in the delete's transaction; gone after `TOMBSTONE_DAYS`.
    fn tombstone(
        &self,
        account: &AccountId,
        id: MeterId,
        actor: &Actor,
    ) -> Result<TransactWriteItem, StoreError> {
        let at = now();
        let mut item = tombstone_key(account, id);
        item.insert(DELETED_BY_ATTRIBUTE.into(), actor_value(actor)?);
        item.insert(
            DELETED_AT_ATTRIBUTE.into(),
            serde_dynamo::to_attribute_value(at).map_err(internal)?,
        );
        item.insert(
            EXPIRES_AT_ATTRIBUTE.into(),
            number(at.timestamp() + TOMBSTONE_DAYS * 86_400),
        );
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The update of a meter read as `stored`: sets and removes only the fields in `changes`, on the
    /// condition that the stored version is still the one read.
    fn update_item(
        &self,
        account: &AccountId,
        stored: &Meter,
        changes: &MeterChanges,
        updated: &Meter,
        write_token: &str,
        actor: &Actor,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        names.insert("#write".into(), WRITE_TOKEN_ATTRIBUTE.into());
        values.insert(":write".into(), AttributeValue::S(write_token.to_owned()));
        names.insert("#next".into(), VERSION_ATTRIBUTE.into());
        values.insert(
            ":next".into(),
            AttributeValue::N(updated.version.to_string()),
        );
        names.insert("#updated_by".into(), UPDATED_BY_ATTRIBUTE.into());
        values.insert(":updated_by".into(), actor_value(actor)?);
        let mut sets = vec![
            "#write = :write".to_owned(),
            "#next = :next".to_owned(),
            "#updated_by = :updated_by".to_owned(),
        ];
        let mut removes = Vec::new();
        // Fields to clear serialise as NULL and become REMOVE; the rest are set.
        let mut changed: Item = serde_dynamo::to_item(changes).map_err(internal)?;
        changed.insert(
            "updated_at".into(),
            serde_dynamo::to_attribute_value(updated.updated_at).map_err(internal)?,
        );
        if changes.name.is_some() {
            changed.insert(NAME_SORT_ATTRIBUTE.into(), name_sort(updated));
        }
        for (n, (field, value)) in changed.into_iter().enumerate() {
            names.insert(format!("#c{n}"), field);
            if value.is_null() {
                removes.push(format!("#c{n}"));
            } else {
                values.insert(format!(":c{n}"), value);
                sets.push(format!("#c{n} = :c{n}"));
            }
        }
        let read = IfMatch::Versions(vec![stored.version]);
        let mut condition = "attribute_exists(account_id)".to_owned();
        if let Some(version) = version_condition(&read, &mut names, &mut values) {
            condition.push_str(&format!(" AND {version}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = Update::builder()
            .table_name(&self.name)
            .set_key(Some(meter_key(account, stored.id)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Writes a meter (the first of `writes`, whose condition decides the outcome; the rest go with it) and,
    /// in the same transaction, moves the account's head: its count as `written` says, its list version by
    /// one. A transaction that met another on the same head is tried again.
    async fn write_meter(
        &self,
        account: &AccountId,
        writes: Vec<TransactWriteItem>,
        written: Written,
        retries: SdkRetries,
    ) -> Result<(), Refused> {
        let head_at = writes.len();
        let mut recent = RecentChanges::Add;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let head = self
                .head_update(account, written, recent)
                .map_err(Refused::Store)?;
            let mut call = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .transact_items(head)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .customize();
            if retries == SdkRetries::Off {
                call = call.config_override(
                    aws_sdk_dynamodb::config::Builder::default()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
                );
            }
            let error = match call.send().await {
                Ok(output) => {
                    spend_write_all(output.consumed_capacity());
                    return Ok(());
                }
                Err(error) => error,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                error.as_service_error()
            else {
                return Err(Refused::Store(sdk_error(error)));
            };
            let reasons = cancelled.cancellation_reasons();
            let code = |at: usize| reasons.get(at).and_then(|reason| reason.code());
            if code(0) == Some("ConditionalCheckFailed") {
                let item = reasons.first().and_then(|reason| reason.item()).cloned();
                return Err(Refused::Condition(item));
            }
            if code(head_at) == Some("ConditionalCheckFailed") && attempt < TRANSACTION_ATTEMPTS {
                // The recent changes are full, missing, or were started afresh by another write since
                // this one looked: go again from the head as the refusal found it.
                let seen = reasons
                    .get(head_at)
                    .and_then(|reason| reason.item())
                    .and_then(|head| head.get(LIST_VERSION_ATTRIBUTE))
                    .and_then(|version| version.as_n().ok())
                    .and_then(|version| version.parse().ok());
                recent = match recent {
                    RecentChanges::Add => RecentChanges::StartAfresh { seen },
                    RecentChanges::StartAfresh { .. } => RecentChanges::Add,
                };
                continue;
            }
            let any = |codes: &[&str]| {
                reasons
                    .iter()
                    .any(|reason| reason.code().is_some_and(|code| codes.contains(&code)))
            };
            if any(&["ThrottlingError", "ProvisionedThroughputExceeded"]) {
                telemetry::note_store_throttled();
                return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
            }
            if !any(&["TransactionConflict"]) {
                return Err(Refused::Store(sdk_error(error)));
            }
            // Another write of the same account holds its head: contention, not an outage.
            if attempt >= TRANSACTION_ATTEMPTS {
                return Err(Refused::Store(StoreError::Unavailable(Box::new(error))));
            }
            contention_pause(attempt).await;
        }
    }

    /// The head's part of a meter write: its count as `written` says, its list version by one, and the
    /// meter's entry in its recent changes (`schema::RECENT_ATTRIBUTE`), added or, when `recent` says so,
    /// in a map started afresh.
    fn head_update(
        &self,
        account: &AccountId,
        written: Written,
        recent: RecentChanges,
    ) -> Result<TransactWriteItem, StoreError> {
        let (id, version) = written.recent_entry();
        let update = Update::builder()
            .table_name(&self.name)
            .set_key(Some(head_key(account)))
            .expression_attribute_names("#count", COUNT_ATTRIBUTE)
            .expression_attribute_names("#version", LIST_VERSION_ATTRIBUTE)
            .expression_attribute_names("#recent", RECENT_ATTRIBUTE)
            .expression_attribute_values(":change", number(written.count_change()))
            .expression_attribute_values(":one", number(1))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match recent {
            RecentChanges::Add => update
                .update_expression("ADD #count :change, #version :one SET #recent.#id = :entry")
                .condition_expression("attribute_exists(#recent) AND size(#recent) < :cap")
                .expression_attribute_names("#id", id.get().to_string())
                .expression_attribute_values(":entry", AttributeValue::N(version.to_string()))
                .expression_attribute_values(":cap", number(RECENT_CAP as i64)),
            RecentChanges::StartAfresh { seen } => {
                let fresh =
                    HashMap::from([(id.get().to_string(), AttributeValue::N(version.to_string()))]);
                let update = update
                    .update_expression(
                        "ADD #count :change, #version :one SET #recent = :fresh, #since = :seen",
                    )
                    .expression_attribute_names("#since", RECENT_SINCE_ATTRIBUTE)
                    .expression_attribute_values(":fresh", AttributeValue::M(fresh))
                    .expression_attribute_values(":seen", number(seen.unwrap_or(0) as i64));
                // Only from the version it saw: every write after it is then in the fresh map.
                match seen {
                    Some(_) => update.condition_expression("#version = :seen"),
                    None => update.condition_expression("attribute_not_exists(#version)"),
                }
            }
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(internal)?)
            .build())
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
