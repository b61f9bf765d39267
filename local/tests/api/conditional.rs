//! Conditional requests (ETag, If-None-Match, If-Match) and Idempotency-Key retries, as clients use them.

use crate::helpers::*;

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
