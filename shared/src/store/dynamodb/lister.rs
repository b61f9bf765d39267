//! Lists: one page of an account's meters, exact and strongly consistent, read from the cheapest place that
//! can answer it (docs/dynamodb.md): the account's listing when this process holds one it can bring
//! current, else an end of an indexed order when the page lies near one, else the listing from wherever it
//! starts (`listings`).

use super::head::Heads;
use super::listings::Listings;
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
}

impl Lister {
    pub(super) fn new(heads: Heads, listings: Listings, queries: MeterQueries) -> Self {
        Self {
            heads,
            listings,
            queries,
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
                return Ok(self.listings.current(account, &head).await?.page(query));
            };
            if let Some(listing) = self.listings.held(account, &head).await? {
                return Ok(listing.page(query));
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
        Ok(self.listings.current(account, &head).await?.page(query))
    }
}
