//! The list endpoint's conventions: search, sort, page and count, exactly as the design's table fixes them.

use std::cmp::Ordering;

use crate::domain::field_error::FieldError;
use crate::domain::filters::Filters;
use crate::domain::meter::{Meter, SortKey, SortableField};
use crate::domain::params::QueryParams;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// The last page a list may ask for: far past any account (10^11 meters at 100 a page), and a bound that
/// every client language holds.
pub const MAX_PAGE: usize = 1_000_000_000;
pub const MAX_QUERY_CHARS: usize = 200;

/// A field a list can be sorted by: one of `Meter::SORTABLE`, where the meter's field list marks them.
#[derive(Debug, Clone, Copy)]
pub struct SortField(&'static SortableField);

impl PartialEq for SortField {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl SortField {
    /// `id`, the default order.
    pub const ID: SortField = SortField::known("id");
    pub const NAME: SortField = SortField::known("name");
    pub const CREATED_AT: SortField = SortField::known("created_at");
    /// The sorts by what readings set: a page in them is ordered by the readings it shows.
    pub const READINGS: [SortField; 2] = [
        SortField::known("last_reading_at"),
        SortField::known("last_reading_value"),
    ];

    /// The sortable field named `name`, found when the crate compiles: a name the field list does not mark
    /// sortable stops the build.
    const fn known(name: &str) -> Self {
        let mut at = 0;
        while at < Meter::SORTABLE.len() {
            if const_eq(Meter::SORTABLE[at].name, name) {
                return SortField(&Meter::SORTABLE[at]);
            }
            at += 1;
        }
        panic!("not a sortable field of the meter");
    }

    pub fn named(name: &str) -> Option<Self> {
        Meter::SORTABLE
            .iter()
            .find(|field| field.name == name)
            .map(Self)
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// Whether this sort orders by a field that readings set.
    pub fn follows_readings(self) -> bool {
        Self::READINGS.contains(&self)
    }

    fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::named(raw).ok_or_else(|| {
            let names: Vec<&str> = Meter::SORTABLE.iter().map(|field| field.name).collect();
            FieldError::new("sortBy", format!("must be one of {}", names.join(", ")))
        })
    }

    /// The value compared for this field; `None` for an unset field, which sorts last in either order.
    pub fn key(self, meter: &Meter) -> Option<SortKey> {
        (self.0.key)(meter)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

/// A valid list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub page: usize,
    pub limit: usize,
    pub sort_by: SortField,
    pub sort_order: SortOrder,
    /// Lower-cased search text.
    pub search: Option<String>,
    /// Meter attributes the listed meters must have.
    pub filters: Filters,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page: 1,
            limit: DEFAULT_LIMIT,
            sort_by: SortField::ID,
            sort_order: SortOrder::Ascending,
            search: None,
            filters: Filters::default(),
        }
    }
}

/// One page of a list, and how many meters matched in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub meters: Vec<Meter>,
    pub count: usize,
}

impl ListQuery {
    pub const PARAMETERS: [&'static str; 12] = [
        "page",
        "limit",
        "query",
        "sortBy",
        "sortOrder",
        Filters::PARAMETERS[0],
        Filters::PARAMETERS[1],
        Filters::PARAMETERS[2],
        Filters::PARAMETERS[3],
        Filters::PARAMETERS[4],
        Filters::PARAMETERS[5],
        Filters::PARAMETERS[6],
    ];

    pub fn parse(params: &QueryParams) -> Result<Self, FieldError> {
        let defaults = Self::default();
        let page = match params.single("page")? {
            None => defaults.page,
            Some(raw) => parse_count(raw)
                .filter(|page| (1..=MAX_PAGE).contains(page))
                .ok_or_else(|| {
                    FieldError::new("page", format!("must be an integer from 1 to {MAX_PAGE}"))
                })?,
        };
        let limit = match params.single("limit")? {
            None => defaults.limit,
            Some(raw) => parse_count(raw)
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    FieldError::new("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
                })?,
        };
        let sort_by = params
            .single("sortBy")?
            .map(SortField::parse)
            .transpose()?
            .unwrap_or(defaults.sort_by);
        let sort_order = match params
            .single("sortOrder")?
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("asc") => SortOrder::Ascending,
            Some("desc") => SortOrder::Descending,
            Some(_) => return Err(FieldError::new("sortOrder", "must be asc or desc")),
        };
        let search = match params.single("query")? {
            Some(text) if text.chars().count() > MAX_QUERY_CHARS => {
                return Err(FieldError::new(
                    "query",
                    format!("must be at most {MAX_QUERY_CHARS} characters"),
                ));
            }
            Some(text) if !text.is_empty() => Some(text.to_lowercase()),
            _ => None,
        };
        Ok(Self {
            page,
            limit,
            sort_by,
            sort_order,
            search,
            filters: Filters::parse(params)?,
        })
    }

    /// Whether the list holds only some of the account's meters: a search, or any filter.
    pub fn narrows(&self) -> bool {
        self.search.is_some() || !self.filters.is_empty()
    }

    /// Whether `meter` passes the filters and matches the search text (every meter does when there is
    /// neither).
    pub fn matches(&self, meter: &Meter) -> bool {
        if !self.filters.admit(meter) {
            return false;
        }
        let Some(search) = &self.search else {
            return true;
        };
        searched_fields(meter).any(|text| text.to_lowercase().contains(search.as_str()))
    }

    /// Orders two meters as this query lists them.
    pub fn compare(&self, a: &Meter, b: &Meter) -> Ordering {
        compare_keys(&self.sort_by.key(a), &self.sort_by.key(b), self.sort_order)
            .then(a.id.cmp(&b.id))
    }
}

/// Two sort keys in `order`, unset values last in either order; ties are the caller's to break (by id).
pub fn compare_keys(a: &Option<SortKey>, b: &Option<SortKey>, order: SortOrder) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if order == SortOrder::Ascending => x.compare(y),
        (Some(x), Some(y)) => y.compare(x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The fields `query` searches: name, serial number, location and description, as stored.
pub fn searched_fields(meter: &Meter) -> impl Iterator<Item = &str> {
    [
        Some(meter.name.as_str()),
        Some(meter.serial_number.as_str()),
        meter.location.as_ref().map(|location| location.as_str()),
        meter
            .description
            .as_ref()
            .map(|description| description.as_str()),
    ]
    .into_iter()
    .flatten()
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if a[at] != b[at] {
            return false;
        }
        at += 1;
    }
    true
}

/// Digits only: `+1`, `1.0` and ` 1` are not counts.
fn parse_count(raw: &str) -> Option<usize> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::{
        AccountId, CommunicationType, Location, MeterId, MeterName, MeterType, ReadingValue,
        SerialNumber,
    };

    /// The list semantics stated plainly: every match, in order, one page cut out. The stores answer from
    /// their listings instead, and the contract suite holds them to the same answers.
    trait Apply {
        fn apply(&self, meters: Vec<Meter>) -> ListPage;
    }

    impl Apply for ListQuery {
        fn apply(&self, mut meters: Vec<Meter>) -> ListPage {
            meters.retain(|meter| self.matches(meter));
            meters.sort_by(|a, b| self.compare(a, b));
            let count = meters.len();
            let offset = (self.page - 1).saturating_mul(self.limit);
            let meters = meters.into_iter().skip(offset).take(self.limit).collect();
            ListPage { meters, count }
        }
    }

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, FieldError> {
        ListQuery::parse(&params(pairs))
    }

    fn meter(id: i64, name: &str, location: Option<&str>, reading: Option<f64>) -> Meter {
        let at = chrono::DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap();
        Meter {
            id: MeterId::new(id).unwrap(),
            account_id: AccountId::parse("6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22").unwrap(),
            name: MeterName::parse(name).unwrap(),
            serial_number: SerialNumber::parse(&format!("SN-{id:03}")).unwrap(),
            meter_type: MeterType::ELECTRICITY,
            communication_type: CommunicationType::NONE,
            description: None,
            reading_interval: None,
            building_block_id: None,
            gateway_id: None,
            tariff_id: None,
            last_reading_value: reading.map(|value| ReadingValue::parse(value).unwrap()),
            last_reading_at: None,
            location: location.map(|text| Location::parse(text).unwrap()),
            billing_direction: None,
            created_at: at,
            updated_at: at,
            version: 1,
            readings: 0,
        }
    }

    fn ids(page: &ListPage) -> Vec<i64> {
        page.meters.iter().map(|meter| meter.id.get()).collect()
    }

    fn sample() -> Vec<Meter> {
        vec![
            meter(1, "beta", Some("Roof"), Some(5.0)),
            meter(2, "Alpha", None, None),
            meter(3, "alpha", Some("basement"), Some(-1.0)),
            meter(4, "Gamma", Some("Basement annex"), Some(5.0)),
        ]
    }

    #[test]
    fn no_parameters_means_page_1_of_20_by_id_ascending() {
        assert_eq!(parse(&[]).unwrap(), ListQuery::default());
    }

    #[test]
    fn out_of_range_parameters_are_refused_naming_the_parameter() {
        let cases = [
            (("page", "0"), "page"),
            (("page", "-1"), "page"),
            (("page", "1.5"), "page"),
            (("page", "1000000001"), "page"),
            (("limit", "0"), "limit"),
            (("limit", "101"), "limit"),
            (("limit", "ten"), "limit"),
            (("sortBy", "description"), "sortBy"),
            (("sortBy", "NAME"), "sortBy"),
            (("sortOrder", "up"), "sortOrder"),
        ];
        for ((name, value), field) in cases {
            assert_eq!(
                parse(&[(name, value)]).unwrap_err().field,
                field,
                "{name}={value}"
            );
        }
        let long = "q".repeat(201);
        assert_eq!(
            parse(&[("query", &long)]).unwrap_err().to_string(),
            "query: must be at most 200 characters"
        );
    }

    #[test]
    fn sort_order_accepts_any_case() {
        assert_eq!(
            parse(&[("sortOrder", "DESC")]).unwrap().sort_order,
            SortOrder::Descending
        );
        assert_eq!(
            parse(&[("sortOrder", "Asc")]).unwrap().sort_order,
            SortOrder::Ascending
        );
    }

    #[test]
    fn text_sorts_ignore_case_and_break_ties_by_id() {
        let query = ListQuery {
            sort_by: SortField::named("name").unwrap(),
            ..ListQuery::default()
        };
        assert_eq!(ids(&query.apply(sample())), vec![2, 3, 1, 4]);
        let descending = ListQuery {
            sort_order: SortOrder::Descending,
            ..query
        };
        assert_eq!(ids(&descending.apply(sample())), vec![4, 1, 2, 3]);
    }

    #[test]
    fn unset_values_sort_last_in_both_orders() {
        let query = ListQuery {
            sort_by: SortField::named("location").unwrap(),
            ..ListQuery::default()
        };
        assert_eq!(ids(&query.apply(sample())), vec![3, 4, 1, 2]);
        let descending = ListQuery {
            sort_order: SortOrder::Descending,
            ..query
        };
        assert_eq!(ids(&descending.apply(sample())), vec![1, 4, 3, 2]);
        let by_reading = ListQuery {
            sort_by: SortField::named("last_reading_value").unwrap(),
            sort_order: SortOrder::Descending,
            ..ListQuery::default()
        };
        assert_eq!(ids(&by_reading.apply(sample())), vec![1, 4, 3, 2]);
    }

    #[test]
    fn search_is_a_case_insensitive_substring_of_name_serial_location_or_description() {
        let search = |text: &str| {
            ids(&ListQuery {
                search: Some(text.to_lowercase()),
                ..ListQuery::default()
            }
            .apply(sample()))
        };
        assert_eq!(search("ALPHA"), vec![2, 3]);
        assert_eq!(search("basement"), vec![3, 4]);
        assert_eq!(search("sn-004"), vec![4]);
        assert_eq!(search("nowhere"), Vec::<i64>::new());
    }

    #[test]
    fn count_is_every_match_and_a_page_past_the_end_is_empty() {
        let second = ListQuery {
            page: 2,
            limit: 3,
            ..ListQuery::default()
        }
        .apply(sample());
        assert_eq!((ids(&second), second.count), (vec![4], 4));
        let past = ListQuery {
            page: 9,
            limit: 3,
            ..ListQuery::default()
        }
        .apply(sample());
        assert_eq!((ids(&past), past.count), (vec![], 4));
        let huge = ListQuery {
            page: usize::MAX,
            limit: 100,
            ..ListQuery::default()
        }
        .apply(sample());
        assert_eq!(huge.count, 4);
    }
}
