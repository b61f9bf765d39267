//! Lists exactly as the list conventions fix them, over accounts larger than one store page, right after writes.

use super::*;
use meters::store::{DeleteMeterRequest, UpdateMeterRequest};

pub(super) async fn a_list_holds_only_the_accounts_meters_in_id_order(store: Store) {
    let (mine, theirs) = (account(), account());
    let first = store
        .create(&mine, new_meter("a"), &tester())
        .await
        .unwrap();
    store
        .create(&theirs, new_meter("b"), &tester())
        .await
        .unwrap();
    let second = store
        .create(&mine, new_meter("c"), &tester())
        .await
        .unwrap();
    let listed = every_meter(&*store, &mine).await;
    assert_eq!(listed, vec![first, second]);
    assert!(every_meter(&*store, &account()).await.is_empty());
}

pub(super) async fn a_list_reads_every_page_of_a_partition_larger_than_one_megabyte(store: Store) {
    let account = account();
    // ~2.1 KB per meter: 600 meters are ~1.3 MB, more than one DynamoDB query page.
    let description = "d".repeat(2000);
    let total = 600;
    for batch in (0..total).collect::<Vec<_>>().chunks(20) {
        let creates = batch.iter().map(|n| {
            let store = Arc::clone(&store);
            let mut meter = new_meter(&format!("bulk-{n}"));
            meter.details.description = Change::Set(Description::parse(&description).unwrap());
            async move { store.create(&account, meter, &tester()).await.unwrap() }
        });
        join_all(creates).await;
    }
    let listed = every_meter(&*store, &account).await;
    assert_eq!(listed.len(), total);
    assert!(listed.windows(2).all(|pair| pair[0].id < pair[1].id));
}

/// 500 meters of ~2.2 KB (several 1 MB DynamoDB pages), with tied names in mixed case, unset locations
/// and readings, and a search word in a few descriptions.
pub(super) async fn a_varied_account(store: &Store) -> (AccountId, Vec<Meter>) {
    let account = account();
    let names = [
        "alpha",
        "Alpha",
        "beta",
        "Gamma",
        "gamma ray",
        "delta",
        "Épée",
    ];
    let mut meters = Vec::new();
    for batch in (0..500).collect::<Vec<usize>>().chunks(25) {
        let creates = batch.iter().map(|&n| {
            let store = Arc::clone(store);
            let mut meter = new_meter(names[n % names.len()]);
            meter.serial_number = SerialNumber::parse(&format!("SN-{n:04}")).unwrap();
            meter.meter_type = [MeterType::GAS, MeterType::ELECTRICITY, MeterType::WATER][n % 3];
            let details = &mut meter.details;
            let marker = if n % 37 == 0 { " needle" } else { "" };
            details.description = Change::Set(
                Description::parse(&format!("{}{marker}", "d".repeat(2000 - 8))).unwrap(),
            );
            if n % 3 != 0 {
                details.location =
                    Change::Set(Location::parse(&format!("Room {}", n % 11)).unwrap());
            }
            if n % 4 != 0 {
                details.last_reading_value =
                    Change::Set(ReadingValue::parse((n % 5) as f64 - 2.5).unwrap());
            }
            // The attributes lists filter by, each unset on some meters.
            if n % 2 == 0 {
                details.tariff_id =
                    Change::Set(ReferenceId::parse("tariff_id", (n % 4 + 1) as i64).unwrap());
            }
            if n % 5 != 0 {
                details.building_block_id = Change::Set(
                    ReferenceId::parse("building_block_id", (n % 6 + 1) as i64).unwrap(),
                );
            }
            if n % 3 != 1 {
                details.billing_direction =
                    Change::Set([BillingDirection::ACCREC, BillingDirection::ACCPAY][n % 2]);
            }
            async move { store.create(&account, meter, &tester()).await.unwrap() }
        });
        meters.extend(join_all(creates).await);
    }
    (account, meters)
}

/// The list conventions, applied the plain way: filter, sort, cut.
pub(super) fn expected_page(meters: &[Meter], query: &ListQuery) -> ListPage {
    let mut matching: Vec<Meter> = meters
        .iter()
        .filter(|m| query.matches(m))
        .cloned()
        .collect();
    matching.sort_by(|a, b| query.compare(a, b));
    let count = matching.len();
    let offset = (query.page - 1) * query.limit;
    ListPage {
        meters: matching
            .into_iter()
            .skip(offset)
            .take(query.limit)
            .collect(),
        count,
    }
}

pub(super) async fn every_list_variant_follows_the_list_conventions_over_several_store_pages(
    store: Store,
) {
    let (account, meters) = a_varied_account(&store).await;
    let limit = 20;
    let last_page = meters.len().div_ceil(limit);
    let mut variants = Vec::new();
    // The orders an index serves first, while the process holds no listing; then the rest.
    let indexed = ["id", "name", "created_at"];
    let fields = Meter::SORTABLE.iter().map(|field| field.name);
    let ordered: Vec<&str> = indexed
        .iter()
        .copied()
        .chain(fields.filter(|name| !indexed.contains(name)))
        .collect();
    for name in ordered {
        for sort_order in [SortOrder::Ascending, SortOrder::Descending] {
            for page in [1, 2, last_page - 1, last_page, last_page + 1, last_page / 2] {
                variants.push(ListQuery {
                    page,
                    limit,
                    sort_by: SortField::named(name).unwrap(),
                    sort_order,
                    ..ListQuery::default()
                });
            }
        }
    }
    for search in ["needle", "alpha", "room 1", "épée", "nothing-matches-this"] {
        for (sort_by, page) in [("id", 1), ("name", 1), ("name", 2), ("location", 1)] {
            variants.push(ListQuery {
                page,
                limit,
                sort_by: SortField::named(sort_by).unwrap(),
                sort_order: SortOrder::Descending,
                search: Some(search.to_owned()),
                ..ListQuery::default()
            });
        }
    }
    // Filters, alone, together, with the search, every kind of sort and paging; one that admits nothing.
    let reference = |n: i64| Some(ReferenceId::parse("test", n).unwrap());
    let since = meters[meters.len() / 2].updated_at;
    let filtered = [
        (
            Filters {
                meter_type: Some(MeterType::GAS),
                ..Filters::default()
            },
            None,
            "id",
            1,
        ),
        (
            Filters {
                meter_type: Some(MeterType::GAS),
                tariff_id: reference(1),
                ..Filters::default()
            },
            None,
            "name",
            2,
        ),
        (
            Filters {
                building_block_id: reference(3),
                ..Filters::default()
            },
            Some("alpha"),
            "location",
            1,
        ),
        (
            Filters {
                billing_direction: Some(BillingDirection::ACCPAY),
                ..Filters::default()
            },
            None,
            "name",
            2,
        ),
        (
            Filters {
                updated_since: Some(since),
                ..Filters::default()
            },
            None,
            "created_at",
            1,
        ),
        (
            Filters {
                updated_since: Some(since),
                meter_type: Some(MeterType::WATER),
                ..Filters::default()
            },
            None,
            "updated_at",
            3,
        ),
        (
            Filters {
                communication_type: Some(CommunicationType::NONE),
                ..Filters::default()
            },
            None,
            "id",
            last_page,
        ),
        (
            Filters {
                gateway_id: reference(5),
                ..Filters::default()
            },
            None,
            "id",
            1,
        ),
    ];
    for (filters, search, sort_by, page) in filtered {
        variants.push(ListQuery {
            page,
            limit,
            sort_by: SortField::named(sort_by).unwrap(),
            sort_order: SortOrder::Descending,
            search: search.map(str::to_owned),
            filters,
        });
    }
    variants.push(ListQuery {
        limit: 100,
        page: 5,
        ..ListQuery::default()
    });
    for query in &variants {
        let listed = store.list(&account, query).await.unwrap();
        let expected = expected_page(&meters, query);
        let ids = |page: &ListPage| page.meters.iter().map(|m| m.id.get()).collect::<Vec<_>>();
        assert_eq!(
            (ids(&listed), listed.count),
            (ids(&expected), expected.count),
            "{query:?}"
        );
        assert_eq!(listed.meters, expected.meters, "{query:?}");
    }
}

pub(super) async fn a_list_right_after_a_write_sees_it_when_the_account_was_listed_before(
    store: Store,
) {
    let account = account();
    let kept = store
        .create(&account, new_meter("kept"), &tester())
        .await
        .unwrap();
    let doomed = store
        .create(&account, new_meter("doomed"), &tester())
        .await
        .unwrap();
    // A search needs the whole account: the store now holds its listing.
    let search = |text: &str| ListQuery {
        search: Some(text.to_owned()),
        ..ListQuery::default()
    };
    assert_eq!(store.list(&account, &search("e")).await.unwrap().count, 2);
    let added = store
        .create(&account, new_meter("added"), &tester())
        .await
        .unwrap();
    let renamed = store
        .update(
            &account,
            UpdateMeterRequest {
                id: kept.id,
                changes: rename("kept, renamed"),
                read_only: ReadOnlyEcho::default(),
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    store
        .delete(
            &account,
            DeleteMeterRequest {
                id: doomed.id,
                if_match: IfMatch::Any,
                actor: tester(),
            },
        )
        .await
        .unwrap();
    let listed = store.list(&account, &search("e")).await.unwrap();
    assert_eq!((listed.meters, listed.count), (vec![renamed, added], 2));
}

/// Lists while creates race them, in one store: see `racing_lists_and_creates`.
pub(super) async fn lists_racing_creates_miss_no_acknowledged_meter(store: Store) {
    let writers = vec![Arc::clone(&store); 3];
    racing_lists_and_creates(writers, move || Arc::clone(&store)).await;
}

/// Three writers create meters (named to sort first) while three listers list until the writers are done
/// (40 times each at least), rotating through orders a create can push meters along in, each list from
/// `lister()`. Every meter whose create was acknowledged before a list began is on that list's page (all
/// fit on one), and the count is never below what the page shows.
pub(super) async fn racing_lists_and_creates(
    writers: Vec<Store>,
    lister: impl Fn() -> Store + Send + Sync + 'static,
) {
    const CREATES: usize = 25;
    const LISTERS: usize = 3;
    const LISTS: usize = 40;
    let account = account();
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(writers.len()));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    for name in ["mmm 1", "mmm 2", "zzz old meter"] {
        let meter = writers[0]
            .create(&account, new_meter(name), &tester())
            .await
            .unwrap();
        acknowledged.lock().unwrap().push(meter.id);
    }
    let writer_count = writers.len();
    let writers: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(writer, store)| {
            let (acknowledged, writing) = (Arc::clone(&acknowledged), Arc::clone(&writing));
            tokio::spawn(async move {
                for n in 0..CREATES {
                    let name = format!("aaa {writer}-{n:02}");
                    let meter = store
                        .create(&account, new_meter(&name), &tester())
                        .await
                        .unwrap();
                    acknowledged.lock().unwrap().push(meter.id);
                }
                writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .collect();
    let orders = [
        ("name", SortOrder::Ascending),
        ("id", SortOrder::Descending),
        ("created_at", SortOrder::Descending),
        ("id", SortOrder::Ascending),
    ];
    let lister = Arc::new(lister);
    let listers = (0..LISTERS).map(|lister_number| {
        let (lister, acknowledged) = (Arc::clone(&lister), Arc::clone(&acknowledged));
        let writing = Arc::clone(&writing);
        tokio::spawn(async move {
            let mut omissions = Vec::new();
            let mut lists = 0;
            for n in 0.. {
                if n >= LISTS && writing.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    break;
                }
                lists += 1;
                let (sort, order) = orders[(lister_number + n) % orders.len()];
                let query = ListQuery {
                    limit: 100,
                    sort_by: SortField::named(sort).unwrap(),
                    sort_order: order,
                    ..ListQuery::default()
                };
                let before: Vec<MeterId> = acknowledged.lock().unwrap().clone();
                let listed = lister().list(&account, &query).await.unwrap();

                assert!(listed.count >= listed.meters.len(), "{sort} {order:?}");
                let shown: Vec<MeterId> = listed.meters.iter().map(|meter| meter.id).collect();
                omissions.extend(before.into_iter().filter(|id| !shown.contains(id)));
            }
            (lists, omissions)
        })
    });
    let (mut lists, mut omissions) = (0, Vec::new());
    for lister in join_all(listers).await {
        let (listed, omitted) = lister.expect("a lister");
        lists += listed;
        omissions.extend(omitted);
    }
    for writer in join_all(writers).await {
        writer.expect("a writer");
    }
    println!(
        "{lists} lists racing {} creates: {} omissions",
        writer_count * CREATES,
        omissions.len()
    );
    assert!(
        omissions.is_empty(),
        "acknowledged meters missing: {omissions:?}"
    );
}
