//! The meter: what is stored and returned, what a create brings, what an update changes. Every field is
//! listed once, in `meter_fields!` below, with its type and role; the model, the change set of an update,
//! the read-only echoes, the body parsers, the sort keys and the field lists the rest of the crate uses
//! all come from that one list.

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::fields::*;
use super::json::JsonObject;
use super::sort_key::{SortKey, SortValue};
use crate::domain::field_error::FieldError;

/// A sortable field: its name in `sortBy` and how a meter's value of it compares.
#[derive(Debug, Clone, Copy)]
pub struct SortableField {
    pub name: &'static str,
    pub key: fn(&Meter) -> Option<SortKey>,
}

/// Generates everything that follows from the field list; the roles:
/// - `assigned`: given by the store and the request (`id`, `account_id`); never in a body's changes.
/// - `renamable`: required on create, changeable on update, never cleared.
/// - `fixed`: chosen on create (required, or defaulted with `= value`), read-only afterwards.
/// - `optional`: nullable, settable on create and update; `null` clears.
/// - `stamps`: set by the store (`created_at`, `updated_at`), read-only.
/// - `sortable`: the fields `sortBy` accepts, in the order the error message lists them.
macro_rules! meter_fields {
    (
        assigned { $($assigned:ident: $assigned_ty:ty),+ $(,)? }
        renamable { $($renamable:ident: $renamable_ty:ty),+ $(,)? }
        fixed { $($fixed:ident: $fixed_ty:ty $(= $fixed_default:expr)?),+ $(,)? }
        optional { $($optional:ident: $optional_ty:ty),+ $(,)? }
        stamps { $($stamp:ident),+ $(,)? }
        sortable { $($sortable:ident),+ $(,)? }
    ) => {
        /// A meter as stored and as every endpoint returns it: every field present, `null` where unset.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Meter {
            $(pub $assigned: $assigned_ty,)+
            $(pub $renamable: $renamable_ty,)+
            $(pub $fixed: $fixed_ty,)+
            $(pub $optional: Option<$optional_ty>,)+
            $(pub $stamp: Timestamp,)+
            /// Raised by every metadata write (create, update, delete), never repeated over the meter's life;
            /// the change events carry it. Not part of the JSON: the stores keep it beside the meter.
            #[serde(skip)]
            pub version: u64,
            /// Readings applied to the meter by the readings path (`crate::domain::reading`), which change
            /// its representation but not its metadata. With `version`, what the ETag is made of. Not part
            /// of the JSON.
            #[serde(skip)]
            pub readings: u64,
        }

        impl Meter {
            /// Every field, in the order the JSON shows them.
            pub const FIELDS: &'static [&'static str] = &[
                $(stringify!($assigned),)+ $(stringify!($renamable),)+ $(stringify!($fixed),)+
                $(stringify!($optional),)+ $(stringify!($stamp),)+
            ];
            /// What an update may change.
            pub const MUTABLE_FIELDS: &'static [&'static str] =
                &[$(stringify!($renamable),)+ $(stringify!($optional),)+];
            /// What an update may echo with its current value but never change.
            pub const READ_ONLY_FIELDS: &'static [&'static str] =
                &["id", $(stringify!($fixed),)+ $(stringify!($stamp),)+];
            /// The fields `sortBy` accepts.
            pub const SORTABLE: &'static [SortableField] = &[$(SortableField {
                name: stringify!($sortable),
                key: |meter| SortValue::sort_key(&meter.$sortable),
            },)+];

            /// A new meter: what the caller chose, every optional field it did not choose unset.
            pub fn create($($assigned: $assigned_ty,)+ new: NewMeter, at: Timestamp) -> Meter {
                let meter = Meter {
                    $($assigned,)+
                    $($renamable: new.$renamable,)+
                    $($fixed: new.$fixed,)+
                    $($optional: None,)+
                    $($stamp: at,)+
                    version: 0,
                    readings: 0,
                };
                meter.with_changes(&new.details, at)
            }

            /// This meter with `changes` applied and `updated_at` set to `at`.
            pub fn with_changes(&self, changes: &MeterChanges, at: Timestamp) -> Meter {
                let mut meter = self.clone();
                $(if let Some(value) = &changes.$renamable {
                    meter.$renamable = value.clone();
                })+
                $(changes.$optional.apply_to(&mut meter.$optional);)+
                meter.updated_at = at;
                meter.version += 1;
                meter
            }
        }

        /// What a caller asked for on create, already valid.
        #[derive(Debug, Clone, PartialEq)]
        pub struct NewMeter {
            $(pub $renamable: $renamable_ty,)+
            $(pub $fixed: $fixed_ty,)+
            /// The optional fields; the renamable ones are unset here.
            pub details: MeterChanges,
        }

        /// The mutable fields an update sends. Serialised, it is an object holding only the fields sent
        /// (`null` for those to clear), so two updates of different fields never undo each other.
        #[derive(Debug, Clone, PartialEq, Default, Serialize)]
        pub struct MeterChanges {
            $(#[serde(skip_serializing_if = "Option::is_none")]
            pub $renamable: Option<$renamable_ty>,)+
            $(#[serde(skip_serializing_if = "Change::is_keep")]
            pub $optional: Change<$optional_ty>,)+
        }

        /// Read-only fields an update body echoed back. Echoing the stored value is allowed (so GET,
        /// edit, PUT works); any other value is refused. Stores check these atomically with the write.
        #[derive(Debug, Clone, PartialEq, Default, Serialize)]
        pub struct ReadOnlyEcho {
            $(#[serde(skip_serializing_if = "Option::is_none")]
            pub $fixed: Option<$fixed_ty>,)+
            $(#[serde(skip_serializing_if = "Option::is_none")]
            pub $stamp: Option<Timestamp>,)+
        }

        impl ReadOnlyEcho {
            /// The first echoed field whose value differs from `meter`'s, if any.
            pub fn first_mismatch(&self, meter: &Meter) -> Option<&'static str> {
                $(if self.$fixed.as_ref().is_some_and(|echoed| *echoed != meter.$fixed) {
                    return Some(stringify!($fixed));
                })+
                $(if self.$stamp.is_some_and(|echoed| echoed != meter.$stamp) {
                    return Some(stringify!($stamp));
                })+
                None
            }
        }

        impl JsonObject {
            /// The create body's choices, with defaults for the defaulted fixed fields.
            pub(super) fn new_meter(&self) -> Result<NewMeter, FieldError> {
                Ok(NewMeter {
                    $($renamable: self.required(stringify!($renamable))?,)+
                    $($fixed: meter_fields!(@create self, $fixed $(= $fixed_default)?),)+
                    details: MeterChanges {
                        $($renamable: None,)+
                        $($optional: self.change(stringify!($optional))?,)+
                    },
                })
            }

            /// The mutable fields an update sent.
            pub(super) fn changes(&self) -> Result<MeterChanges, FieldError> {
                Ok(MeterChanges {
                    $($renamable: self.optional(stringify!($renamable))?,)+
                    $($optional: self.change(stringify!($optional))?,)+
                })
            }

            /// The read-only fields echoed on update. An echo only has to be comparable: one that does not
            /// parse cannot be the stored value, so it is refused as a change to a read-only field.
            pub(super) fn read_only_echo(&self) -> Result<ReadOnlyEcho, FieldError> {
                Ok(ReadOnlyEcho {
                    $($fixed: self.echo(stringify!($fixed))?,)+
                    $($stamp: self.echo(stringify!($stamp))?,)+
                })
            }
        }
    };
    (@create $object:ident, $field:ident = $default:expr) => {
        $object.optional(stringify!($field))?.unwrap_or($default)
    };
    (@create $object:ident, $field:ident) => {
        $object.required(stringify!($field))?
    };
}

meter_fields! {
    assigned { id: MeterId, account_id: AccountId }
    renamable { name: MeterName }
    fixed {
        serial_number: SerialNumber,
        meter_type: MeterType = MeterType::ELECTRICITY,
        communication_type: CommunicationType = CommunicationType::NONE,
    }
    optional {
        description: Description,
        reading_interval: ReadingInterval,
        building_block_id: ReferenceId,
        gateway_id: ReferenceId,
        tariff_id: ReferenceId,
        last_reading_value: ReadingValue,
        last_reading_at: Timestamp,
        location: Location,
        billing_direction: BillingDirection,
    }
    stamps { created_at, updated_at }
    sortable {
        id, name, serial_number, meter_type, communication_type, location, created_at, updated_at,
        last_reading_at, last_reading_value,
    }
}

impl Meter {
    /// The strong entity tag of this meter as it is now: it names the meter and changes with every write and
    /// every reading applied: `"<id>-<version>"`, or `"<id>-<version>.<readings>"` once readings came.
    pub fn etag(&self) -> String {
        EntityTag::of(self).to_string(self.id)
    }
}

/// What an entity tag says of a meter's state: its version, and the readings applied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag {
    pub version: u64,
    pub readings: u64,
}

impl EntityTag {
    pub fn of(meter: &Meter) -> Self {
        Self {
            version: meter.version,
            readings: meter.readings,
        }
    }

    /// A tag of meter `id` as `If-Match` sends it (`"<id>-<version>"` or `"<id>-<version>.<readings>"`);
    /// `None` for another meter's, a weak one, or anything else.
    pub fn parse(id: MeterId, tag: &str) -> Option<Self> {
        let state = tag.strip_prefix(&format!("\"{id}-"))?.strip_suffix('"')?;
        let number = |text: &str| {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
        };
        let (version, readings) = match state.split_once('.') {
            // A tag names the readings only once there are some: `.0` is no tag of ours.
            Some((version, readings)) => (number(version)?, number(readings).filter(|&n| n > 0)?),
            None => (number(state)?, 0),
        };
        Some(Self { version, readings })
    }

    fn to_string(self, id: MeterId) -> String {
        match self.readings {
            0 => format!("\"{id}-{}\"", self.version),
            readings => format!("\"{id}-{}.{readings}\"", self.version),
        }
    }
}

/// Created timestamps keep millisecond precision, as the design's example shows.
pub fn now() -> Timestamp {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
