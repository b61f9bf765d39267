//! Idempotency records, beside the meters under a partition key that is not a UUID; `expires_at` is the
//! table's TTL attribute.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};

use super::capacity::spend_write;
use super::errors::sdk_error;
use super::items::{idempotency_item, idempotency_record, number};
use super::keys::{ABSENT, ItemKey, PRESENT};
use super::table::Table;
use crate::domain::meter::{AccountId, Timestamp};
use crate::store::error::StoreError;
use crate::store::idempotency::{Claim, IdempotencyRecord, Meeting};
use crate::store::idempotency::{IdempotencyClaim, IdempotencyCompletion};

/// Rounds of claim and replace before a claim yields to the others contending for its key.
const CLAIM_ATTEMPTS: usize = 4;

/// What a claim's write requires of the key's record.
#[derive(Debug, Clone, Copy)]
enum Condition {
    /// That there is none.
    Free,
    /// That it is still the one seen, by its expiry.
    Unchanged(i64),
}

/// The idempotency records of one table.
#[derive(Debug, Clone)]
pub(super) struct IdempotencyRecords {
    table: Table,
}

impl IdempotencyRecords {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    pub(super) async fn claim(
        &self,
        account: &AccountId,
        claim: IdempotencyClaim<'_>,
    ) -> Result<Claim, StoreError> {
        let IdempotencyClaim {
            key,
            fingerprint,
            reserved,
            lease_until,
            now,
        } = claim;
        // First as if the key were free; if it is not, decide on the record found and replace it only if it
        // is still the one decided on (its expiry unchanged): of concurrent claims exactly one wins.
        let mut condition = Condition::Free;
        let mut bound_to = reserved;
        for _ in 0..CLAIM_ATTEMPTS {
            let record = IdempotencyRecord::claimed(fingerprint, bound_to, lease_until);
            let mut put = self
                .table
                .client()
                .put_item()
                .table_name(self.table.name())
                .set_item(Some(idempotency_item(account, key, &record)?))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            put = match condition {
                Condition::Free => put.condition_expression(ABSENT),
                Condition::Unchanged(expires_at) => put
                    .condition_expression("expires_at = :seen")
                    .expression_attribute_values(":seen", number(expires_at)),
            };
            let held = match put.send().await {
                Ok(output) => {
                    spend_write(output.consumed_capacity());
                    return Ok(Claim::Claimed { meter_id: bound_to });
                }
                Err(error) => match error.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                        match failed.item() {
                            Some(held) => idempotency_record(held.clone())?,
                            // Gone since it was seen (TTL): free again.
                            None => {
                                condition = Condition::Free;
                                bound_to = reserved;
                                continue;
                            }
                        }
                    }
                    _ => return Err(sdk_error(error)),
                },
            };
            match held.meet(fingerprint, reserved, now) {
                Meeting::Answer(claim) => return Ok(claim),
                Meeting::Replace(meter_id) => {
                    condition = Condition::Unchanged(held.expires_at);
                    bound_to = meter_id;
                }
            }
        }
        // Claims kept replacing each other under this one: another request has the key.
        Ok(Claim::InProgress)
    }

    pub(super) async fn complete(
        &self,
        account: &AccountId,
        completion: IdempotencyCompletion<'_>,
    ) -> Result<(), StoreError> {
        let IdempotencyCompletion {
            key,
            fingerprint,
            meter_id,
            answer,
            now,
        } = completion;
        let record = IdempotencyRecord::completed(fingerprint, meter_id, answer, now);
        let written = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(idempotency_item(account, key, &record)?))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        spend_write(written.consumed_capacity());
        Ok(())
    }

    pub(super) async fn end_lease(
        &self,
        account: &AccountId,
        key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ended = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(
                ItemKey::Idempotency {
                    account: *account,
                    key: key.to_owned(),
                }
                .item(),
            ))
            .update_expression("SET expires_at = :ended")
            // Only an unfinished claim: a completed record keeps its answer for its full time.
            .condition_expression(format!("{PRESENT} AND attribute_not_exists(answer)"))
            .expression_attribute_values(":ended", number(now.timestamp() - 1))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match ended {
            Ok(output) => {
                spend_write(output.consumed_capacity());
                Ok(())
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(sdk_error(error)),
        }
    }
}
