//! Many clients at once: distinct ids for concurrent creates, concurrent updates of different fields, concurrent idempotent creates.

use crate::helpers::*;
use futures::future::join_all;

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
