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

use super::errors::{internal, sdk_error};
use super::keys::{PARTITION_KEY, SORT_KEY};
use super::table::Table;
use crate::store::error::StoreError;

/// The keys-only global secondary index on `id`: tells another account's meter (403) from no meter (404).
pub const ID_INDEX: &str = "id-index";
/// The local secondary indexes of the sorts whose first pages are read without the account: by name
/// (lower-cased, as the sort compares it) and by creation time (fixed-width, so text order is time order).
pub const NAME_INDEX: &str = "name-index";
pub const CREATED_INDEX: &str = "created-index";
pub(super) const NAME_SORT_ATTRIBUTE: &str = "sort_name";
pub(super) const CREATED_SORT_ATTRIBUTE: &str = "sort_created";
/// The id counter's last id handed out in a block (`ids`).
pub const COUNTER_ATTRIBUTE: &str = "last_id";
/// The TTL attribute: idempotency records carry their expiry, and DynamoDB deletes them after it.
pub const EXPIRES_AT_ATTRIBUTE: &str = "expires_at";
/// The mark each update leaves on the item, to recognise its own write after a lost answer.
pub(super) const WRITE_TOKEN_ATTRIBUTE: &str = "last_write";
/// Where a meter's version (the ETag's source) is kept, and a tombstone's version deleted.
pub(super) const VERSION_ATTRIBUTE: &str = "version";
/// The meter's fields that readings set (named as its JSON fields, as every field of the meter's item is).
pub(super) const READING_VALUE_ATTRIBUTE: &str = "last_reading_value";
pub(super) const READING_AT_ATTRIBUTE: &str = "last_reading_at";
/// How many readings the readings path applied to a meter (with the version, the ETag's source).
pub(super) const READINGS_ATTRIBUTE: &str = "readings";
/// `true` on a meter item whose last write was a reading, removed by every metadata write: the change events'
/// stream filter lets no reading's record through to `meter-events` (template.yaml, `TableStream`).
pub const WRITTEN_BY_READING_ATTRIBUTE: &str = "written_by_reading";
/// A meter's `last_reading_at` at fixed width, which a reading's `at` must be later than to apply.
pub(super) const READING_SORT_ATTRIBUTE: &str = "sort_reading";
/// Who created a meter and who last changed it (`{sub, client_id}` maps), kept on its item.
pub const CREATED_BY_ATTRIBUTE: &str = "created_by";
pub const UPDATED_BY_ATTRIBUTE: &str = "updated_by";
/// A deleted meter's tombstone (`ItemKey::Tombstone`), written in the delete's transaction: who deleted it
/// and when, for the change event (the stream's record of a delete holds only the item as it was), and the
/// version deleted (`VERSION_ATTRIBUTE`). It never expires: in the id index, it keeps the id its account's,
/// and a restore of the meter comes back past its version, so no version, ETag or change event repeats.
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
        key_schema: vec![key(PARTITION_KEY, "HASH"), key(attribute_name, "RANGE")],
        projection: IndexProjection {
            projection_type: "ALL",
        },
    };
    TableProperties {
        billing_mode: "PAY_PER_REQUEST",
        attribute_definitions: vec![
            attribute(PARTITION_KEY, "S"),
            attribute(SORT_KEY, "N"),
            attribute(NAME_SORT_ATTRIBUTE, "S"),
            attribute(CREATED_SORT_ATTRIBUTE, "S"),
        ],
        key_schema: vec![key(PARTITION_KEY, "HASH"), key(SORT_KEY, "RANGE")],
        global_secondary_indexes: vec![IndexDef {
            index_name: ID_INDEX,
            key_schema: vec![key(SORT_KEY, "HASH")],
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

impl TableProperties {
    /// Creates `table` as these properties declare it, unless it exists (local development, tests).
    pub async fn create_if_missing(&self, table: &Table) -> Result<(), StoreError> {
        match table
            .client()
            .describe_table()
            .table_name(table.name())
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
        let mut create = table
            .client()
            .create_table()
            .table_name(table.name())
            .billing_mode(BillingMode::from(self.billing_mode))
            .set_key_schema(Some(keys(&self.key_schema)?))
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(
                        self.stream_specification.stream_view_type,
                    ))
                    .build()
                    .map_err(internal)?,
            );
        for attribute in &self.attribute_definitions {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute.attribute_name)
                    .attribute_type(ScalarAttributeType::from(attribute.attribute_type))
                    .build()
                    .map_err(internal)?,
            );
        }
        for index in &self.global_secondary_indexes {
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.index_name)
                    .set_key_schema(Some(keys(&index.key_schema)?))
                    .projection(projection(index))
                    .build()
                    .map_err(internal)?,
            );
        }
        for index in &self.local_secondary_indexes {
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
        let ttl = &self.time_to_live_specification;
        table
            .client()
            .update_time_to_live()
            .table_name(table.name())
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
