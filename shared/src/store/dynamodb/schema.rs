//! The table: its keys, indexes and the attributes the store reads and writes besides the meters' own.
//! `table_definition()` is the schema, written once: the table is created from it (the local server, tests,
//! benchmarks), and `scripts/tests/test_template_storage.py` compares the template's table with its dump
//! (`meters-local table-definition`).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use serde::Serialize;

use super::client::Table;
use super::errors::{internal, sdk_error};
use crate::store::error::StoreError;

/// The keys-only global secondary index on `id`: tells another account's meter (403) from no meter (404).
pub const ID_INDEX: &str = "id-index";
/// The local secondary indexes of the sorts whose first pages are read without the account: by name
/// (lower-cased, as the sort compares it) and by creation time (fixed-width, so text order is time order).
pub const NAME_INDEX: &str = "name-index";
pub const CREATED_INDEX: &str = "created-index";
pub(super) const NAME_SORT_ATTRIBUTE: &str = "sort_name";
pub(super) const CREATED_SORT_ATTRIBUTE: &str = "sort_created";
/// The counter item's partition key: not a UUID, so it can never collide with an account.
pub const COUNTER_PARTITION: &str = "#meter-id-counter";
pub const COUNTER_ATTRIBUTE: &str = "last_id";
/// The account's head: its sort key (meter ids are positive), meter count and list version.
pub(super) const HEAD_ID: i64 = 0;
pub const COUNT_ATTRIBUTE: &str = "meter_count";
pub const LIST_VERSION_ATTRIBUTE: &str = "list_version";
/// The account's recent changes, on its head: for each meter written since list version `recent_since`, an
/// attribute `r<id>` holding its version now (0 once deleted), and `recent_count`, the writes since. Every
/// meter write sets its entry in the same transaction that moves the head, so a process holding the
/// account's listing at a version from `recent_since` on brings it current by reading only the meters the
/// entries say changed (`refresh`). At `RECENT_CAP` writes one starts them afresh, which keeps the head
/// under 1 KB (one write unit). Top-level attributes rather than a map, so that a new account's first write
/// can add its entry to a head that does not exist yet.
pub(super) const RECENT_ENTRY_PREFIX: &str = "r";
pub(super) const RECENT_COUNT_ATTRIBUTE: &str = "recent_count";
pub(super) const RECENT_SINCE_ATTRIBUTE: &str = "recent_since";
pub const RECENT_CAP: usize = 32;
/// Idempotency records' partition keys begin with this; accounts are UUIDs, so they never do.
pub(super) const IDEMPOTENCY_PREFIX: &str = "#idempotency#";
/// The TTL attribute: idempotency records carry their expiry, and DynamoDB deletes them after it.
pub const EXPIRES_AT_ATTRIBUTE: &str = "expires_at";
/// The mark each update leaves on the item, to recognise its own write after a lost answer.
pub(super) const WRITE_TOKEN_ATTRIBUTE: &str = "last_write";
/// Where a meter's version (the ETag's source) is kept; items written before versions existed read as 0.
pub(super) const VERSION_ATTRIBUTE: &str = "version";
/// Who created a meter and who last changed it (`{sub, client_id}` maps), kept on its item.
pub const CREATED_BY_ATTRIBUTE: &str = "created_by";
pub const UPDATED_BY_ATTRIBUTE: &str = "updated_by";
/// A deleted meter's tombstone, written in the delete's transaction at the negated id of its account's
/// partition (no list of meters reads ids below 1): who deleted it and when, for the change event (the
/// stream's record of a delete holds only the item as it was), and the version deleted (`VERSION_ATTRIBUTE`).
/// It never expires: in the id index under the negated id, it keeps the id its account's, and a restore of
/// the meter comes back past its version, so no version, ETag or change event of the meter repeats.
pub const DELETED_BY_ATTRIBUTE: &str = "deleted_by";
pub const DELETED_AT_ATTRIBUTE: &str = "deleted_at";

/// The table as CloudFormation's `AWS::DynamoDB::Table` properties name it: the parts the store depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableProperties {
    pub billing_mode: &'static str,
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    pub global_secondary_indexes: Vec<IndexDef>,
    pub local_secondary_indexes: Vec<IndexDef>,
    pub time_to_live_specification: TimeToLive,
    pub stream_specification: Stream,
}

/// The table's stream, which the change events read: every change with the item before and after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stream {
    pub stream_view_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: &'static str,
    /// `S` or `N`.
    pub attribute_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: &'static str,
    /// `HASH` or `RANGE`.
    pub key_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: &'static str,
    pub key_schema: Vec<KeyDef>,
    pub projection: IndexProjection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexProjection {
    /// `KEYS_ONLY` or `ALL`.
    pub projection_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    pub attribute_name: &'static str,
    pub enabled: bool,
}

/// The schema: one on-demand table, partition key `account_id` (S), sort key `id` (N), the id index and the
/// two sort indexes, the TTL of idempotency records and tombstones, and a stream of new and old images.
pub fn table_definition() -> TableProperties {
    let key = |attribute_name, key_type| KeyDef {
        attribute_name,
        key_type,
    };
    let attribute = |attribute_name, attribute_type| AttributeDef {
        attribute_name,
        attribute_type,
    };
    let sort_index = |index_name, attribute_name| IndexDef {
        index_name,
        key_schema: vec![key("account_id", "HASH"), key(attribute_name, "RANGE")],
        projection: IndexProjection {
            projection_type: "ALL",
        },
    };
    TableProperties {
        billing_mode: "PAY_PER_REQUEST",
        attribute_definitions: vec![
            attribute("account_id", "S"),
            attribute("id", "N"),
            attribute(NAME_SORT_ATTRIBUTE, "S"),
            attribute(CREATED_SORT_ATTRIBUTE, "S"),
        ],
        key_schema: vec![key("account_id", "HASH"), key("id", "RANGE")],
        global_secondary_indexes: vec![IndexDef {
            index_name: ID_INDEX,
            key_schema: vec![key("id", "HASH")],
            projection: IndexProjection {
                projection_type: "KEYS_ONLY",
            },
        }],
        local_secondary_indexes: vec![
            sort_index(NAME_INDEX, NAME_SORT_ATTRIBUTE),
            sort_index(CREATED_INDEX, CREATED_SORT_ATTRIBUTE),
        ],
        time_to_live_specification: TimeToLive {
            attribute_name: EXPIRES_AT_ATTRIBUTE,
            enabled: true,
        },
        stream_specification: Stream {
            stream_view_type: "NEW_AND_OLD_IMAGES",
        },
    }
}

impl Table {
    /// Creates the table as `table_definition()` declares it, unless it exists (local development, tests).
    pub async fn create_if_missing(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.name)
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
        let definition = table_definition();
        let keys = |keys: &[KeyDef]| {
            keys.iter()
                .map(|key| {
                    KeySchemaElement::builder()
                        .attribute_name(key.attribute_name)
                        .key_type(KeyType::from(key.key_type))
                        .build()
                        .map_err(internal)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let projection = |index: &IndexDef| {
            Projection::builder()
                .projection_type(ProjectionType::from(index.projection.projection_type))
                .build()
        };
        let mut create = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::from(definition.billing_mode))
            .set_key_schema(Some(keys(&definition.key_schema)?))
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(
                        definition.stream_specification.stream_view_type,
                    ))
                    .build()
                    .map_err(internal)?,
            );
        for attribute in &definition.attribute_definitions {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute.attribute_name)
                    .attribute_type(ScalarAttributeType::from(attribute.attribute_type))
                    .build()
                    .map_err(internal)?,
            );
        }
        for index in &definition.global_secondary_indexes {
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.index_name)
                    .set_key_schema(Some(keys(&index.key_schema)?))
                    .projection(projection(index))
                    .build()
                    .map_err(internal)?,
            );
        }
        for index in &definition.local_secondary_indexes {
            create = create.local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name(index.index_name)
                    .set_key_schema(Some(keys(&index.key_schema)?))
                    .projection(projection(index))
                    .build()
                    .map_err(internal)?,
            );
        }
        create.send().await.map_err(sdk_error)?;
        let ttl = &definition.time_to_live_specification;
        self.client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl.attribute_name)
                    .enabled(ttl.enabled)
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
