//! A list's filters by meter attribute: all optional, combined with each other (AND), with the search text,
//! every sort and paging. `count` is the number of meters they (and the search) admit.

use crate::domain::field_error::FieldError;
use crate::domain::meter::{
    BillingDirection, CommunicationType, Meter, MeterType, ReferenceId, Timestamp, parse_timestamp,
};
use crate::domain::params::QueryParams;

/// What a list's meters must be; unset filters admit every meter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    pub meter_type: Option<MeterType>,
    pub communication_type: Option<CommunicationType>,
    pub billing_direction: Option<BillingDirection>,
    pub building_block_id: Option<ReferenceId>,
    pub gateway_id: Option<ReferenceId>,
    pub tariff_id: Option<ReferenceId>,
    /// Meters whose `updated_at` is this instant or later: what changed since a client's last sync.
    pub updated_since: Option<Timestamp>,
}

impl Filters {
    pub const PARAMETERS: [&'static str; 7] = [
        "meter_type",
        "communication_type",
        "billing_direction",
        "building_block_id",
        "gateway_id",
        "tariff_id",
        "updated_since",
    ];

    /// The filters a query string gives; a bad value is refused naming its parameter.
    pub fn parse(params: &QueryParams) -> Result<Self, FieldError> {
        let reference = |name: &'static str| -> Result<Option<ReferenceId>, FieldError> {
            params
                .single(name)?
                .map(|raw| {
                    let number = raw
                        .parse::<i64>()
                        .map_err(|_| FieldError::new(name, "must be a positive integer"))?;
                    ReferenceId::parse(name, number)
                })
                .transpose()
        };
        Ok(Self {
            meter_type: params.single("meter_type")?.map(str::parse).transpose()?,
            communication_type: params
                .single("communication_type")?
                .map(str::parse)
                .transpose()?,
            billing_direction: params
                .single("billing_direction")?
                .map(str::parse)
                .transpose()?,
            building_block_id: reference("building_block_id")?,
            gateway_id: reference("gateway_id")?,
            tariff_id: reference("tariff_id")?,
            updated_since: params
                .single("updated_since")?
                .map(|raw| parse_timestamp("updated_since", raw))
                .transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether `meter` passes every filter that is set.
    pub fn admit(&self, meter: &Meter) -> bool {
        fn passes<T: PartialEq>(wanted: &Option<T>, value: T) -> bool {
            wanted.as_ref().is_none_or(|wanted| *wanted == value)
        }
        passes(&self.meter_type, meter.meter_type)
            && passes(&self.communication_type, meter.communication_type)
            && self
                .billing_direction
                .is_none_or(|wanted| meter.billing_direction == Some(wanted))
            && self
                .building_block_id
                .is_none_or(|wanted| meter.building_block_id == Some(wanted))
            && self
                .gateway_id
                .is_none_or(|wanted| meter.gateway_id == Some(wanted))
            && self
                .tariff_id
                .is_none_or(|wanted| meter.tariff_id == Some(wanted))
            && self
                .updated_since
                .is_none_or(|since| meter.updated_at >= since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Filters, FieldError> {
        Filters::parse(&QueryParams::from_pairs(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ))
    }

    #[test]
    fn bad_filter_values_are_refused_naming_the_parameter() {
        for (name, value) in [
            ("meter_type", "STEAM"),
            ("meter_type", "gas"),
            ("communication_type", "SMOKE"),
            ("billing_direction", "BOTH"),
            ("building_block_id", "0"),
            ("gateway_id", "-3"),
            ("tariff_id", "1.5"),
            ("tariff_id", "99999999999999999999"),
            ("updated_since", "yesterday"),
            ("updated_since", "2026-11-25T10:02:11"),
        ] {
            assert_eq!(
                parse(&[(name, value)]).unwrap_err().field,
                name,
                "{name}={value}"
            );
        }
        assert_eq!(
            parse(&[("meter_type", "GAS"), ("meter_type", "WATER")])
                .unwrap_err()
                .to_string(),
            "meter_type: must be given once"
        );
    }

    #[test]
    fn filters_parse_into_their_types_and_none_means_every_meter() {
        let filters = parse(&[
            ("meter_type", "SOLAR"),
            ("tariff_id", "12"),
            ("updated_since", "2026-11-25T10:02:11+01:00"),
        ])
        .unwrap();
        assert_eq!(filters.meter_type, Some(MeterType::SOLAR));
        assert_eq!(
            filters.tariff_id,
            Some(ReferenceId::parse("tariff_id", 12).unwrap())
        );
        assert_eq!(
            filters.updated_since.map(|at| at.to_rfc3339()),
            Some("2026-11-25T09:02:11+00:00".to_owned())
        );
        assert!(!filters.is_empty());
        assert!(parse(&[]).unwrap().is_empty());
    }
}
