//! Meter writes: create, update and delete, each one transaction with the account's head, conditional on
//! the meter's state, and each recognising its own earlier attempt when an answer was lost. Each records its
//! actor: on the meter (`created_by`, `updated_by`), or for a delete on the meter's tombstone, which also
//! keeps the version deleted and the id's account for good.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::errors::internal;
use super::head::Written;
use super::items::{actor_value, from_item, name_sort, time_sort, to_item};
use super::keys::{ABSENT, Item, ItemKey, PRESENT};
use super::reads::MeterReads;
use super::schema::{
    CREATED_BY_ATTRIBUTE, DELETED_AT_ATTRIBUTE, DELETED_BY_ATTRIBUTE, NAME_SORT_ATTRIBUTE,
    READING_SORT_ATTRIBUTE, READINGS_ATTRIBUTE, UPDATED_BY_ATTRIBUTE, VERSION_ATTRIBUTE,
    WRITE_TOKEN_ATTRIBUTE, WRITTEN_BY_READING_ATTRIBUTE,
};
use super::table::Table;
use super::transaction::{MeterTransactions, Refused, SdkRetries, contention_pause};
use crate::domain::Actor;
use crate::domain::meter::{AccountId, Change, Meter, MeterChanges, MeterId, now};
use crate::store::error::{StoreError, read_only_mismatch};
use crate::store::meters::Created;
use crate::store::meters::{CreateMeterRequest, DeleteMeterRequest, UpdateMeterRequest};

/// Attempts of an update whose meter another write changed first. Each starts from the meter as the
/// refusal found it, so concurrent updates take turns; the request's deadline ends a longer run first.
const UPDATE_ATTEMPTS: u32 = 100;
/// Attempts of a delete the store did not answer, as the SDK's retry configuration gives other calls.
const DELETE_ATTEMPTS: u32 = 3;

/// Creates, updates and deletes of meters in one table.
#[derive(Debug, Clone)]
pub(super) struct MeterWrites {
    table: Table,
    reads: MeterReads,
    transactions: MeterTransactions,
}

impl MeterWrites {
    pub(super) fn new(table: Table) -> Self {
        Self {
            reads: MeterReads::new(table.clone()),
            transactions: MeterTransactions::new(table.clone()),
            table,
        }
    }

    pub(super) async fn create_with_id(
        &self,
        account: &AccountId,
        create: CreateMeterRequest,
    ) -> Result<Created, StoreError> {
        let CreateMeterRequest {
            id,
            meter: new,
            actor,
        } = create;
        let actor = &actor;
        let meter = Meter::create(id, *account, new, now());
        let mut item = to_item(&meter)?;
        item.insert(CREATED_BY_ATTRIBUTE.into(), actor_value(actor)?);
        item.insert(UPDATED_BY_ATTRIBUTE.into(), actor_value(actor)?);
        let put = Put::builder()
            .table_name(self.table.name())
            .set_item(Some(item))
            // Ids are reserved for one create, so an item under this key is this create's own earlier
            // attempt: the SDK's retry of a write whose answer was lost, or an idempotent retry.
            .condition_expression(ABSENT)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        match self
            .transactions
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
        update: UpdateMeterRequest,
    ) -> Result<Meter, StoreError> {
        let UpdateMeterRequest {
            id,
            changes,
            read_only,
            if_match,
            actor,
        } = update;
        let actor = &actor;
        // Check and write on the condition that the version read is still the stored one: the answer is
        // then exactly the meter as written. A write in between refuses it and hands back the meter as it
        // is now, and the update goes again from there: only a precondition the request asked for can fail
        // it, never another writer.
        let Some(mut stored) = self.reads.read(account, id).await? else {
            return Err(self.reads.missing(account, id).await?);
        };
        for attempt in 1..=UPDATE_ATTEMPTS {
            if !if_match.allows(&stored) {
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
                .transactions
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
                Err(Refused::Condition(None)) => {
                    return Err(self.reads.missing(account, id).await?);
                }
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
        delete: DeleteMeterRequest,
    ) -> Result<(), StoreError> {
        let DeleteMeterRequest {
            id,
            if_match,
            actor,
        } = delete;
        let actor = &actor;
        // Read first, and delete on the condition that the meter is still as read: the tombstone then
        // records exactly the version deleted, which a restore must go past.
        let Some(mut stored) = self.reads.read(account, id).await? else {
            return Err(self.reads.missing(account, id).await?);
        };
        // Retried here rather than by the SDK: after an attempt whose outcome is unknown (no answer), a
        // retry that finds no item means that attempt deleted it.
        let mut outcome_unknown = false;
        let mut unavailable = 0;
        for attempt in 1..=UPDATE_ATTEMPTS {
            if !if_match.allows(&stored) {
                return Err(StoreError::PreconditionFailed(id));
            }
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let condition = unchanged_since_read(&stored, &mut names, &mut values);
            let delete = Delete::builder()
                .table_name(self.table.name())
                .set_key(Some(ItemKey::Meter(*account, id).item()))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(internal)?;
            let delete = TransactWriteItem::builder().delete(delete).build();
            let tombstone = self.tombstone(account, id, stored.version, actor)?;
            let failure = match self
                .transactions
                .write_meter(
                    account,
                    vec![delete, tombstone],
                    Written::Removed(id),
                    SdkRetries::Off,
                )
                .await
            {
                Ok(()) => return Ok(()),
                // Another write came between: check the request's precondition against the meter now.
                Err(Refused::Condition(Some(now_stored))) => {
                    stored = from_item(now_stored)?;
                    contention_pause(attempt).await;
                    continue;
                }
                Err(Refused::Condition(None)) => {
                    return match self.reads.missing(account, id).await? {
                        StoreError::NotFound(_) if outcome_unknown => Ok(()),
                        missing => Err(missing),
                    };
                }
                Err(Refused::Store(failure)) => failure,
            };
            unavailable += 1;
            if !matches!(failure, StoreError::Unavailable(_)) || unavailable == DELETE_ATTEMPTS {
                return Err(failure);
            }
            outcome_unknown = true;
            tokio::time::sleep(std::time::Duration::from_millis(50 << unavailable)).await;
        }
        Err(StoreError::Unavailable(
            format!("meter {id} changed under {UPDATE_ATTEMPTS} attempts to delete it").into(),
        ))
    }

    /// Who deleted the meter, when, and its version deleted, beside it in the delete's transaction. Kept
    /// for good: it retires the id to its account (an import gives it to no other) and tells a restore
    /// which version the meter comes back past.
    fn tombstone(
        &self,
        account: &AccountId,
        id: MeterId,
        version: u64,
        actor: &Actor,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = ItemKey::Tombstone(*account, id).item();
        item.insert(DELETED_BY_ATTRIBUTE.into(), actor_value(actor)?);
        item.insert(
            DELETED_AT_ATTRIBUTE.into(),
            serde_dynamo::to_attribute_value(now()).map_err(internal)?,
        );
        item.insert(
            VERSION_ATTRIBUTE.into(),
            AttributeValue::N(version.to_string()),
        );
        let put = Put::builder()
            .table_name(self.table.name())
            .set_item(Some(item))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The update of a meter read as `stored`: sets and removes only the fields in `changes`, on the
    /// condition that the meter is still as read.
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
        // A metadata write's stream record goes to the change events: the mark of a reading goes.
        names.insert("#by_reading".into(), WRITTEN_BY_READING_ATTRIBUTE.into());
        let mut removes = vec!["#by_reading".to_owned()];
        // Fields to clear serialise as NULL and become REMOVE; the rest are set.
        let mut changed: Item = serde_dynamo::to_item(changes).map_err(internal)?;
        changed.insert(
            "updated_at".into(),
            serde_dynamo::to_attribute_value(updated.updated_at).map_err(internal)?,
        );
        if changes.name.is_some() {
            changed.insert(NAME_SORT_ATTRIBUTE.into(), name_sort(updated));
        }
        // A `PUT` of `last_reading_at` moves what a reading must be later than (or clears it).
        match changes.last_reading_at {
            Change::Keep => {}
            Change::Clear => {
                changed.insert(READING_SORT_ATTRIBUTE.into(), AttributeValue::Null(true));
            }
            Change::Set(at) => {
                changed.insert(READING_SORT_ATTRIBUTE.into(), time_sort(at));
            }
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
        let condition = unchanged_since_read(stored, &mut names, &mut values);
        let mut expression = format!("SET {}", sets.join(", "));
        expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        let update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(ItemKey::Meter(*account, stored.id).item()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// The condition that the meter is still as `stored` was read: present, its version and readings unchanged
/// (a reading in between changes what a write must answer, and what `If-Match` compared).
fn unchanged_since_read(
    stored: &Meter,
    names: &mut HashMap<String, String>,
    values: &mut Item,
) -> String {
    names.insert("#version".into(), VERSION_ATTRIBUTE.into());
    names.insert("#readings".into(), READINGS_ATTRIBUTE.into());
    values.insert(
        ":read_version".into(),
        AttributeValue::N(stored.version.to_string()),
    );
    values.insert(
        ":read_readings".into(),
        AttributeValue::N(stored.readings.to_string()),
    );
    // An item written before readings came has no count, which reads as 0.
    let readings = if stored.readings == 0 {
        "(attribute_not_exists(#readings) OR #readings = :read_readings)"
    } else {
        "#readings = :read_readings"
    };
    format!("{PRESENT} AND #version = :read_version AND {readings}")
}
