//! What a listing really costs: builds one account's listing of realistic meters in this process, works out
//! every order a list can ask for and the search text, and compares the memory the process took (VmRSS)
//! with what the listing says it holds (`Listing::bytes`, which the listing budget adds up).
//!
//! Usage: listing-size [--meters 50000]

use meters::domain::list::{ListQuery, SortField, SortOrder};
use meters::domain::meter::{AccountId, Meter};
use meters::store::listing::Listing;
use meters_testkit::measure;

fn rss_kib() -> u64 {
    measure::rss_kib(std::process::id())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut count = 50_000usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--meters" => {
                count = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--meters N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let account = AccountId::from(uuid::Uuid::new_v4());
    let before = rss_kib();
    let meters: Vec<Meter> = (1..=count as i64)
        .map(|id| meters_testkit::meters::realistic(id, account, id as usize))
        .collect();
    let meters_alone = rss_kib();
    let listing = Listing::new(meters);
    let listed = rss_kib();
    for field in Meter::SORTABLE {
        for sort_order in [SortOrder::Ascending, SortOrder::Descending] {
            let query = ListQuery {
                sort_by: SortField::named(field.name).expect("a sortable field"),
                sort_order,
                search: Some("needle".into()),
                ..ListQuery::default()
            };
            std::hint::black_box(listing.page(&query));
        }
    }
    eprintln!(
        "meters alone {:.1} MiB, listing without orders {:.1} MiB, with every order {:.1} MiB",
        (meters_alone - before) as f64 / 1024.0,
        (listed - before) as f64 / 1024.0,
        (rss_kib() - before) as f64 / 1024.0
    );
    let taken = (rss_kib() - before) * 1024;
    let said = listing.bytes();
    println!(
        "| {count} | {:.1} | {:.1} | {:.0} | {:.0} | {:+.0} % |",
        taken as f64 / (1 << 20) as f64,
        said as f64 / (1 << 20) as f64,
        taken as f64 / count as f64,
        said as f64 / count as f64,
        (said as f64 / taken as f64 - 1.0) * 100.0
    );
    std::hint::black_box(&listing);
}
