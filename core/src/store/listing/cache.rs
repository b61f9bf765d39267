//! The listings of recently listed accounts, kept within a byte budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pages::Listing;
use crate::domain::meter::AccountId;

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
    /// When a list last read it (or it was kept), for `release_idle`.
    last_read: Instant,
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

    /// Waits for `account`'s turn to come by its listing: one request at a time, so that concurrent requests
    /// that need it share one read (each, its turn come, finds the listing the one before kept).
    pub async fn turn(&self, account: &AccountId) -> ReadTurn<'_> {
        let turn = Arc::clone(
            self.reads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(*account)
                .or_default(),
        );
        ReadTurn {
            cache: self,
            account: *account,
            held: turn.lock_owned().await,
        }
    }

    /// The listing of `account` this process holds, whatever its version, and that version.
    pub fn latest(&self, account: &AccountId) -> Option<(u64, Arc<Listing>)> {
        let entries = self.lock();
        let entry = entries.by_account.get(account)?;
        Some((entry.version, Arc::clone(&entry.listing)))
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
        entry.last_read = Instant::now();
        Some(Arc::clone(&entry.listing))
    }

    /// Keeps `listing` as `account`'s at `version`, replacing any other.
    pub fn put(&self, account: &AccountId, version: u64, listing: Arc<Listing>) {
        self.keep(account, version, listing, Instant::now());
    }

    fn keep(&self, account: &AccountId, version: u64, listing: Arc<Listing>, last_read: Instant) {
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
                last_read,
            },
        );
    }

    /// Replaces `account`'s listing, if held, by `change(listing)`, keeping its version; `None` from
    /// `change` leaves it as it is.
    pub fn change(&self, account: &AccountId, change: impl FnOnce(&Listing) -> Option<Listing>) {
        let held = {
            let entries = self.lock();
            entries
                .by_account
                .get(account)
                .map(|entry| (entry.version, Arc::clone(&entry.listing), entry.last_read))
        };
        if let Some((version, listing, last_read)) = held
            && let Some(changed) = change(&listing)
        {
            self.keep(account, version, Arc::new(changed), last_read);
        }
    }

    /// Lets go of the listings no list has read for `idle`: a server that has stopped listing an account
    /// gives its memory back rather than holding it until another account needs the room. Writes keep a
    /// held listing current but do not count as reads.
    pub fn release_idle(&self, idle: Duration) -> usize {
        let mut entries = self.lock();
        let stale: Vec<AccountId> = entries
            .by_account
            .iter()
            .filter(|(_, entry)| entry.last_read.elapsed() >= idle)
            .map(|(account, _)| *account)
            .collect();
        for account in &stale {
            entries.remove(account);
        }
        stale.len()
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

/// An account's turn to come by its listing, until dropped.
#[derive(Debug)]
pub struct ReadTurn<'a> {
    cache: &'a ListingCache,
    account: AccountId,
    held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for ReadTurn<'_> {
    /// The last one out takes the account's turn away, so that accounts listed once do not pile up.
    fn drop(&mut self) {
        let mut reads = self
            .cache
            .reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The map's and this turn's: no other request waits for the account.
        if Arc::strong_count(tokio::sync::OwnedMutexGuard::mutex(&self.held)) == 2 {
            reads.remove(&self.account);
        }
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

    #[test]
    fn listings_not_read_for_the_idle_time_are_let_go_and_read_ones_kept() {
        let cache = ListingCache::new(1 << 20);
        let (idle, busy) = (
            AccountId::from(uuid::Uuid::new_v4()),
            AccountId::from(uuid::Uuid::new_v4()),
        );
        cache.put(&idle, 1, Arc::new(Listing::default()));
        cache.put(&busy, 1, Arc::new(Listing::default()));
        assert_eq!(cache.release_idle(Duration::from_secs(3600)), 0);
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get(&busy, 1).is_some());
        assert_eq!(cache.release_idle(Duration::from_millis(20)), 1);
        assert!(cache.get(&idle, 1).is_none());
        assert!(cache.get(&busy, 1).is_some());
    }
}
