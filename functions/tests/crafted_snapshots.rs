//! Listing snapshots as anyone with write access to the bucket could make them, read by the real list-meters
//! binary cold: none crashes or exhausts the process, none is served; each is refused with its reason in the
//! log and the account read whole, and the answer is the account's true listing.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use meters::domain::meter::{
    AccountId, CommunicationType, MeterChanges, MeterName, MeterType, NewMeter, SerialNumber,
};
use meters::store::MeterStore;
use meters::store::snapshots::{S3Snapshots, decode};
use meters_testkit::function::{Function, invoke};
use meters_testkit::runtime_api::RuntimeApi;
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET, dynamodb, measure, s3};
use serde_json::Value;

const METERS: usize = 20;

fn gzipped(lines: &[&[u8]]) -> Vec<u8> {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    for line in lines {
        gzip.write_all(line).unwrap();
        gzip.write_all(b"\n").unwrap();
    }
    gzip.finish().unwrap()
}

/// 400 MB of spaces on one line after a sound header: a few hundred KB of gzip.
fn bomb(header: &[u8]) -> Vec<u8> {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(header).unwrap();
    gzip.write_all(b"\n").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..400 {
        gzip.write_all(&spaces).unwrap();
    }
    gzip.finish().unwrap()
}

struct Case {
    name: &'static str,
    /// What the log says of the refusal.
    reason: &'static str,
    craft: fn(&SoundSnapshot) -> Vec<u8>,
}

/// The account's own snapshot, as list-meters wrote it: its lines, parsed.
struct SoundSnapshot {
    header: Value,
    rows: Vec<Value>,
}

impl SoundSnapshot {
    fn header_with(&self, key: &str, value: Value) -> Vec<u8> {
        let mut header = self.header.clone();
        header[key] = value;
        header.to_string().into_bytes()
    }

    fn with_rows(&self, rows: &[Value]) -> Vec<u8> {
        let header = self.header_with("meters", rows.len().into());
        let rows: Vec<Vec<u8>> = rows
            .iter()
            .map(|row| row.to_string().into_bytes())
            .collect();
        let mut lines: Vec<&[u8]> = vec![&header];
        lines.extend(rows.iter().map(Vec::as_slice));
        gzipped(&lines)
    }
}

const CASES: [Case; 5] = [
    Case {
        name: "a header claiming a trillion meters",
        reason: "a snapshot may hold",
        craft: |sound| gzipped(&[&sound.header_with("meters", 1_000_000_000_000u64.into())]),
    },
    Case {
        name: "400 MB of spaces on one line",
        reason: "a line longer than",
        craft: |sound| bomb(&sound.header_with("meters", METERS.into())),
    },
    Case {
        name: "a row twice, at the head's version and count",
        reason: "twice",
        craft: |sound| {
            let mut rows = sound.rows.clone();
            rows[1] = rows[0].clone();
            sound.with_rows(&rows)
        },
    },
    Case {
        name: "a row past the list version",
        reason: "outside 1 to the list version",
        craft: |sound| {
            let mut rows = sound.rows.clone();
            rows[3][0] = (sound.header["list_version"].as_u64().unwrap() + 1_000_000).into();
            sound.with_rows(&rows)
        },
    },
    Case {
        name: "a row of another account",
        reason: "another account's meters",
        craft: |sound| {
            let mut rows = sound.rows.clone();
            rows[5][1]["account_id"] = uuid::Uuid::new_v4().to_string().into();
            sound.with_rows(&rows)
        },
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local and moto: run scripts/test"]
async fn a_crafted_snapshot_is_refused_with_its_reason_and_the_account_listed_whole_within_96_mib()
{
    let (config, store) = dynamodb::fresh_table("crafted-snapshots").await;
    let (bucket, _) = s3::fresh_bucket("crafted-snapshots").await;
    let mut env = dynamodb::function_environment(&config, TEST_SECRET);
    env.extend(s3::function_environment(&bucket));
    env.push(("RUST_LOG".into(), "info".into()));
    for case in CASES {
        let account = AccountId::from(uuid::Uuid::new_v4());
        for n in 0..METERS {
            let new = NewMeter {
                name: MeterName::parse(&format!("Meter {n}")).unwrap(),
                serial_number: SerialNumber::parse(&format!("SN-{n}")).unwrap(),
                meter_type: MeterType::GAS,
                communication_type: CommunicationType::NONE,
                details: MeterChanges::default(),
            };
            store
                .create(&account, new, &meters_testkit::meters::tester())
                .await
                .unwrap();
        }
        let list = HttpEvent::new("GET", "/api/v1/meters")
            .bearer(&token_for(TEST_SECRET, &[account]))
            // A search: the path that holds the account's listing (a first page in id order reads only the page).
            .query(&format!("account_id={account}&limit=100&query=meter"))
            .http_api();
        // The account's own snapshot: a first process reads the account whole and writes it.
        let key = S3Snapshots::key_of(&account);
        let mut runtime = RuntimeApi::start().await;
        let first = Function::start(
            std::path::Path::new(env!("CARGO_BIN_EXE_list-meters")),
            &runtime,
            &env,
        );
        let (_, truth) = invoke(&mut runtime, &list).await;
        let Some(written) = s3::written_within(&bucket, &key, None, Duration::from_secs(10)).await
        else {
            panic!("no snapshot written: {}", first.stop().1);
        };
        first.stop();
        decode(&account, &written).expect("list-meters writes a sound snapshot");
        let text = {
            use std::io::Read;
            let mut text = String::new();
            flate2::read::GzDecoder::new(written.as_slice())
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        let mut lines = text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap());
        let sound = SoundSnapshot {
            header: lines.next().unwrap(),
            rows: lines.collect(),
        };
        assert_eq!(sound.rows.len(), METERS);

        s3::put(&bucket, &key, (case.craft)(&sound)).await;
        let mut runtime = RuntimeApi::start().await;
        let cold = Function::start(
            std::path::Path::new(env!("CARGO_BIN_EXE_list-meters")),
            &runtime,
            &env,
        );
        let (_, answer) = invoke(&mut runtime, &list).await;
        let peak_mib = measure::peak_rss_kib(cold.id()) as f64 / 1024.0;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, logs) = cold.stop();
        assert_eq!(answer.status, 200, "{}: {answer:?}", case.name);
        assert_eq!(answer.body["count"], METERS, "{}", case.name);
        assert_eq!(answer.body["data"], truth.body["data"], "{}", case.name);
        assert!(
            logs.contains("snapshot not read; reading the account whole")
                && logs.contains(case.reason),
            "{}: {logs}",
            case.name
        );
        assert!(peak_mib < 96.0, "{}: peak RSS {peak_mib:.1} MiB", case.name);
    }
}
