//! Strongly consistent queries of an account's meters: a page at one end of an indexed order (a window),
//! and the whole account, read in parallel segments of its id range when it is large.

use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use futures::{StreamExt, TryStreamExt};

use super::capacity::spend_read;
use super::errors::{internal, sdk_error};
use super::items::from_item;
use super::keys::{Item, SortKeys, whole_partition};
use super::schema::{CREATED_INDEX, NAME_INDEX};
use super::table::Table;
use crate::domain::list::{ListPage, ListQuery, SortField, SortOrder};
use crate::domain::meter::{AccountId, Meter};
use crate::domain::reading::LIST_READINGS_BOUND_SECONDS;
use crate::store::error::StoreError;
use crate::store::listing::Listing;

const MAX_SEGMENTS: usize = 32;
const SEGMENTS_IN_FLIGHT: usize = 8;

/// Where a list changes how it reads. The defaults suit accounts of any size; tests shrink them so that
/// every way of reading is taken by a small account.
#[derive(Debug, Clone, Copy)]
pub struct ListTuning {
    /// A list whose page lies within this many meters of either end of an indexed order reads that end
    /// only; any other list reads the account's listing (or uses the one this process holds).
    pub window_meters: usize,
    /// A listing is read in parallel segments of about this many meters, at most `SEGMENTS_IN_FLIGHT` at
    /// once: DynamoDB serves each segment from its own start, rather than one long chain of 1 MB pages.
    pub segment_meters: usize,
    /// How old a listing's readings may be for a page to show them as they are; past it, the page's meters'
    /// readings are read fresh (and a sort by a reading reads the listing again). The bound a list keeps is
    /// `LIST_READINGS_BOUND_SECONDS`; the default leaves a whole read of a large account room within it.
    pub listing_readings_age: Duration,
}

impl Default for ListTuning {
    fn default() -> Self {
        Self {
            window_meters: 1_000,
            segment_meters: 2_500,
            listing_readings_age: Duration::from_secs(LIST_READINGS_BOUND_SECONDS - 15),
        }
    }
}

/// The queries of one table's meters, read as `ListTuning` says.
#[derive(Debug, Clone)]
pub(super) struct MeterQueries {
    table: Table,
    tuning: ListTuning,
}

impl MeterQueries {
    pub(super) fn new(table: Table, tuning: ListTuning) -> Self {
        Self { table, tuning }
    }

    pub(super) fn tuning(&self) -> ListTuning {
        self.tuning
    }

    /// One page of an indexed order, read from the nearer end of the index.
    pub(super) async fn window(
        &self,
        account: &AccountId,
        query: &ListQuery,
        window: Window,
        count: usize,
    ) -> Result<ListPage, StoreError> {
        let Window { need, from_end } = window;
        if need == 0 {
            return Ok(ListPage {
                meters: Vec::new(),
                count,
            });
        }
        let index = Index::of(query.sort_by).ok_or_else(|| internal("no index for this sort"))?;
        let ascending = (query.sort_order == SortOrder::Ascending) != from_end;
        // A text sort's ties are broken by id, which no index holds: read on to the end of the tie at the
        // page's edge, then sort what was read.
        let ties = query.sort_by != SortField::ID;
        let same_key = |a: &Meter, b: &Meter| query.sort_by.key(a) == query.sort_by.key(b);
        let mut read: Vec<Meter> = Vec::new();
        let mut start = None;
        let exhausted = loop {
            let want = if read.len() < need {
                need - read.len() + usize::from(ties)
            } else {
                50
            };
            let (meters, next) = self
                .query_page(account, index, ascending, Some(want), start, None)
                .await?;
            read.extend(meters);
            start = next;
            if start.is_none() {
                break read.len() < need;
            }
            if read.len() >= need
                && (!ties || read[need..].iter().any(|m| !same_key(m, &read[need - 1])))
            {
                break false;
            }
        };
        if read.len() > need {
            let edge = read[need - 1].clone();
            let tie = read[need..]
                .iter()
                .take_while(|m| ties && same_key(m, &edge))
                .count();
            read.truncate(need + tie);
        }
        read.sort_by(|a, b| query.compare(a, b));
        let offset = (query.page - 1).saturating_mul(query.limit);
        // What was read is the start of the order, or its end; or all of it. The count is never less than
        // the meters the read proves exist (a create may have landed after the head was read).
        let (first_position, count) = match (exhausted, from_end) {
            (true, _) => (0, read.len()),
            (false, false) => (0, count.max(read.len())),
            (false, true) => (count.saturating_sub(read.len()), count),
        };
        let meters = read
            .into_iter()
            .skip(offset.saturating_sub(first_position))
            .take(query.limit)
            .collect();
        Ok(ListPage { meters, count })
    }

    /// The account's meters, read in parallel segments of its id range when it is large.
    pub(super) async fn whole(
        &self,
        account: &AccountId,
        count: usize,
    ) -> Result<Listing, StoreError> {
        // Every meter's readings are at least as new as the read's start.
        let began = chrono::Utc::now();
        let segments = (count / self.tuning.segment_meters.max(1)).clamp(1, MAX_SEGMENTS);
        if segments == 1 {
            let meters = self.read_ids(account, 1, i64::MAX).await?;
            return Ok(Listing::new(meters).with_readings_as_of(began));
        }
        let end = |ascending| async move {
            let (meters, _) = self
                .query_page(account, Index::Id, ascending, Some(1), None, None)
                .await?;
            Ok::<_, StoreError>(meters.first().map(|meter| meter.id.get()))
        };
        let (Some(first), Some(last)) = (end(true).await?, end(false).await?) else {
            return Ok(Listing::default().with_readings_as_of(began));
        };
        let span = (last - first) / segments as i64 + 1;
        // The first and last segments are open-ended: a meter written while this read runs may fall outside
        // the range seen at its start (ids come in blocks, so not in creation order).
        let last_segment = segments as i64 - 1;
        let ranges = (0..=last_segment).map(|n| {
            let from = if n == 0 { 1 } else { first + n * span };
            let to = if n == last_segment {
                i64::MAX
            } else {
                first + (n + 1) * span - 1
            };
            (from, to)
        });
        let parts: Vec<Vec<Meter>> = futures::stream::iter(ranges)
            .map(|(from, to)| self.read_ids(account, from, to))
            .buffered(SEGMENTS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(Listing::new(parts.into_iter().flatten().collect()).with_readings_as_of(began))
    }

    /// The account's meters with ids `from..=to`, every 1 MB page of them.
    async fn read_ids(
        &self,
        account: &AccountId,
        from: i64,
        to: i64,
    ) -> Result<Vec<Meter>, StoreError> {
        let mut meters = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self
                .query_page(account, Index::Id, true, None, start, Some((from, to)))
                .await?;
            meters.extend(page);
            start = next;
            if start.is_none() {
                return Ok(meters);
            }
        }
    }

    /// One strongly consistent page of the account's meters in `index` order (ids `from..=to` when the
    /// index is the table's own), and where the next page starts.
    async fn query_page(
        &self,
        account: &AccountId,
        index: Index,
        ascending: bool,
        limit: Option<usize>,
        start: Option<Item>,
        ids: Option<(i64, i64)>,
    ) -> Result<(Vec<Meter>, Option<Item>), StoreError> {
        let call = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .set_index_name(index.name().map(str::to_owned))
            .scan_index_forward(ascending)
            .consistent_read(true)
            .set_limit(limit.map(|limit| limit.min(1_000) as i32))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let call = match (index, ids) {
            (Index::Id, Some((from, to))) => SortKeys::Meters { from, to }.of(account, call),
            (Index::Id, None) => SortKeys::AllMeters.of(account, call),
            // The sort indexes hold only meters.
            _ => whole_partition(account, call),
        };
        let page = call.send().await.map_err(sdk_error)?;
        spend_read(page.consumed_capacity());
        let meters = page
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((meters, page.last_evaluated_key))
    }
}

/// Where an indexed order is read from.
#[derive(Debug, Clone, Copy)]
enum Index {
    Id,
    Name,
    Created,
}

impl Index {
    /// The index that holds `field`'s order, if one does.
    fn of(field: SortField) -> Option<Self> {
        [
            (SortField::ID, Index::Id),
            (SortField::NAME, Index::Name),
            (SortField::CREATED_AT, Index::Created),
        ]
        .into_iter()
        .find(|(indexed, _)| *indexed == field)
        .map(|(_, index)| index)
    }

    fn name(self) -> Option<&'static str> {
        match self {
            Index::Id => None,
            Index::Name => Some(NAME_INDEX),
            Index::Created => Some(CREATED_INDEX),
        }
    }
}

/// A list read from one end of an index: the first `need` meters of the order, or of its reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub need: usize,
    pub from_end: bool,
}

impl Window {
    /// How `query` can be answered from an end of an index, given the account's `count`; `None` if it
    /// needs the whole account (a search or a filter, a sort with no index, a page deep in the middle).
    pub(super) fn plan(query: &ListQuery, count: usize, window_meters: usize) -> Option<Self> {
        if query.narrows() {
            return None;
        }
        Index::of(query.sort_by)?;
        let offset = (query.page - 1).saturating_mul(query.limit);
        let end = offset.saturating_add(query.limit).min(count);
        if offset >= count {
            // Past the end: an empty page, with the count the head holds.
            return Some(Self {
                need: 0,
                from_end: false,
            });
        }
        // Read from whichever end is nearer the page.
        let (to_page_end, from_end) = (end, count - offset);
        if from_end < to_page_end {
            return (from_end <= window_meters).then_some(Self {
                need: from_end,
                from_end: true,
            });
        }
        // From the start, the whole page is read whatever the head counted: a meter created since the head
        // was read moves the others along, and none of them may fall off the page for it.
        (to_page_end <= window_meters).then_some(Self {
            need: offset.saturating_add(query.limit),
            from_end: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let params = crate::domain::params::QueryParams::from_pairs(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        ListQuery::parse(&params).unwrap()
    }

    fn plan(pairs: &[(&str, &str)], count: usize) -> Option<Window> {
        Window::plan(&query(pairs), count, 1_000)
    }

    #[test]
    fn the_first_pages_of_indexed_orders_read_only_the_page() {
        for sort in ["id", "name", "created_at"] {
            for order in ["asc", "desc"] {
                let first = plan(&[("sortBy", sort), ("sortOrder", order)], 50_000);
                assert_eq!(
                    first,
                    Some(Window {
                        need: 20,
                        from_end: false
                    }),
                    "{sort} {order}"
                );
            }
        }
    }

    #[test]
    fn a_page_near_the_end_is_read_from_the_end() {
        let last = plan(&[("page", "2500")], 50_000);
        assert_eq!(
            last,
            Some(Window {
                need: 20,
                from_end: true
            })
        );
        let short_last = plan(&[("page", "50"), ("limit", "21")], 1_040);
        assert_eq!(
            short_last,
            Some(Window {
                need: 11,
                from_end: true
            })
        );
        assert_eq!(
            plan(&[("page", "9")], 100),
            Some(Window {
                need: 0,
                from_end: false
            })
        );
    }

    #[test]
    fn searches_unindexed_sorts_and_deep_middle_pages_need_the_whole_account() {
        assert_eq!(plan(&[("query", "a")], 10), None);
        assert_eq!(plan(&[("sortBy", "location")], 10), None);
        assert_eq!(plan(&[("page", "1250")], 50_000), None);
    }
}
