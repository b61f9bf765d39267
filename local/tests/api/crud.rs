//! The five endpoints as a client uses them: create, read, update (including GET, edit, PUT), list, delete; routes and methods that do not exist; the request id every answer carries.

use crate::helpers::*;

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
