//! Idempotency records, beside the meters under a partition key that is not a UUID; `expires_at` is the
//! table's TTL attribute.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};

use super::capacity::spend_write;
use super::client::Table;
use super::errors::{internal, sdk_error};
use super::items::{idempotency_item, idempotency_key, idempotency_record, number};
use crate::domain::meter::{AccountId, Timestamp};
use crate::store::error::StoreError;
use crate::store::idempotency::{Claim, IdempotencyRecord, RememberedAnswer};

impl Table {
    pub(super) async fn claim_idempotent(
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
            .table_name(&self.name)
            .set_item(Some(idempotency_item(account, key, &record)?))
            // Free, or only an expired record (TTL deletes lazily): of concurrent claims exactly one wins.
            .condition_expression("attribute_not_exists(account_id) OR expires_at < :now")
            .expression_attribute_values(":now", number(now.timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match claimed {
            Ok(output) => {
                spend_write(output.consumed_capacity());
                Ok(Claim::Claimed)
            }
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

    pub(super) async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        answer: &RememberedAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let record = IdempotencyRecord::completed(fingerprint, answer, now);
        let written = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(idempotency_item(account, key, &record)?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_write(written.consumed_capacity());
        Ok(())
    }

    pub(super) async fn release_idempotent(
        &self,
        account: &AccountId,
        key: &str,
    ) -> Result<(), StoreError> {
        let released = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(idempotency_key(account, key)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_write(released.consumed_capacity());
        Ok(())
    }
}
