//! The edits that go on while readings flow: `POST`, `PUT` and `DELETE` through the real functions, and a list
//! after each, its `count` and newest meter checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use meters::domain::meter::AccountId;
use meters_testkit::function::GatewayResponse;
use meters_testkit::measure::{ms, percentile};
use meters_testkit::tokens::token_for;
use meters_testkit::{HttpEvent, TEST_SECRET as SECRET};
use serde_json::json;

use super::running::Running;

/// What the edits (and the lists between them) came to while a phase ran.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Edits {
    count: usize,
    not_2xx: usize,
    p50_ms: f64,
    p99_ms: f64,
    lists: usize,
    lists_wrong: usize,
}

/// `POST`, `PUT`, `DELETE` of a new meter, one after another, with a list after each, until `stop`.
pub(crate) async fn edit(
    bin: &Path,
    env: &[(String, String)],
    account: AccountId,
    seeded: usize,
    stop: Arc<AtomicBool>,
) -> Edits {
    let token = token_for(SECRET, &[account]);
    let [mut create, mut update, mut delete, mut list] = [
        Running::start(&bin.join("create-meter"), env, None).await,
        Running::start(&bin.join("update-meter"), env, None).await,
        Running::start(&bin.join("delete-meter"), env, None).await,
        Running::start(&bin.join("list-meters"), env, None).await,
    ];
    let (mut latencies, mut edits) = (Vec::new(), Edits::default());
    let listed = |edits: &mut Edits, answer: &str, live: Option<i64>| {
        let answer = GatewayResponse::parse(answer);
        edits.lists += 1;
        // A write acknowledged before the list began is in it; the count is exact.
        let count = answer.body["count"].as_u64().unwrap_or(0) as usize;
        let newest = answer.body["data"][0]["id"].as_i64();
        let right = match live {
            Some(id) => count == seeded + 1 && newest == Some(id),
            None => count == seeded,
        };
        edits.lists_wrong += usize::from(!right || answer.status != 200);
    };
    let list_event = || {
        HttpEvent::new("GET", "/api/v1/meters")
            .bearer(&token)
            .query(&format!(
                "account_id={account}&sortBy=id&sortOrder=desc&limit=1"
            ))
            .http_api()
            .to_string()
    };
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let body = json!({"account_id": account.to_string(), "name": format!("edited {n}"),
                          "serial_number": format!("ED-{n}"), "meter_type": "GAS"});
        let event = HttpEvent::new("POST", "/api/v1/meters")
            .bearer(&token)
            .json_body(&body);
        let (answer, took) = create.invoke(event.http_api().to_string()).await;
        let created = GatewayResponse::parse(&answer);
        latencies.push(took);
        edits.not_2xx += usize::from(created.status / 100 != 2);
        let Some(id) = created.body["data"]["id"].as_i64() else {
            continue;
        };
        let (answer, _) = list.invoke(list_event()).await;
        listed(&mut edits, &answer, Some(id));
        let path = format!("/api/v1/meters/{id}");
        let changes =
            json!({"account_id": account.to_string(), "name": format!("edited {n}, renamed")});
        let event = HttpEvent::new("PUT", &path)
            .bearer(&token)
            .json_body(&changes);
        let (answer, took) = update.invoke(event.http_api().to_string()).await;
        latencies.push(took);
        edits.not_2xx += usize::from(GatewayResponse::parse(&answer).status / 100 != 2);
        let (answer, _) = list.invoke(list_event()).await;
        listed(&mut edits, &answer, Some(id));
        let event = HttpEvent::new("DELETE", &path)
            .bearer(&token)
            .query(&format!("account_id={account}"));
        let (answer, took) = delete.invoke(event.http_api().to_string()).await;
        latencies.push(took);
        edits.not_2xx += usize::from(GatewayResponse::parse(&answer).status / 100 != 2);
        let (answer, _) = list.invoke(list_event()).await;
        listed(&mut edits, &answer, None);
    }
    edits.count = latencies.len();
    edits.p50_ms = ms(percentile(&latencies, 0.5));
    edits.p99_ms = ms(percentile(&latencies, 0.99));
    for running in [create, update, delete, list] {
        running.function.stop();
    }
    edits
}

pub(crate) async fn edit_owned(
    bin: PathBuf,
    env: Vec<(String, String)>,
    account: AccountId,
    seeded: usize,
    stop: Arc<AtomicBool>,
) -> Edits {
    edit(&bin, &env, account, seeded, stop).await
}
