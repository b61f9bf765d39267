//! Lists: one page of an account's meters, exact and strongly consistent, read from the cheapest place that
//! can answer it (docs/dynamodb.md): the account's listing when this process holds one it can bring
//! current, else an end of an indexed order when the page lies near one, else the listing from wherever it
//! starts (`listings`). A page from a listing shows readings no older than `LIST_READINGS_BOUND_SECONDS`
//! allows (`ListTuning::listing_readings_age`): the listing's own when they are new enough, else its
//! meters' read fresh (`page_readings`); a sort by a reading reads the listing again, since the page's
//! order is the readings'.

use std::sync::Arc;

use super::head::{Head, Heads};
use super::listings::Listings;
use super::page_readings::PageReadings;
use super::queries::{MeterQueries, Window};
use crate::domain::list::{ListPage, ListQuery};
use crate::domain::meter::AccountId;
use crate::store::error::StoreError;
use crate::store::listing::Listing;

/// Reads of a window at the end of an order before a list gives up on windows, when every one met a write.
const END_WINDOW_ATTEMPTS: usize = 3;

/// The lists of one table's accounts.
#[derive(Debug, Clone)]
pub(super) struct Lister {
    heads: Heads,
    listings: Listings,
    queries: MeterQueries,
    page_readings: PageReadings,
}

impl Lister {
    pub(super) fn new(
        heads: Heads,
        listings: Listings,
        queries: MeterQueries,
        page_readings: PageReadings,
    ) -> Self {
        Self {
            heads,
            listings,
            queries,
            page_readings,
        }
    }

    pub(super) async fn list(
        &self,
        account: &AccountId,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        let window_meters = self.queries.tuning().window_meters;
        for _ in 0..END_WINDOW_ATTEMPTS {
            // The head first, so that a listing read after it and kept under its version can only be newer
            // than that version says, never older.
            let Some(head) = self.heads.read(account).await? else {
                // Every meter write makes its account's head: no head, no meter.
                return Ok(Listing::default().page(query));
            };
            let Some(window) = Window::plan(query, head.count, window_meters) else {
                let listing = self.listings.current(account, &head).await?;
                return self.page_of(account, &head, listing, query).await;
            };
            if let Some(listing) = self.listings.held(account, &head).await? {
                return self.page_of(account, &head, listing, query).await;
            }
            let page = self
                .queries
                .window(account, query, window, head.count)
                .await?;
            // A window read from the end is placed by the head's count: it holds only if no meter was
            // written in between, which the head's version tells (every meter write moves it).
            if !window.from_end
                || self.heads.read(account).await?.map(|now| now.version) == Some(head.version)
            {
                return Ok(page);
            }
        }
        // Writes kept moving the end of the order under the window: read the listing instead.
        let Some(head) = self.heads.read(account).await? else {
            return Ok(Listing::default().page(query));
        };
        let listing = self.listings.current(account, &head).await?;
        self.page_of(account, &head, listing, query).await
    }

    /// The page of `query` from `listing` (as of `head`), with readings no older than the bound allows.
    async fn page_of(
        &self,
        account: &AccountId,
        head: &Head,
        listing: Arc<Listing>,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        let age = self.queries.tuning().listing_readings_age;
        let oldest = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default();
        if listing.readings_since(oldest) {
            return Ok(listing.page(query));
        }
        if query.sort_by.follows_readings() {
            let listing = self.listings.readings_since(account, head, oldest).await?;
            return Ok(listing.page(query));
        }
        let mut page = listing.page(query);
        self.page_readings
            .refresh(account, &mut page.meters)
            .await?;
        Ok(page)
    }
}
