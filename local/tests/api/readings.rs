//! Readings on the local server: a file of readings posted to `/local/readings` moves `last_reading_at` as
//! the readings queue moves it in the stack; later ones apply, the rest are counted, the bad ones answered
//! with their reason; `GET` and lists show them, with a new `ETag`.

use crate::helpers::*;

async fn post_readings(app: &TestApp, content_type: &str, body: String) -> Reply {
    let response = app
        .client
        .post(format!("{}{}", app.base, meters_local::READINGS_PATH))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn a_file_of_readings_moves_last_reading_at_and_answers_what_it_could_not_apply() {
    let app = spawn_app().await;
    let (first, second) = (
        app.create_named("read one").await,
        app.create_named("read two").await,
    );
    let before = app.get(first).await;
    let account = app.account.to_string();
    let reading = |id: i64, value: f64, at: &str| json!({"account_id": account, "meter_id": id, "value": value, "at": at});
    // JSON Lines: one message per line, a batch on the third; a late one, a repeat, an out-of-range value, a
    // meter of no account, and a line that is not JSON.
    let lines = [
        reading(first, 10.0, "2026-12-01T00:00:00Z").to_string(),
        reading(first, 12.5, "2026-12-01T00:15:00Z").to_string(),
        json!([
            reading(second, 3.0, "2026-12-01T00:15:00Z"),
            reading(first, 11.0, "2026-12-01T00:05:00Z")
        ])
        .to_string(),
        reading(first, 12.5, "2026-12-01T00:15:00Z").to_string(),
        reading(second, 1e300, "2026-12-01T00:30:00Z").to_string(),
        reading(999_999, 1.0, "2026-12-01T00:30:00Z").to_string(),
        "{\"account_id\": ".to_owned(),
    ];
    let reply = post_readings(&app, "application/x-ndjson", lines.join("\n")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body["tally"],
        json!({"messages": 7, "readings": 8, "applied": 3, "not_later": 2, "parked": 3, "retried": 0})
    );
    let reasons: Vec<&str> = reply.body["parked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parked| parked["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|reason| reason.starts_with("value:")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("holds no meter 999999")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|reason| reason.contains("not JSON")),
        "{reasons:?}"
    );

    let after = app.get(first).await;
    assert_eq!(after.data()["last_reading_value"], 12.5);
    assert_eq!(after.data()["last_reading_at"], "2026-12-01T00:15:00Z");
    assert_eq!(
        after.data()["updated_at"],
        before.data()["updated_at"],
        "not a metadata write"
    );
    assert_ne!(
        after.headers["etag"], before.headers["etag"],
        "its representation changed"
    );
    // A PUT with the tag from before the readings is refused: the meter is not as the caller saw it.
    let stale = app
        .client
        .put(format!("{}/api/v1/meters/{first}", app.base))
        .bearer_auth(&app.token)
        .header("if-match", before.headers["etag"].clone())
        .json(&json!({"account_id": account, "name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let listed = app
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/meters?account_id={account}&sortBy=last_reading_at&sortOrder=desc"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(listed.ids(), vec![first, second]);
    assert_eq!(listed.data()[0]["last_reading_value"], 12.5);
}

#[tokio::test]
async fn the_readings_route_takes_json_only_and_one_message_whole() {
    let app = spawn_app().await;
    let id = app.create_named("one message").await;
    let message = json!({"account_id": app.account.to_string(), "meter_id": id, "value": 1.0, "at": "2026-12-01T00:00:00Z"});
    // A browser page could send text/plain without asking first: refused.
    let plain = post_readings(&app, "text/plain", message.to_string()).await;
    assert_eq!(plain.status, 415);
    let reply = post_readings(&app, "application/json", message.to_string()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["tally"]["applied"], 1);
    assert_eq!(app.get(id).await.data()["last_reading_value"], 1.0);
}
