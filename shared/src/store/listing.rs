//! One account's meters held in memory, and the per-process cache of them. A list that needs the whole
//! account (a search, a sort no index serves, a page deep in the middle) is answered from a `Listing`: the
//! meters in id order, shared by every request that reads them, with each sort order and the search text
//! worked out once, the first time a list asks for them, rather than on every list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::domain::list::{
    ListPage, ListQuery, SortField, SortOrder, compare_keys, searched_fields,
};
use crate::domain::meter::{AccountId, Meter, MeterId};

/// The searched fields of one meter, lower-cased and joined by NUL, so one substring test covers all four.
const FIELD_SEPARATOR: char = '\0';

/// A sort field's name, and whether descending.
type OrderName = (&'static str, bool);

#[derive(Debug, Default)]
pub struct Listing {
    /// In id order.
    meters: Vec<Arc<Meter>>,
    /// Positions in `meters`, per sort other than `id` (whose order `meters` already is).
    orders: Mutex<HashMap<OrderName, Arc<[u32]>>>,
    haystacks: OnceLock<Vec<Box<str>>>,
    /// What this listing holds in memory at most (every order and the search text worked out), estimated.
    bytes: usize,
}

impl Listing {
    /// Takes the account's meters in any order.
    pub fn new(mut meters: Vec<Meter>) -> Self {
        meters.sort_unstable_by_key(|meter| meter.id);
        Self::from_sorted(meters.into_iter().map(Arc::new).collect())
    }

    fn from_sorted(meters: Vec<Arc<Meter>>) -> Self {
        let bytes = meters.iter().map(|meter| estimated_bytes(meter)).sum();
        Self::holding(meters, bytes)
    }

    fn holding(meters: Vec<Arc<Meter>>, bytes: usize) -> Self {
        Self {
            meters,
            orders: Mutex::default(),
            haystacks: OnceLock::new(),
            bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.meters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meters.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// This listing with `meter` added or replaced (the embedded store keeps its listings current this way).
    pub fn with_meter(&self, meter: Meter) -> Self {
        let mut meters = self.meters.clone();
        let mut bytes = self.bytes + estimated_bytes(&meter);
        match meters.binary_search_by_key(&meter.id, |stored| stored.id) {
            Ok(at) => {
                bytes -= estimated_bytes(&meters[at]);
                meters[at] = Arc::new(meter);
            }
            Err(at) => meters.insert(at, Arc::new(meter)),
        }
        Self::holding(meters, bytes)
    }

    /// This listing without meter `id`.
    pub fn without(&self, id: MeterId) -> Self {
        let mut meters = self.meters.clone();
        let mut bytes = self.bytes;
        if let Ok(at) = meters.binary_search_by_key(&id, |stored| stored.id) {
            bytes -= estimated_bytes(&meters.remove(at));
        }
        Self::holding(meters, bytes)
    }

    /// One page of `query`, exactly as `ListQuery` defines it.
    pub fn page(&self, query: &ListQuery) -> ListPage {
        let order = self.order(query.sort_by, query.sort_order);
        let positions: Box<dyn Iterator<Item = usize>> = match &order {
            Some(order) => Box::new(order.iter().map(|&at| at as usize)),
            None if query.sort_order == SortOrder::Ascending => Box::new(0..self.meters.len()),
            None => Box::new((0..self.meters.len()).rev()),
        };
        let offset = (query.page - 1).saturating_mul(query.limit);
        if !query.narrows() {
            return ListPage {
                meters: positions
                    .skip(offset)
                    .take(query.limit)
                    .map(|at| Meter::clone(&self.meters[at]))
                    .collect(),
                count: self.meters.len(),
            };
        }
        let matches: Box<dyn Fn(usize) -> bool> = match &query.search {
            Some(search) if !search.contains(FIELD_SEPARATOR) => {
                let haystacks = self.haystacks();
                Box::new(move |at| {
                    query.filters.admit(&self.meters[at]) && haystacks[at].contains(search.as_str())
                })
            }
            _ => Box::new(|at| query.matches(&self.meters[at])),
        };
        let mut count = 0;
        let mut meters = Vec::new();
        for at in positions.filter(|&at| matches(at)) {
            if count >= offset && meters.len() < query.limit {
                meters.push(Meter::clone(&self.meters[at]));
            }
            count += 1;
        }
        ListPage { meters, count }
    }

    /// Positions in sort order; `None` for `id`, the order `meters` is kept in.
    fn order(&self, field: SortField, order: SortOrder) -> Option<Arc<[u32]>> {
        if field == SortField::ID {
            return None;
        }
        let descending = order == SortOrder::Descending;
        let mut orders = self
            .orders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sorted = orders.entry((field.name(), descending)).or_insert_with(|| {
            let keys: Vec<_> = self.meters.iter().map(|meter| field.key(meter)).collect();
            let mut positions: Vec<u32> = (0..self.meters.len() as u32).collect();
            // `meters` is in id order and the sort is stable, so ties stay in id order.
            positions.sort_by(|&a, &b| compare_keys(&keys[a as usize], &keys[b as usize], order));
            positions.into()
        });
        Some(Arc::clone(sorted))
    }

    fn haystacks(&self) -> &[Box<str>] {
        self.haystacks.get_or_init(|| {
            self.meters
                .iter()
                .map(|meter| {
                    let mut text = String::with_capacity(128);
                    for field in searched_fields(meter) {
                        text.push_str(&field.to_lowercase());
                        text.push(FIELD_SEPARATOR);
                    }
                    text.into_boxed_str()
                })
                .collect()
        })
    }
}

const ORDER_ENTRY_BYTES: usize = std::mem::size_of::<u32>();

/// A meter's share of a listing: the meter, its `Arc`, its heap text, its search text, and its entry in
/// every sort order.
fn estimated_bytes(meter: &Meter) -> usize {
    const ALLOCATION_OVERHEAD: usize = 16;
    let text: usize = searched_fields(meter)
        .map(|field| field.len() + ALLOCATION_OVERHEAD)
        .sum();
    std::mem::size_of::<Meter>() + 2 * ALLOCATION_OVERHEAD + std::mem::size_of::<usize>() * 2
        // the text as the meter holds it, and again as search text
        + 2 * text
        + ORDER_ENTRY_BYTES * Meter::SORTABLE.len() * 2
}

/// The listings of recently listed accounts, each valid for one version of its account, within a byte
/// budget: the least recently used go first, and a listing larger than the whole budget is not kept.
#[derive(Debug)]
pub struct ListingCache {
    budget: usize,
    entries: Mutex<Entries>,
    /// Per account, the turn to read its listing: one read at a time, which the others then find held.
    reads: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct Entries {
    by_account: HashMap<AccountId, Entry>,
    bytes: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    version: u64,
    listing: Arc<Listing>,
    used: u64,
}

/// The listings a process keeps, by their estimate: at 50,000 realistic meters a listing estimates at about
/// 30 MB. Set in code (`with_listing_budget`); no variable sets it.
pub const DEFAULT_CACHE_BYTES: usize = 40 << 20;

impl ListingCache {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::default(),
            reads: Mutex::default(),
        }
    }

    /// `account`'s listing as of `version`: held, or read by `read` and kept. Concurrent requests that need
    /// it share one read: each waits for the read under way, then finds its listing held. (A listing larger
    /// than the whole budget is not kept, so its readers each read it, one after another.)
    pub async fn read_once<F, Fut, E>(
        &self,
        account: &AccountId,
        version: u64,
        read: F,
    ) -> Result<Arc<Listing>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Listing, E>>,
    {
        let turn = Arc::clone(
            self.reads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(*account)
                .or_default(),
        );
        let read_listing = async {
            let _turn = turn.lock().await;
            if let Some(listing) = self.get(account, version) {
                return Ok(listing);
            }
            let listing = Arc::new(read().await?);
            self.put(account, version, Arc::clone(&listing));
            Ok(listing)
        };
        let listing = read_listing.await;
        // The last one out takes the account's turn away, so that accounts listed once do not pile up.
        let mut reads = self
            .reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if Arc::strong_count(&turn) == 2 {
            reads.remove(account);
        }
        listing
    }

    /// The listing of `account` as of `version`, if held.
    pub fn get(&self, account: &AccountId, version: u64) -> Option<Arc<Listing>> {
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_account.get_mut(account)?;
        if entry.version != version {
            return None;
        }
        entry.used = now;
        Some(Arc::clone(&entry.listing))
    }

    /// Keeps `listing` as `account`'s at `version`, replacing any other.
    pub fn put(&self, account: &AccountId, version: u64, listing: Arc<Listing>) {
        let mut entries = self.lock();
        entries.remove(account);
        if listing.bytes() > self.budget {
            return;
        }
        while entries.bytes + listing.bytes() > self.budget {
            let Some(oldest) = entries
                .by_account
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(account, _)| *account)
            else {
                break;
            };
            entries.remove(&oldest);
        }
        entries.clock += 1;
        entries.bytes += listing.bytes();
        let used = entries.clock;
        entries.by_account.insert(
            *account,
            Entry {
                version,
                listing,
                used,
            },
        );
    }

    /// Replaces `account`'s listing, if held, by `change(listing)`, keeping its version.
    pub fn change(&self, account: &AccountId, change: impl FnOnce(&Listing) -> Listing) {
        let held = {
            let entries = self.lock();
            entries
                .by_account
                .get(account)
                .map(|entry| (entry.version, Arc::clone(&entry.listing)))
        };
        if let Some((version, listing)) = held {
            self.put(account, version, Arc::new(change(&listing)));
        }
    }

    pub fn forget(&self, account: &AccountId) {
        self.lock().remove(account);
    }

    /// Bytes held, by the listings' estimate.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Entries {
    fn remove(&mut self, account: &AccountId) {
        if let Some(entry) = self.by_account.remove(account) {
            self.bytes -= entry.listing.bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meter::{
        CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber,
    };

    fn meter(id: i64, name: &str) -> Meter {
        let new = NewMeter {
            name: MeterName::parse(name).unwrap(),
            serial_number: SerialNumber::parse(&format!("SN-{id}")).unwrap(),
            meter_type: MeterType::GAS,
            communication_type: CommunicationType::NONE,
            details: MeterChanges::default(),
        };
        let account = AccountId::parse("6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22").unwrap();
        Meter::create(
            MeterId::new(id).unwrap(),
            account,
            new,
            crate::domain::meter::now(),
        )
    }

    #[test]
    fn a_listing_changed_by_writes_holds_what_one_read_afresh_would() {
        let listing = Listing::new(vec![meter(3, "c"), meter(1, "a")]);
        let changed = listing
            .with_meter(meter(2, "b"))
            .with_meter(meter(3, "a much longer name than before"))
            .without(MeterId::new(1).unwrap());
        let afresh = Listing::new(vec![
            meter(2, "b"),
            meter(3, "a much longer name than before"),
        ]);
        let ids = |listing: &Listing| {
            listing
                .meters
                .iter()
                .map(|m| m.id.get())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&changed), vec![2, 3]);
        assert_eq!(
            (ids(&changed), changed.bytes()),
            (ids(&afresh), afresh.bytes())
        );
    }
}
