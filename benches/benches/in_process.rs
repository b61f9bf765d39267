//! In-process costs: what the shared crate adds around the store's round trip.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use meters::auth::AuthConfig;
use meters::auth::Authenticator;
use meters::domain::list::{ListQuery, SortField, SortOrder};
use meters::domain::meter::{
    AccountId, Change, CommunicationType, CreateMeterBody, Location, Meter, MeterChanges, MeterId,
    MeterName, MeterType, NewMeter, ReadingValue, SerialNumber,
};
use meters::http::envelope;
use meters::store::EmbeddedStore;
use meters::store::listing::Listing;
use meters::{App, Endpoint};
use meters_testkit::jwks::{JwksServer, SigningKey};
use meters_testkit::meters::tester;
use meters_testkit::tokens::{hs256_config, token_for};
use meters_testkit::{ACCOUNT, HttpEvent, TEST_SECRET};
use serde_json::json;

fn auth() -> AuthConfig {
    hs256_config(TEST_SECRET)
}

fn account() -> AccountId {
    meters_testkit::tokens::account(ACCOUNT)
}

fn token() -> String {
    token_for(TEST_SECRET, &[account()])
}

fn full_body() -> String {
    json!({
        "account_id": ACCOUNT, "name": "Main incomer", "serial_number": "EM-2024-000917", "meter_type": "ELECTRICITY",
        "communication_type": "MODBUS", "description": "incoming supply", "reading_interval": 900, "building_block_id": 3,
        "gateway_id": null, "tariff_id": 12, "last_reading_value": 10423.5, "last_reading_at": "2026-11-24T23:45:00Z",
        "location": "Basement switch room", "billing_direction": "ACCREC"
    })
    .to_string()
}

fn http_event(method: &str, path: &str, query: &str, body: Option<&str>) -> String {
    let event = HttpEvent::new(method, path).query(query).bearer(&token());
    match body {
        Some(body) => event.body(body),
        None => event,
    }
    .http_api()
    .to_string()
}

fn request(event: &str) -> Request {
    meters::runtime::request_from_event(event).expect("event")
}

fn meters(count: usize) -> Vec<Meter> {
    let at = chrono::DateTime::from_timestamp(1_795_600_000, 0).expect("time");
    (0..count)
        .map(|n| {
            let new = NewMeter {
                name: MeterName::parse(&format!("Meter {:05}", (n * 7919) % count)).expect("name"),
                serial_number: SerialNumber::parse(&format!("SN-{n:06}")).expect("serial"),
                meter_type: MeterType::ELECTRICITY,
                communication_type: CommunicationType::MODBUS,
                details: MeterChanges {
                    location: if n % 3 == 0 {
                        Change::Clear
                    } else {
                        Change::Set(Location::parse(&format!("Floor {}", n % 40)).expect("loc"))
                    },
                    last_reading_value: Change::Set(
                        ReadingValue::parse((n % 997) as f64 * 1.5).expect("value"),
                    ),
                    ..MeterChanges::default()
                },
            };
            Meter::create(MeterId::new(n as i64 + 1).expect("id"), account(), new, at)
        })
        .collect()
}

fn costs(c: &mut Criterion) {
    let authenticator = Authenticator::new(&auth()).expect("authenticator");
    let get_request = request(&http_event(
        "GET",
        "/api/v1/meters/1",
        &format!("account_id={ACCOUNT}"),
        None,
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function("token verification", |b| {
        b.iter(|| {
            runtime
                .block_on(authenticator.authenticate(black_box(&get_request)))
                .expect("valid")
        })
    });

    // JWKS mode: the identity provider's key set served over loopback HTTP, RS256 as Cognito signs.
    let jwks = runtime.block_on(JwksServer::start());
    let provider_key = SigningKey::rsa("bench-key", jsonwebtoken::Algorithm::RS256);
    jwks.publish(&[&provider_key], &[]);
    let jwks_config = AuthConfig::read(&meters::config::Env::of([(
        "JWT_JWKS_URL",
        jwks.url.as_str(),
    )]))
    .expect("a JWKS configuration");
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let provider_token = provider_key.sign(&json!({"exp": exp, "account_ids": [ACCOUNT]}));
    let jwks_request = request(
        &HttpEvent::new("GET", "/api/v1/meters/1")
            .query(&format!("account_id={ACCOUNT}"))
            .bearer(&provider_token)
            .http_api()
            .to_string(),
    );
    let warm_jwks = Authenticator::new(&jwks_config).expect("authenticator");
    runtime
        .block_on(warm_jwks.authenticate(&jwks_request))
        .expect("the key is fetched");
    c.bench_function("token verification, JWKS key cached (RS256)", |b| {
        b.iter(|| {
            runtime
                .block_on(warm_jwks.authenticate(black_box(&jwks_request)))
                .expect("valid")
        })
    });
    // A new process's first token: the HTTPS client and trust store, the fetch, parsing the set, verifying.
    c.bench_function("first JWKS fetch and verification (RS256, loopback)", |b| {
        b.iter_batched(
            || Authenticator::new(&jwks_config).expect("authenticator"),
            |cold| {
                runtime
                    .block_on(cold.authenticate(black_box(&jwks_request)))
                    .expect("valid")
            },
            BatchSize::PerIteration,
        )
    });

    let body = full_body();
    let create_event = http_event("POST", "/api/v1/meters", "", Some(&body));
    c.bench_function("request parsing and validation (create event)", |b| {
        b.iter(|| {
            let request = request(black_box(&create_event));
            CreateMeterBody::parse(meters::http::request::body(&request).expect("body"))
                .expect("valid")
        })
    });

    let meter = meters(1).remove(0);
    c.bench_function("response serialisation (one meter)", |b| {
        b.iter(|| envelope::success(StatusCode::OK, black_box(&meter), None))
    });

    let many = meters(10_000);
    let query = ListQuery {
        page: 3,
        limit: 20,
        sort_by: SortField::named("name").expect("sortable"),
        sort_order: SortOrder::Descending,
        search: Some("floor 1".into()),
        ..ListQuery::default()
    };
    c.bench_function("list filter + sort + page (10,000 meters)", |b| {
        b.iter_batched(
            || many.clone(),
            |all| Listing::new(all).page(&query),
            BatchSize::LargeInput,
        )
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = App::new(
        EmbeddedStore::in_memory().expect("store"),
        Authenticator::new(&auth()).expect("authenticator"),
    );
    let seeded = runtime.block_on(async {
        let new = CreateMeterBody::parse(full_body().as_bytes())
            .expect("body")
            .meter;
        app.meters
            .create(&account(), new, &tester())
            .await
            .expect("seed")
            .id
    });
    let get_event = http_event(
        "GET",
        &format!("/api/v1/meters/{seeded}"),
        &format!("account_id={ACCOUNT}"),
        None,
    );
    c.bench_function("get handler, in-memory store", |b| {
        b.to_async(&runtime).iter_batched(
            || request(&get_event),
            |request| async {
                assert_eq!(
                    Endpoint::GetMeter.handle(&app, request).await.status(),
                    StatusCode::OK
                )
            },
            BatchSize::SmallInput,
        )
    });
    let listed_account = AccountId::parse("0b7e9d4c-1a2b-4c3d-8e9f-001122334455").expect("account");
    runtime.block_on(async {
        for meter in meters(1_000) {
            let new = NewMeter {
                name: meter.name,
                serial_number: meter.serial_number,
                meter_type: meter.meter_type,
                communication_type: meter.communication_type,
                details: MeterChanges::default(),
            };
            app.meters
                .create(&listed_account, new, &tester())
                .await
                .expect("seed");
        }
    });
    c.bench_function("store list of 1,000 meters, in-memory store", |b| {
        b.to_async(&runtime).iter(|| async {
            let all = meters::domain::list::ListQuery {
                limit: 100,
                ..Default::default()
            };
            let page = app.meters.list(&listed_account, &all).await.expect("list");
            page.count
        })
    });
    c.bench_function("create handler, in-memory store", |b| {
        b.to_async(&runtime).iter_batched(
            || request(&create_event),
            |request| async {
                assert_eq!(
                    Endpoint::CreateMeter.handle(&app, request).await.status(),
                    StatusCode::CREATED
                )
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = costs
}
criterion_main!(benches);
