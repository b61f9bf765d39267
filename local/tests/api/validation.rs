//! Every rule a body, path or query can break answers 400 naming the field (413 over 64 KiB); values that pass come back exactly as sent.

use crate::helpers::*;

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
