//! The API over real HTTP: `meters-local` started on a free port, called as a client would call it.

use std::time::Duration;

use futures::future::join_all;
use meters::auth::TokenIssuer;
use meters::meter::AccountId;
use meters_local::{Storage, serve, start};
use meters_testkit::TEST_SECRET as SECRET;
use meters_testkit::tokens::hs256_config;
use serde_json::{Value, json};

struct TestApp {
    base: String,
    client: reqwest::Client,
    issuer: TokenIssuer,
    account: AccountId,
    token: String,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn data(&self) -> &Value {
        &self.body["data"]
    }

    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    fn ids(&self) -> Vec<i64> {
        self.data()
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    }
}

async fn spawn_app() -> TestApp {
    let auth = hs256_config(SECRET);
    let (listener, app) = start(&Storage::Memory, &auth, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, app, std::future::pending()));
    let issuer = TokenIssuer::new(&auth).unwrap();
    let account = AccountId::from(uuid::Uuid::new_v4());
    let token = issuer.issue(&[account], Duration::from_secs(600)).unwrap();
    TestApp {
        base,
        client: reqwest::Client::new(),
        issuer,
        account,
        token,
    }
}

impl TestApp {
    fn token_for(&self, accounts: &[AccountId]) -> String {
        self.issuer
            .issue(accounts, Duration::from_secs(600))
            .unwrap()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("a JSON body")
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn create(&self, body: Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            "/api/v1/meters",
            Some(&self.token),
            Some(body.to_string()),
        )
        .await
    }

    async fn create_named(&self, name: &str) -> i64 {
        let reply = self.create(json!({"account_id": self.account.to_string(), "name": name, "serial_number": format!("SN-{name}")})).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.data()["id"].as_i64().unwrap()
    }

    async fn get(&self, id: i64) -> Reply {
        self.send(
            reqwest::Method::GET,
            &format!("/api/v1/meters/{id}?account_id={}", self.account),
            Some(&self.token),
            None,
        )
        .await
    }

    async fn update(&self, id: i64, body: Value) -> Reply {
        self.send(
            reqwest::Method::PUT,
            &format!("/api/v1/meters/{id}"),
            Some(&self.token),
            Some(body.to_string()),
        )
        .await
    }

    async fn delete(&self, id: i64) -> Reply {
        self.send(
            reqwest::Method::DELETE,
            &format!("/api/v1/meters/{id}?account_id={}", self.account),
            Some(&self.token),
            None,
        )
        .await
    }

    async fn list(&self, query: &str) -> Reply {
        let path = format!("/api/v1/meters?account_id={}&{query}", self.account);
        self.send(reqwest::Method::GET, &path, Some(&self.token), None)
            .await
    }
}

fn full_body(account: &AccountId) -> Value {
    json!({
        "account_id": account.to_string(), "name": "Main incomer", "serial_number": "EM-2024-000917",
        "meter_type": "ELECTRICITY", "communication_type": "MODBUS", "description": "incoming supply",
        "reading_interval": 900, "building_block_id": 3, "gateway_id": null, "tariff_id": 12,
        "last_reading_value": 10423.5, "last_reading_at": "2026-11-24T23:45:00Z",
        "location": "Basement switch room", "billing_direction": "ACCREC"
    })
}

/// An error envelope whose `error` is about `field`: the message begins `field: ` (so `id` does not match
/// an error about `account_id`).
fn assert_field_error(reply: &Reply, status: u16, field: &str) {
    assert_error_envelope(reply, status);
    assert!(
        reply.error().starts_with(&format!("{field}: ")),
        "error `{}` should be about `{field}`",
        reply.error()
    );
}

/// An error envelope whose `error` says `text`, for errors that are not about one field.
fn assert_error_mentions(reply: &Reply, status: u16, text: &str) {
    assert_error_envelope(reply, status);
    assert!(
        reply.error().contains(text),
        "error `{}` should say `{text}`",
        reply.error()
    );
}

fn assert_error_envelope(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.body["success"], false, "{reply:?}");
    assert!(reply.body["message"].is_string(), "{reply:?}");
    assert!(reply.headers.contains_key("x-request-id"), "{reply:?}");
    assert_eq!(reply.headers["cache-control"], "no-store", "{reply:?}");
    assert_eq!(
        reply.headers["x-content-type-options"], "nosniff",
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_meter_created_with_every_field_is_returned_with_201_and_its_location() {
    let app = spawn_app().await;
    let reply = app.create(full_body(&app.account)).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["success"], true);
    let meter = reply.data();
    let id = meter["id"].as_i64().unwrap();
    assert_eq!(reply.headers["location"], format!("/api/v1/meters/{id}"));
    let mut expected = full_body(&app.account);
    for field in ["id", "created_at", "updated_at"] {
        expected[field] = meter[field].clone();
    }
    assert_eq!(meter, &expected);
    assert!(meter["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(meter["created_at"], meter["updated_at"]);
}

#[tokio::test]
async fn a_created_meter_can_be_read_updated_listed_and_deleted() {
    let app = spawn_app().await;
    let created = app.create(full_body(&app.account)).await.data().clone();
    let id = created["id"].as_i64().unwrap();

    let read = app.get(id).await;
    assert_eq!((read.status, read.data()), (200, &created));

    let update = json!({
        "account_id": app.account.to_string(), "name": "Renamed", "description": "new text", "reading_interval": 60,
        "gateway_id": 9, "building_block_id": 4, "tariff_id": 13, "last_reading_value": -2.25,
        "last_reading_at": "2026-11-25T12:00:00+01:00", "location": "Roof", "billing_direction": "ACCPAY"
    });
    let updated = app.update(id, update).await;
    assert_eq!(updated.status, 200, "{updated:?}");
    let meter = updated.data();
    assert_eq!(meter["name"], "Renamed");
    assert_eq!(meter["gateway_id"], 9);
    assert_eq!(meter["last_reading_at"], "2026-11-25T11:00:00Z");
    assert_eq!(meter["billing_direction"], "ACCPAY");
    assert_eq!(meter["serial_number"], created["serial_number"]);
    assert_eq!(meter["created_at"], created["created_at"]);
    assert_eq!(app.get(id).await.data(), meter);

    let listed = app.list("").await;
    assert_eq!(
        (listed.status, listed.body["count"].as_u64()),
        (200, Some(1))
    );
    assert_eq!(&listed.data()[0], meter);

    let deleted = app.delete(id).await;
    assert_eq!((deleted.status, &deleted.body), (204, &Value::Null));
    assert_error_mentions(
        &app.get(id).await,
        404,
        &format!("meter {id} does not exist"),
    );
}

#[tokio::test]
async fn every_validation_rule_of_create_answers_400_naming_the_field() {
    let app = spawn_app().await;
    let account = app.account.to_string();
    let base = json!({"account_id": account, "name": "n", "serial_number": "s"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = vec![
        (without("account_id"), "account_id"),
        (without("name"), "name"),
        (without("serial_number"), "serial_number"),
        (with("account_id", json!("not-a-uuid")), "account_id"),
        // Unknown fields are the body's fault: "body: unknown field `colour`".
        (with("colour", json!("red")), "body"),
        (with("name", json!(42)), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("n".repeat(201))), "name"),
        (
            with("serial_number", json!("s".repeat(101))),
            "serial_number",
        ),
        (with("serial_number", json!("tab\there")), "serial_number"),
        (with("meter_type", json!("electricity")), "meter_type"),
        (
            with("communication_type", json!("BLUETOOTH")),
            "communication_type",
        ),
        (
            with("billing_direction", json!("accrec")),
            "billing_direction",
        ),
        (with("location", json!("l".repeat(501))), "location"),
        (with("description", json!("d".repeat(2001))), "description"),
        (with("reading_interval", json!(0)), "reading_interval"),
        (
            with("reading_interval", json!(31_536_001)),
            "reading_interval",
        ),
        (with("building_block_id", json!(0)), "building_block_id"),
        (with("gateway_id", json!("7")), "gateway_id"),
        (with("tariff_id", json!(-1)), "tariff_id"),
        (
            with("last_reading_value", json!("12")),
            "last_reading_value",
        ),
        (
            with("last_reading_at", json!("2026-11-24T23:45:00")),
            "last_reading_at",
        ),
        (with("id", json!(5)), "id"),
    ];
    for (body, field) in cases {
        assert_field_error(&app.create(body).await, 400, field);
    }
    for raw in ["[1]", "not json", "", "{\"name\":"] {
        let reply = app
            .send(
                reqwest::Method::POST,
                "/api/v1/meters",
                Some(&app.token),
                Some(raw.to_owned()),
            )
            .await;
        assert_field_error(&reply, 400, "body");
    }
    let reply = app.list("").await;
    assert_eq!(
        reply.body["count"], 0,
        "no refused create may leave a meter behind"
    );
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_413() {
    let app = spawn_app().await;
    let mut body = full_body(&app.account);
    body["description"] = json!("d".repeat(70 * 1024));
    let reply = app.create(body).await;
    assert_error_mentions(&reply, 413, "larger than 65536 bytes");
}

#[tokio::test]
async fn bad_ids_and_missing_accounts_answer_400() {
    let app = spawn_app().await;
    for id in ["abc", "0", "-4", "1.5", "99999999999999999999"] {
        let reply = app
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/meters/{id}?account_id={}", app.account),
                Some(&app.token),
                None,
            )
            .await;
        assert_field_error(&reply, 400, "id");
    }
    let id = app.create_named("x").await;
    for path in [
        format!("/api/v1/meters/{id}"),
        format!("/api/v1/meters/{id}?account_id=nope"),
        "/api/v1/meters".into(),
    ] {
        let reply = app
            .send(reqwest::Method::GET, &path, Some(&app.token), None)
            .await;
        assert_field_error(&reply, 400, "account_id");
        let reply = app
            .send(reqwest::Method::DELETE, &path, Some(&app.token), None)
            .await;
        if path.ends_with("meters") {
            assert_error_mentions(&reply, 405, "DELETE");
        } else {
            assert_field_error(&reply, 400, "account_id");
        }
    }
    let reply = app.update(id, json!({"name": "no account"})).await;
    assert_field_error(&reply, 400, "account_id");
}

#[tokio::test]
async fn list_parameters_outside_the_rules_answer_400() {
    let app = spawn_app().await;
    let long_query = format!("query={}", "q".repeat(201));
    let cases = [
        ("page=0", "page"),
        ("page=x", "page"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("sortBy=description", "sortBy"),
        ("sortOrder=sideways", "sortOrder"),
        ("sortby=name", "query string"),
        ("page=1&page=2", "page"),
        (long_query.as_str(), "query"),
    ];
    for (query, named) in cases {
        assert_field_error(&app.list(query).await, 400, named);
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_answer_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let claims = |exp: u64| json!({"exp": exp, "account_ids": [app.account.to_string()]});
    let now = jsonwebtoken::get_current_timestamp();
    let sign = |claims: &Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let unsigned = |claims: &Value| {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
            engine.encode(claims.to_string())
        )
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("not.a.jwt".into())),
        (
            "wrongly signed",
            Some(sign(
                &claims(now + 600),
                "some-other-secret-that-is-32-bytes-long",
            )),
        ),
        ("expired", Some(sign(&claims(now - 600), SECRET))),
        ("alg none", Some(unsigned(&claims(now + 600)))),
    ];
    let paths = [
        (
            reqwest::Method::GET,
            format!("/api/v1/meters?account_id={}", app.account),
        ),
        (reqwest::Method::POST, "/api/v1/meters".to_owned()),
        (
            reqwest::Method::GET,
            format!("/api/v1/meters/1?account_id={}", app.account),
        ),
        (reqwest::Method::PUT, "/api/v1/meters/1".to_owned()),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/meters/1?account_id={}", app.account),
        ),
    ];
    for (case, token) in &cases {
        for (method, path) in &paths {
            let body = matches!(*method, reqwest::Method::POST | reqwest::Method::PUT)
                .then(|| full_body(&app.account).to_string());
            let reply = app.send(method.clone(), path, token.as_deref(), body).await;
            assert_eq!(reply.status, 401, "{case} {method} {path}: {reply:?}");
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
            assert_eq!(reply.body["success"], false);
            if let Some(token) = token {
                assert!(
                    !reply.body.to_string().contains(token.as_str()),
                    "the token was echoed"
                );
            }
        }
    }
    assert_eq!(app.list("").await.body["count"], 0);
}

#[tokio::test]
async fn a_token_for_another_account_gets_403_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.create_named("mine").await;
    let stranger_account = AccountId::from(uuid::Uuid::new_v4());
    let stranger = app.token_for(&[stranger_account]);

    // A token without the requested account.
    let mut body = full_body(&app.account);
    assert_error_mentions(
        &app.send(
            reqwest::Method::POST,
            "/api/v1/meters",
            Some(&stranger),
            Some(body.to_string()),
        )
        .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );
    let path = format!("/api/v1/meters/{id}?account_id={}", app.account);
    assert_error_mentions(
        &app.send(reqwest::Method::GET, &path, Some(&stranger), None)
            .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );
    assert_error_mentions(
        &app.send(reqwest::Method::DELETE, &path, Some(&stranger), None)
            .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );
    let list = format!("/api/v1/meters?account_id={}", app.account);
    assert_error_mentions(
        &app.send(reqwest::Method::GET, &list, Some(&stranger), None)
            .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );

    // The stranger's own account, asking for our meter.
    let theirs = format!("/api/v1/meters/{id}?account_id={stranger_account}");
    assert_error_mentions(
        &app.send(reqwest::Method::GET, &theirs, Some(&stranger), None)
            .await,
        403,
        &format!("meter {id} does not belong to this account"),
    );
    assert_error_mentions(
        &app.send(reqwest::Method::DELETE, &theirs, Some(&stranger), None)
            .await,
        403,
        &format!("meter {id} does not belong to this account"),
    );
    body = json!({"account_id": stranger_account.to_string(), "name": "hijacked"});
    let put = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/meters/{id}"),
            Some(&stranger),
            Some(body.to_string()),
        )
        .await;
    assert_error_mentions(
        &put,
        403,
        &format!("meter {id} does not belong to this account"),
    );
    let listed = format!("/api/v1/meters?account_id={stranger_account}");
    assert_eq!(
        app.send(reqwest::Method::GET, &listed, Some(&stranger), None)
            .await
            .body["count"],
        0
    );

    let mine = app.get(id).await;
    assert_eq!(
        (mine.status, mine.data()["name"].as_str()),
        (200, Some("mine"))
    );
}

#[tokio::test]
async fn a_token_for_several_accounts_may_act_for_each() {
    let app = spawn_app().await;
    let second = AccountId::from(uuid::Uuid::new_v4());
    let token = app.token_for(&[app.account, second]);
    let body =
        json!({"account_id": second.to_string().to_uppercase(), "name": "n", "serial_number": "s"});
    let reply = app
        .send(
            reqwest::Method::POST,
            "/api/v1/meters",
            Some(&token),
            Some(body.to_string()),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.data()["account_id"], second.to_string());
}

#[tokio::test]
async fn unknown_meters_routes_and_methods_answer_404_and_405_in_the_envelope() {
    let app = spawn_app().await;
    assert_error_mentions(&app.get(424242).await, 404, "meter 424242 does not exist");
    assert_error_mentions(
        &app.delete(424242).await,
        404,
        "meter 424242 does not exist",
    );
    assert_error_mentions(
        &app.update(424242, json!({"account_id": app.account.to_string()}))
            .await,
        404,
        "meter 424242 does not exist",
    );
    assert_error_mentions(
        &app.send(
            reqwest::Method::GET,
            "/api/v2/things",
            Some(&app.token),
            None,
        )
        .await,
        404,
        "no route",
    );
    let reply = app
        .send(
            reqwest::Method::PATCH,
            "/api/v1/meters/1",
            Some(&app.token),
            None,
        )
        .await;
    assert_error_mentions(&reply, 405, "PATCH");
    assert_eq!(reply.headers["allow"], "GET, HEAD, PUT, DELETE");
    let reply = app
        .send(
            reqwest::Method::DELETE,
            "/api/v1/meters",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(reply.headers["allow"], "GET, HEAD, POST");
}

#[tokio::test]
async fn get_edit_put_with_read_only_fields_echoed_is_accepted_but_changing_them_is_not() {
    let app = spawn_app().await;
    let id = app.create(full_body(&app.account)).await.data()["id"]
        .as_i64()
        .unwrap();
    let mut meter = app.get(id).await.data().clone();
    meter["name"] = json!("Edited in place");
    let reply = app.update(id, meter.clone()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.data()["name"], "Edited in place");

    let current = reply.data().clone();
    for (field, value) in [
        ("serial_number", json!("NEW-SERIAL")),
        ("meter_type", json!("GAS")),
        ("communication_type", json!("MQTT")),
        ("id", json!(id + 1)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("updated_at", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut body = current.clone();
        body[field] = value;
        body["name"] = json!("must not land");
        let reply = app.update(id, body).await;
        assert_field_error(&reply, 400, field);
        assert!(reply.error().contains("read-only"), "{}", reply.error());
    }
    assert_eq!(app.get(id).await.data(), &current);
}

#[tokio::test]
async fn null_clears_a_field_and_leaves_the_others() {
    let app = spawn_app().await;
    let id = app.create(full_body(&app.account)).await.data()["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .update(
            id,
            json!({"account_id": app.account.to_string(), "tariff_id": null, "location": null}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.data()["tariff_id"], Value::Null);
    assert_eq!(reply.data()["location"], Value::Null);
    assert_eq!(reply.data()["building_block_id"], 3);
    let refused = app
        .update(
            id,
            json!({"account_id": app.account.to_string(), "name": null}),
        )
        .await;
    assert_field_error(&refused, 400, "name");
}

#[tokio::test]
async fn sixty_concurrent_creates_get_sixty_distinct_ids_all_listed() {
    let app = spawn_app().await;
    let ids: Vec<i64> = join_all((0..60).map(|n| {
        let app = &app;
        async move { app.create_named(&format!("c{n:02}")).await }
    }))
    .await;
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 60);
    let listed = app.list("limit=100").await;
    assert_eq!(listed.body["count"], 60);
    assert_eq!(listed.ids(), distinct);
}

#[tokio::test]
async fn concurrent_updates_to_different_fields_both_land() {
    let app = spawn_app().await;
    let id = app.create_named("race").await;
    let account = app.account.to_string();
    for round in 0..10 {
        let (a, b) = tokio::join!(
            app.update(
                id,
                json!({"account_id": account, "name": format!("name {round}")})
            ),
            app.update(
                id,
                json!({"account_id": account, "location": format!("room {round}")})
            ),
        );
        assert_eq!((a.status, b.status), (200, 200));
        let meter = app.get(id).await;
        assert_eq!(meter.data()["name"], format!("name {round}"));
        assert_eq!(meter.data()["location"], format!("room {round}"));
    }
}

async fn seed_for_listing(app: &TestApp) -> Vec<Value> {
    let rows = [
        (
            "Boiler",
            "GAS",
            "MQTT",
            Some("Basement"),
            Some(12.5),
            Some("2026-11-20T10:00:00Z"),
        ),
        (
            "attic solar",
            "SOLAR",
            "MODBUS",
            Some("attic"),
            None,
            Some("2026-11-21T10:00:00Z"),
        ),
        (
            "Main incomer",
            "ELECTRICITY",
            "DLMS",
            None,
            Some(-3.0),
            None,
        ),
        (
            "chiller",
            "HVAC",
            "HTTP",
            Some("Roof"),
            Some(12.5),
            Some("2026-11-19T10:00:00Z"),
        ),
        ("EV bay 1", "EV", "NONE", Some("car park"), Some(0.0), None),
        (
            "water main",
            "WATER",
            "LORAWAN",
            None,
            None,
            Some("2026-11-22T10:00:00Z"),
        ),
    ];
    let mut meters = Vec::new();
    for (n, (name, kind, comm, location, reading, at)) in rows.into_iter().enumerate() {
        let reply = app
            .create(json!({
                "account_id": app.account.to_string(), "name": name, "serial_number": format!("sn-{:02}", 6 - n),
                "meter_type": kind, "communication_type": comm, "location": location,
                "last_reading_value": reading, "last_reading_at": at, "description": format!("unit {n}")
            }))
            .await;
        assert_eq!(reply.status, 201);
        meters.push(reply.data().clone());
    }
    meters
}

/// The order the design fixes: by the field (text ignoring case), unset last in either order, ties by id.
fn expected_order(meters: &[Value], field: &str, descending: bool) -> Vec<i64> {
    let mut sorted = meters.to_vec();
    sorted.sort_by(|a, b| {
        let key = |m: &Value| match &m[field] {
            Value::Null => None,
            Value::String(text) => Some((0.0, text.to_lowercase())),
            Value::Number(n) => Some((n.as_f64().unwrap(), String::new())),
            other => panic!("unexpected {other}"),
        };
        let by_field = match (key(a), key(b)) {
            (Some(x), Some(y)) => {
                let ordering = x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
                if descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_field.then(a["id"].as_i64().cmp(&b["id"].as_i64()))
    });
    sorted.iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn lists_sort_by_every_allowed_field_in_both_orders() {
    let app = spawn_app().await;
    let meters = seed_for_listing(&app).await;
    // Touch one meter so updated_at differs from created_at order.
    let first = meters[0]["id"].as_i64().unwrap();
    app.update(
        first,
        json!({"account_id": app.account.to_string(), "description": "touched"}),
    )
    .await;
    let meters: Vec<Value> = app
        .list("limit=100")
        .await
        .data()
        .as_array()
        .unwrap()
        .clone();
    let fields = [
        "id",
        "name",
        "serial_number",
        "meter_type",
        "communication_type",
        "location",
        "created_at",
        "updated_at",
        "last_reading_at",
        "last_reading_value",
    ];
    for field in fields {
        for (order, descending) in [("asc", false), ("DESC", true)] {
            let reply = app.list(&format!("sortBy={field}&sortOrder={order}")).await;
            assert_eq!(reply.status, 200);
            assert_eq!(
                reply.ids(),
                expected_order(&meters, field, descending),
                "sortBy={field}&sortOrder={order}"
            );
        }
    }
}

#[tokio::test]
async fn lists_search_page_and_count() {
    let app = spawn_app().await;
    let meters = seed_for_listing(&app).await;
    let ids: Vec<i64> = meters.iter().map(|m| m["id"].as_i64().unwrap()).collect();

    let first_page = app.list("limit=4").await;
    assert_eq!(
        (first_page.ids(), first_page.body["count"].as_u64()),
        (ids[..4].to_vec(), Some(6))
    );
    let second_page = app.list("limit=4&page=2").await;
    assert_eq!(
        (second_page.ids(), second_page.body["count"].as_u64()),
        (ids[4..].to_vec(), Some(6))
    );
    let past_the_end = app.list("limit=4&page=3").await;
    assert_eq!(
        (past_the_end.ids(), past_the_end.body["count"].as_u64()),
        (vec![], Some(6))
    );

    let by_name = app.list("query=MAIN").await;
    assert_eq!(
        (by_name.ids(), by_name.body["count"].as_u64()),
        (vec![ids[2], ids[5]], Some(2))
    );
    let by_location = app.list("query=basement").await;
    assert_eq!(by_location.ids(), vec![ids[0]]);
    let by_serial = app.list("query=SN-01").await;
    assert_eq!(by_serial.ids(), vec![ids[5]]);
    let by_description = app.list("query=unit%203").await;
    assert_eq!(by_description.ids(), vec![ids[3]]);
    let whole_search = app.list("query=a&limit=100&sortBy=name").await;
    let paged_search = app.list("query=a&limit=2&page=2&sortBy=name").await;
    assert_eq!(paged_search.body["count"], 5);
    assert_eq!(paged_search.ids(), whole_search.ids()[2..4].to_vec());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let ok = app.list("").await;
    let failed = app
        .send(reqwest::Method::GET, "/api/v1/meters", None, None)
        .await;
    let ids: Vec<String> = [ok, failed]
        .iter()
        .map(|reply| reply.headers["x-request-id"].to_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    assert_ne!(ids[0], ids[1], "each request has its own id");
}

/// The real binary, as a user runs it: data written before a restart is there after it, and the token
/// printed by `meters-local token` is accepted.
#[tokio::test]
async fn data_survives_a_restart_of_the_server_and_printed_tokens_work() {
    let data_dir = std::env::temp_dir().join(format!(
        "meters-local-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let account = uuid::Uuid::new_v4().to_string();
    let binary = env!("CARGO_BIN_EXE_meters-local");
    let token_output = std::process::Command::new(binary)
        .args(["token", "--account", &account, "--ttl", "10m", "--data-dir"])
        .arg(&data_dir)
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    assert!(token_output.status.success());
    let token = String::from_utf8(token_output.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let client = reqwest::Client::new();

    let mut server = LocalServer::start(binary, &data_dir);
    let created: Value = client
        .post(format!("{}/api/v1/meters", server.base))
        .bearer_auth(&token)
        .json(&json!({"account_id": account, "name": "durable", "serial_number": "D-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"].as_i64().expect("created");
    server.stop();

    let server = LocalServer::start(binary, &data_dir);
    let reply = client
        .get(format!(
            "{}/api/v1/meters/{id}?account_id={account}",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let read: Value = reply.json().await.unwrap();
    assert_eq!(read["data"], created["data"]);
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
}

/// The real binary with `JWT_JWKS_URL`, as the functions take it: tokens signed by the identity provider's
/// published key are served, others are not.
#[tokio::test]
async fn meters_local_verifies_tokens_against_a_jwks_url() {
    let jwks = meters_testkit::jwks::JwksServer::start().await;
    let key = meters_testkit::jwks::SigningKey::rsa("local-key", jsonwebtoken::Algorithm::RS256);
    jwks.publish(&[&key], &[]);
    let data_dir = std::env::temp_dir().join(format!(
        "meters-local-jwks-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let server = LocalServer::start_with(
        env!("CARGO_BIN_EXE_meters-local"),
        &data_dir,
        &[
            ("JWT_JWKS_URL", jwks.url.as_str()),
            ("JWT_ISSUER", "https://id.example"),
        ],
    );
    let account = uuid::Uuid::new_v4().to_string();
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    let signed =
        key.sign(&json!({"iss": "https://id.example", "exp": exp, "account_ids": [account]}));
    let stranger =
        meters_testkit::jwks::SigningKey::rsa("local-key", jsonwebtoken::Algorithm::RS256);
    let forged =
        stranger.sign(&json!({"iss": "https://id.example", "exp": exp, "account_ids": [account]}));
    let client = reqwest::Client::new();
    let list = |token: String| {
        client
            .get(format!(
                "{}/api/v1/meters?account_id={account}",
                server.base
            ))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(list(signed).await.unwrap().status(), 200);
    assert_eq!(list(forged).await.unwrap().status(), 401);
    assert_eq!(jwks.fetches(), 1);
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
}

struct LocalServer {
    child: std::process::Child,
    base: String,
}

impl LocalServer {
    fn start(binary: &str, data_dir: &std::path::Path) -> Self {
        Self::start_with(binary, data_dir, &[])
    }

    fn start_with(binary: &str, data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(binary)
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .env_remove("JWT_SECRET")
            .env_remove("DYNAMODB_ENDPOINT")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, base };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("meters-local did not start on port {port}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Over HTTP, as a client sees it: the value sent is the value created and the value read, digit for
/// digit, including at the documented bounds.
#[tokio::test]
async fn last_reading_value_round_trips_exactly_through_create_and_get() {
    let app = spawn_app().await;
    for text in [
        "-5.960464477539063e-8",
        "1e-130",
        "-1e125",
        "0.30000000000000004",
        "10423.5",
    ] {
        let body = format!(
            r#"{{"account_id":"{}","name":"r","serial_number":"s","last_reading_value":{text}}}"#,
            app.account
        );
        let created = app
            .send(
                reqwest::Method::POST,
                "/api/v1/meters",
                Some(&app.token),
                Some(body),
            )
            .await;
        assert_eq!(created.status, 201, "{text}: {created:?}");
        let sent: f64 = text.parse().unwrap();
        let read = app.get(created.data()["id"].as_i64().unwrap()).await;
        for reply in [&created, &read] {
            let got = reply.data()["last_reading_value"].as_f64().unwrap();
            assert_eq!(got.to_bits(), sent.to_bits(), "{text}: {got:e}");
        }
    }
}

#[tokio::test]
async fn a_reading_time_outside_years_1_to_9999_in_utc_is_refused() {
    let app = spawn_app().await;
    let mut body = full_body(&app.account);
    body["last_reading_at"] = json!("9999-12-31T23:59:59-23:59");
    assert_field_error(&app.create(body).await, 400, "last_reading_at");
}

/// A server with short timeouts, so that slow clients can be tried in a test's time.
async fn spawn_with_short_timeouts() -> (std::net::SocketAddr, TestApp) {
    let timeouts = meters_local::Timeouts {
        header_read: Duration::from_millis(600),
        body_read: Duration::from_millis(600),
        drain: Duration::from_millis(600),
    };
    let auth = hs256_config(SECRET);
    let (listener, app) = start(&Storage::Memory, &auth, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(meters_local::serve_with(
        listener,
        app,
        std::future::pending(),
        timeouts,
    ));
    let issuer = TokenIssuer::new(&auth).unwrap();
    let account = AccountId::from(uuid::Uuid::new_v4());
    let token = issuer.issue(&[account], Duration::from_secs(600)).unwrap();
    let test_app = TestApp {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        issuer,
        account,
        token,
    };
    (address, test_app)
}

/// Everything the server sends until it closes the connection (or `wait` passes).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut received)).await {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let (address, _) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /api/v1/meters HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "still connected after 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_a_408_in_the_envelope() {
    use tokio::io::AsyncWriteExt;
    let (address, app) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/meters HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed within 5 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{answer}"
    );
    assert!(
        answer.contains(r#""error":"the body did not arrive within 0.6 s""#),
        "{answer}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (address, app) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /api/v1/meters?account_id={} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        app.account, app.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Nothing more is sent: the server closes the connection after the header-read time.
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn oversized_targets_and_headers_and_head_requests_are_answered_in_the_envelope() {
    let (_, app) = spawn_with_short_timeouts().await;
    // A 100,000-digit id: longer than HTTP clients will build, so it goes over a raw connection.
    let (address, _) = (app.base.trim_start_matches("http://").to_owned(), ());
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /api/v1/meters/{}?account_id={} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        "9".repeat(100_000),
        app.account,
        app.token
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    let shown: String = answer.chars().take(400).collect();
    assert!(answer.starts_with("HTTP/1.1 414"), "{shown}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{shown}"
    );
    assert!(
        answer.contains(r#""error":"the request target is longer than 8192 bytes""#),
        "{shown}"
    );

    let huge = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/meters?account_id={}",
            app.base, app.account
        ))
        .bearer_auth(&app.token)
        .header("x-padding", "p".repeat(1_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 431);
    assert!(huge.headers().contains_key("x-request-id"));
    let body: Value = huge.json().await.unwrap();
    assert_eq!(
        body["error"],
        "the request headers are larger than 65536 bytes"
    );

    let head = reqwest::Client::new()
        .head(format!(
            "{}/api/v1/meters?account_id={}",
            app.base, app.account
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("x-request-id"));
    assert_eq!(head.bytes().await.unwrap().len(), 0);
}

/// The real binary: SIGTERM while a client holds a half-sent request still ends the process within the
/// 10 s drain, having answered that client.
#[tokio::test]
async fn sigterm_drains_and_exits_within_ten_seconds_whatever_clients_do() {
    use tokio::io::AsyncWriteExt;
    let data_dir = std::env::temp_dir().join(format!(
        "meters-local-term-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut server = LocalServer::start(env!("CARGO_BIN_EXE_meters-local"), &data_dir);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stuck = tokio::net::TcpStream::connect(&address).await.unwrap();
    stuck
        .write_all(
            b"POST /api/v1/meters HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /api/v1/meters HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "still running 12 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited:?}");
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
}

/// Conditional requests as a client uses them: read with an ETag, revalidate with If-None-Match, write
/// with If-Match; a stale tag is 412 and nothing changes.
#[tokio::test]
async fn etags_make_reads_revalidate_and_writes_conditional() {
    let app = spawn_app().await;
    let id = app.create_named("tagged").await;
    let read = app.get(id).await;
    let etag = read.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{id}-1\""));

    let path = format!("{}/api/v1/meters/{id}?account_id={}", app.base, app.account);
    let revalidated = app
        .client
        .get(&path)
        .bearer_auth(&app.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert!(revalidated.bytes().await.unwrap().is_empty());

    let put = |tag: &str, name: &str| {
        app.client
            .put(format!("{}/api/v1/meters/{id}", app.base))
            .bearer_auth(&app.token)
            .header("if-match", tag)
            .json(&json!({"account_id": app.account.to_string(), "name": name}))
            .send()
    };
    let updated = put(&etag, "renamed").await.unwrap();
    assert_eq!(updated.status(), 200);
    let new_etag = updated.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);

    let stale = put(&etag, "lost update").await.unwrap();
    assert_eq!(stale.status(), 412);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(app.get(id).await.data()["name"], "renamed");
    assert_eq!(put("*", "any version").await.unwrap().status(), 200);

    let delete = |tag: &str| {
        app.client
            .delete(&path)
            .bearer_auth(&app.token)
            .header("if-match", tag)
            .send()
    };
    assert_eq!(delete(&new_etag).await.unwrap().status(), 412);
    let current = app.get(id).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(delete(&current).await.unwrap().status(), 204);
}

/// Idempotency-Key as a client retrying a create uses it.
#[tokio::test]
async fn a_create_retried_with_its_idempotency_key_is_replayed_not_repeated() {
    let app = spawn_app().await;
    let post = |key: &str, body: String| {
        app.client
            .post(format!("{}/api/v1/meters", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let account = app.account.to_string();
    let body = format!(
        r#"{{"account_id":"{account}","name":"Once","serial_number":"SN-1","tariff_id":12}}"#
    );
    // The same JSON spelled differently: other key order, spacing.
    let same = format!(
        r#"{{ "tariff_id": 12, "serial_number": "SN-1", "name": "Once", "account_id": "{account}" }}"#
    );
    let first = post("order-42", body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let location = first.headers()["location"].clone();
    let first_body = first.text().await.unwrap();
    let retry = post("order-42", same).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.text().await.unwrap(), first_body);
    assert_eq!(app.list("").await.body["count"], 1);

    let other_body = body.replace("Once", "Twice");
    let reused = post("order-42", other_body).await.unwrap();
    assert_eq!(reused.status(), 422);
    for bad in ["", &"k".repeat(256), "two words", "clé"] {
        let reply = post(bad, body.clone()).await.unwrap();
        assert_eq!(reply.status(), 400, "{bad:?}");
        let error: Value = reply.json().await.unwrap();
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("Idempotency-Key: "),
            "{error}"
        );
    }
    // A refused request claims nothing: the key still works afterwards.
    let refused = post("order-43", body.replace("SN-1", "")).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(post("order-43", body.clone()).await.unwrap().status(), 201);
    assert_eq!(app.list("").await.body["count"], 2);
}

#[tokio::test]
async fn concurrent_duplicate_idempotent_creates_make_exactly_one_meter() {
    let app = spawn_app().await;
    let body =
        json!({"account_id": app.account.to_string(), "name": "Burst", "serial_number": "SN-B"})
            .to_string();
    let replies = join_all((0..12).map(|_| {
        app.client
            .post(format!("{}/api/v1/meters", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", "burst-1")
            .body(body.clone())
            .send()
    }))
    .await;
    let statuses: Vec<u16> = replies
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201), "{statuses:?}");
    assert_eq!(app.list("").await.body["count"], 1, "{statuses:?}");
}

#[tokio::test]
async fn a_malformed_request_is_answered_400_in_the_envelope() {
    use tokio::io::AsyncWriteExt;
    let (address, _) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /api/v1/meters HTTP/1.1\r\nHost localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{answer}"
    );
    assert!(
        answer.contains(r#""error":"request: is not a well-formed HTTP/1.1 request""#),
        "{answer}"
    );
}
