//! An account's meters held in memory and the pages answered from them (see the module above).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::list::{
    ListPage, ListQuery, SortField, SortOrder, compare_keys, searched_fields,
};
use crate::domain::meter::{Meter, MeterId, Timestamp};

/// The searched fields of one meter, lower-cased and joined by NUL, so one substring test covers all four.
const FIELD_SEPARATOR: char = '\0';

/// A sort other than by id: what the orders a listing works out are kept under.
#[derive(Debug, Clone, Copy)]
struct Sort {
    field: SortField,
    order: SortOrder,
}

impl Sort {
    fn name(self) -> (&'static str, bool) {
        (self.field.name(), self.order == SortOrder::Descending)
    }

    /// How two entries compare in this sort: by the field, then (ties) by id.
    fn compare(self, a: &Entry, b: &Entry) -> Ordering {
        compare_keys(
            &self.field.key(&a.meter),
            &self.field.key(&b.meter),
            self.order,
        )
        .then(a.meter.id.cmp(&b.meter.id))
    }
}

/// The orders a listing has worked out, by their sort's name.
type Orders = HashMap<(&'static str, bool), (Sort, Arc<Vec<u32>>)>;

/// A meter as a listing holds it: with its search text.
#[derive(Debug)]
struct Entry {
    meter: Meter,
    haystack: Box<str>,
}

impl Entry {
    fn new(meter: Meter) -> Arc<Self> {
        let mut text = String::with_capacity(128);
        for field in searched_fields(&meter) {
            text.push_str(&field.to_lowercase());
            text.push(FIELD_SEPARATOR);
        }
        Arc::new(Entry {
            meter,
            haystack: text.into_boxed_str(),
        })
    }
}

#[derive(Debug, Default)]
pub struct Listing {
    /// In id order.
    entries: Vec<Arc<Entry>>,
    /// Positions in `entries`, per sort other than `id` (whose order `entries` already is).
    orders: Mutex<Orders>,
    /// What this listing holds in memory at most (every order worked out): see `held_bytes`.
    bytes: usize,
    /// When the read began that this listing's readings (`last_reading_*`) are at least as new as; `None`
    /// when not known (a snapshot's). Readings move no version, so a listing kept current by versions can
    /// hold older readings than its meters have (`crate::domain::reading`).
    readings_as_of: Option<Timestamp>,
}

impl Listing {
    /// Takes the account's meters in any order.
    pub fn new(mut meters: Vec<Meter>) -> Self {
        meters.sort_unstable_by_key(|meter| meter.id);
        let entries: Vec<Arc<Entry>> = meters.into_iter().map(Entry::new).collect();
        let bytes = entries.iter().map(|entry| held_bytes(entry)).sum();
        Self {
            entries,
            orders: Mutex::default(),
            bytes,
            readings_as_of: None,
        }
    }

    /// This listing, its readings known to be at least as new as a read that began at `began`.
    pub fn with_readings_as_of(mut self, began: Timestamp) -> Self {
        self.readings_as_of = Some(began);
        self
    }

    /// When the read began that this listing's readings are at least as new as, if known.
    pub fn readings_as_of(&self) -> Option<Timestamp> {
        self.readings_as_of
    }

    /// Whether this listing's readings are at least as new as `since`.
    pub fn readings_since(&self, since: Timestamp) -> bool {
        self.readings_as_of.is_some_and(|as_of| as_of >= since)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// This listing with `meter` added or replaced.
    pub fn with_meter(&self, meter: Meter) -> Self {
        let entry = Entry::new(meter);
        let mut entries = self.entries.clone();
        let mut bytes = self.bytes + held_bytes(&entry);
        let orders = self.orders_held();
        let changed = match entries.binary_search_by_key(&entry.meter.id, |held| held.meter.id) {
            Ok(at) => {
                bytes -= held_bytes(&entries[at]);
                let old = std::mem::replace(&mut entries[at], entry);
                let moved = orders.into_iter().map(|(sort, order)| {
                    let mut order = Vec::clone(&order);
                    order.remove(position_in(&order, &self.entries, &old, sort));
                    let to = insertion_point(&order, &entries, &entries[at], sort);
                    order.insert(to, at as u32);
                    (sort.name(), (sort, Arc::new(order)))
                });
                moved.collect()
            }
            Err(at) => {
                entries.insert(at, entry);
                let grown = orders.into_iter().map(|(sort, order)| {
                    // Positions at and after `at` moved one along.
                    let mut order: Vec<u32> = order
                        .iter()
                        .map(|&p| if p as usize >= at { p + 1 } else { p })
                        .collect();
                    let to = insertion_point(&order, &entries, &entries[at], sort);
                    order.insert(to, at as u32);
                    (sort.name(), (sort, Arc::new(order)))
                });
                grown.collect()
            }
        };
        Self {
            entries,
            orders: Mutex::new(changed),
            bytes,
            readings_as_of: self.readings_as_of,
        }
    }

    /// This listing with `changed` added or replaced and `removed` gone, in one pass: for many changes at
    /// once (a snapshot brought current), where one at a time would copy the listing for each. The orders
    /// are worked out again when next asked for.
    pub fn with_changes(&self, changed: Vec<Meter>, removed: &[MeterId]) -> Self {
        let replaced: std::collections::HashSet<MeterId> = changed
            .iter()
            .map(|meter| meter.id)
            .chain(removed.iter().copied())
            .collect();
        let mut entries: Vec<Arc<Entry>> = self
            .entries
            .iter()
            .filter(|entry| !replaced.contains(&entry.meter.id))
            .cloned()
            .chain(changed.into_iter().map(Entry::new))
            .collect();
        entries.sort_unstable_by_key(|entry| entry.meter.id);
        let bytes = entries.iter().map(|entry| held_bytes(entry)).sum();
        Self {
            entries,
            orders: Mutex::default(),
            bytes,
            readings_as_of: self.readings_as_of,
        }
    }

    /// The meters held, in id order.
    pub fn meters(&self) -> impl Iterator<Item = &Meter> {
        self.entries.iter().map(|entry| &entry.meter)
    }

    /// The version of meter `id` this listing holds, if it holds the meter.
    pub fn version_of(&self, id: MeterId) -> Option<u64> {
        self.entries
            .binary_search_by_key(&id, |held| held.meter.id)
            .ok()
            .map(|at| self.entries[at].meter.version)
    }

    /// This listing without the meters `ids`.
    pub fn without_all(&self, ids: &[MeterId]) -> Self {
        ids.iter()
            .fold(self.carried_over(), |listing, &id| listing.without(id))
    }

    /// This listing without meter `id`.
    pub fn without(&self, id: MeterId) -> Self {
        let Ok(at) = self.entries.binary_search_by_key(&id, |held| held.meter.id) else {
            return self.carried_over();
        };
        let mut entries = self.entries.clone();
        let gone = entries.remove(at);
        let orders = self.orders_held().into_iter().map(|(sort, order)| {
            let order: Vec<u32> = order
                .iter()
                .filter(|&&p| p as usize != at)
                .map(|&p| if p as usize > at { p - 1 } else { p })
                .collect();
            (sort.name(), (sort, Arc::new(order)))
        });
        Self {
            entries,
            orders: Mutex::new(orders.collect()),
            bytes: self.bytes - held_bytes(&gone),
            readings_as_of: self.readings_as_of,
        }
    }

    fn carried_over(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            orders: Mutex::new(
                self.orders_held()
                    .into_iter()
                    .map(|(sort, order)| (sort.name(), (sort, order)))
                    .collect(),
            ),
            bytes: self.bytes,
            readings_as_of: self.readings_as_of,
        }
    }

    fn orders_held(&self) -> Vec<(Sort, Arc<Vec<u32>>)> {
        self.orders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(|(sort, order)| (*sort, Arc::clone(order)))
            .collect()
    }

    /// One page of `query`, exactly as `ListQuery` defines it.
    pub fn page(&self, query: &ListQuery) -> ListPage {
        let order = self.order(query.sort_by, query.sort_order);
        let positions: Box<dyn Iterator<Item = usize>> = match &order {
            Some(order) => Box::new(order.iter().map(|&at| at as usize)),
            None if query.sort_order == SortOrder::Ascending => Box::new(0..self.entries.len()),
            None => Box::new((0..self.entries.len()).rev()),
        };
        let offset = (query.page - 1).saturating_mul(query.limit);
        if !query.narrows() {
            return ListPage {
                meters: positions
                    .skip(offset)
                    .take(query.limit)
                    .map(|at| self.entries[at].meter.clone())
                    .collect(),
                count: self.entries.len(),
            };
        }
        let matches: Box<dyn Fn(&Entry) -> bool> = match &query.search {
            Some(search) if !search.contains(FIELD_SEPARATOR) => Box::new(move |entry| {
                query.filters.admit(&entry.meter) && entry.haystack.contains(search.as_str())
            }),
            _ => Box::new(|entry| query.matches(&entry.meter)),
        };
        let mut count = 0;
        let mut meters = Vec::new();
        for at in positions.filter(|&at| matches(&self.entries[at])) {
            if count >= offset && meters.len() < query.limit {
                meters.push(self.entries[at].meter.clone());
            }
            count += 1;
        }
        ListPage { meters, count }
    }

    /// Positions in sort order; `None` for `id`, the order `entries` is kept in.
    fn order(&self, field: SortField, order: SortOrder) -> Option<Arc<Vec<u32>>> {
        if field == SortField::ID {
            return None;
        }
        let sort = Sort { field, order };
        let mut orders = self
            .orders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (_, sorted) = orders.entry(sort.name()).or_insert_with(|| {
            let keys: Vec<_> = self.entries.iter().map(|e| field.key(&e.meter)).collect();
            let mut positions: Vec<u32> = (0..self.entries.len() as u32).collect();
            // `entries` is in id order and the sort is stable, so ties stay in id order.
            positions.sort_by(|&a, &b| compare_keys(&keys[a as usize], &keys[b as usize], order));
            (sort, Arc::new(positions))
        });
        Some(Arc::clone(sorted))
    }
}

/// Where `entry` stands in `order` (positions into `entries`), which holds it.
fn position_in(order: &[u32], entries: &[Arc<Entry>], entry: &Entry, sort: Sort) -> usize {
    let found = order.binary_search_by(|&p| sort.compare(&entries[p as usize], entry));
    found.unwrap_or_else(|at| at)
}

/// Where `entry` goes in `order` (positions into `entries`), which does not hold it yet.
fn insertion_point(order: &[u32], entries: &[Arc<Entry>], entry: &Entry, sort: Sort) -> usize {
    order.partition_point(|&p| sort.compare(&entries[p as usize], entry) == Ordering::Less)
}

/// What one meter costs a listing, measured from what it allocates rather than guessed: the entry's
/// allocation (the meter, its search text's pointer, the reference counts) and each of its texts, each
/// rounded up to the allocator's 16-byte granule with its 8-byte header; the search text; its pointer in
/// `entries`; and its place in every order a list can ask for. `benches/src/bin/listing-size.rs` checks it
/// against the memory a process actually takes for 50,000 realistic meters.
fn held_bytes(entry: &Entry) -> usize {
    let allocation = |bytes: usize| (bytes + 8).div_ceil(16) * 16;
    let texts: usize = searched_fields(&entry.meter)
        .map(|field| allocation(field.len()))
        .sum();
    allocation(2 * std::mem::size_of::<usize>() + std::mem::size_of::<Entry>())
        + texts
        + allocation(entry.haystack.len())
        + std::mem::size_of::<Arc<Entry>>()
        + std::mem::size_of::<u32>() * Meter::SORTABLE.len() * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::filters::Filters;
    use crate::domain::meter::{
        AccountId, CommunicationType, Location, MeterChanges, MeterName, MeterType, NewMeter,
        SerialNumber,
    };

    fn meter(id: i64, name: &str, location: Option<&str>) -> Meter {
        let new = NewMeter {
            name: MeterName::parse(name).unwrap(),
            serial_number: SerialNumber::parse(&format!("SN-{id}")).unwrap(),
            meter_type: MeterType::GAS,
            communication_type: CommunicationType::NONE,
            details: MeterChanges::default(),
        };
        let account = AccountId::parse("6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22").unwrap();
        let mut meter = Meter::create(
            MeterId::new(id).unwrap(),
            account,
            new,
            crate::domain::meter::now(),
        );
        meter.location = location.map(|text| Location::parse(text).unwrap());
        meter
    }

    /// Every sort, both ways, every page of 7, and a search: what a list of `listing` answers.
    fn answers(listing: &Listing) -> Vec<(String, Vec<i64>, usize)> {
        let mut answers = Vec::new();
        for field in Meter::SORTABLE {
            for sort_order in [SortOrder::Ascending, SortOrder::Descending] {
                for search in [None, Some("b".to_owned())] {
                    for page in 1..=3 {
                        let query = ListQuery {
                            page,
                            limit: 7,
                            sort_by: SortField::named(field.name).unwrap(),
                            sort_order,
                            search: search.clone(),
                            filters: Filters::default(),
                        };
                        let listed = listing.page(&query);
                        let ids = listed.meters.iter().map(|m| m.id.get()).collect();
                        answers.push((format!("{query:?}"), ids, listed.count));
                    }
                }
            }
        }
        answers
    }

    #[test]
    fn a_listing_changed_by_writes_answers_every_list_as_one_read_afresh_would() {
        let names = ["b", "a", "c", "B", "ab", "ba"];
        let locations = [None, Some("basement"), Some("Roof"), None];
        let mut meters: Vec<Meter> = (1..=12)
            .map(|id| meter(id, names[id as usize % 6], locations[id as usize % 4]))
            .collect();
        let mut listing = Listing::new(meters.clone());
        // Every order worked out before the writes, so each write must carry it over.
        let _ = answers(&listing);
        let mut next = 13;
        for step in 0..40usize {
            match step % 4 {
                0 => {
                    let added = meter(next, names[step % 6], locations[step % 4]);
                    next += 1;
                    listing = listing.with_meter(added.clone());
                    meters.push(added);
                }
                1 | 2 => {
                    let at = (step * 7) % meters.len();
                    let mut changed = meters[at].clone();
                    changed.name = MeterName::parse(names[(step + 3) % 6]).unwrap();
                    changed.location =
                        locations[(step + 1) % 4].map(|t| Location::parse(t).unwrap());
                    listing = listing.with_meter(changed.clone());
                    meters[at] = changed;
                }
                _ => {
                    let gone = meters.remove((step * 5) % meters.len());
                    listing = listing.without(gone.id);
                }
            }
            let afresh = Listing::new(meters.clone());
            assert_eq!(answers(&listing), answers(&afresh), "after step {step}");
            assert_eq!(listing.bytes(), afresh.bytes(), "after step {step}");
        }
    }

    #[test]
    fn removing_a_meter_the_listing_does_not_hold_changes_nothing() {
        let listing = Listing::new(vec![meter(1, "a", None)]);
        let same = listing.without(MeterId::new(9).unwrap());
        assert_eq!(answers(&same), answers(&listing));
    }
}
