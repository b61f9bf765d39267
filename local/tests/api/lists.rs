//! Lists as the design fixes them: every sortable field in both orders (unset last, ties by id), search, paging and count.

use crate::helpers::*;

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

/// Filters over HTTP: by type and tariff together, with paging and the true count; a bad value is 400
/// naming the parameter.
#[tokio::test]
async fn lists_filter_by_meter_attributes() {
    let app = spawn_app().await;
    for (n, meter_type) in ["GAS", "SOLAR", "SOLAR", "SOLAR", "WATER"]
        .iter()
        .enumerate()
    {
        let tariff = if n % 2 == 0 { json!(7) } else { json!(null) };
        let reply = app
            .create(json!({"account_id": app.account.to_string(), "name": format!("m{n}"),
                           "serial_number": format!("F-{n}"), "meter_type": meter_type, "tariff_id": tariff}))
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let solar = app.list("meter_type=SOLAR&limit=1&page=2").await;
    assert_eq!(solar.status, 200, "{solar:?}");
    assert_eq!((solar.ids().len(), &solar.body["count"]), (1, &json!(3)));
    let both = app.list("meter_type=SOLAR&tariff_id=7").await;
    assert_eq!(both.body["count"], 1, "{both:?}");
    assert_eq!(both.data()[0]["name"], "m2");
    let bad = app.list("tariff_id=seven").await;
    assert_field_error(&bad, 400, "tariff_id");
}
