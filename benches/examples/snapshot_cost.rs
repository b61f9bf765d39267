use std::time::Instant;
use meters::domain::meter::{AccountId, Meter};
use meters::store::listing::Listing;
fn main() {
    let account = AccountId::from(uuid::Uuid::new_v4());
    let meters: Vec<Meter> = (0..50_000).map(|n| meters_testkit::meters::realistic(n as i64 + 1, account, n)).collect();
    let listing = Listing::new(meters.clone());
    let t = Instant::now();
    let bytes = meters::store::snapshots::encode(&account, 7, &listing).unwrap();
    println!("encode {:?} {} bytes", t.elapsed(), bytes.len());
    let json = serde_json::to_vec(&meters.iter().map(|m| (m.version, m)).collect::<Vec<_>>()).unwrap();
    println!("json {} bytes", json.len());
    for _ in 0..2 {
    let t = Instant::now();
    let mut d = flate2::read::GzDecoder::new(&bytes[..]); let mut out = Vec::new(); std::io::Read::read_to_end(&mut d, &mut out).unwrap();
    println!("gunzip {:?}", t.elapsed());
    let t = Instant::now();
    let parsed: Vec<(u64, Meter)> = serde_json::from_slice(&json).unwrap();
    println!("parse from slice {:?}", t.elapsed());
    let t = Instant::now();
    let l = Listing::new(parsed.into_iter().map(|(_, m)| m).collect());
    println!("listing new {:?} {}", t.elapsed(), l.len());
    let t = Instant::now();
    let s = meters::store::snapshots::decode(&account, &bytes).unwrap();
    println!("decode total {:?} {}", t.elapsed(), s.listing.len());
    }
}
