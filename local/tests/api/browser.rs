//! A web front end on another origin, in a real browser: headless Chromium loads a page from a second
//! server and the page's script calls `meters-local` (the binary, with `CORS_ALLOWED_ORIGINS`) through
//! `fetch`, the way a single-page app would. The page posts what it saw back to its own server.

use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use tokio::sync::mpsc;

use crate::helpers::*;

/// The front end's flow: an idempotent create and its replay, the ETag and Location a script must be able
/// to read, a conditional update, a list, a delete. Every step records what the browser let it see.
const PAGE_SCRIPT: &str = r#"
const seen = {};
async function call(method, path, headers, body) {
  const response = await fetch(new URL(path, API), {
    method, body,
    headers: { "Authorization": "Bearer " + TOKEN, ...headers },
  });
  const text = await response.text();
  return {
    status: response.status,
    etag: response.headers.get("ETag"),
    location: response.headers.get("Location"),
    request_id: response.headers.get("X-Request-Id"),
    replayed: response.headers.get("Idempotent-Replayed"),
    body: text ? JSON.parse(text) : null,
  };
}
async function flow() {
  const key = "browser-" + Date.now();
  const json = { "Content-Type": "application/json", "Idempotency-Key": key };
  const meter = JSON.stringify({ account_id: ACCOUNT, name: "Browser meter", serial_number: "BR-1" });
  seen.create = await call("POST", "/api/v1/meters", json, meter);
  seen.replay = await call("POST", "/api/v1/meters", json, meter);
  const located = new URL(seen.create.location, API);
  located.searchParams.set("account_id", ACCOUNT);
  seen.read = await call("GET", located, {});
  const id = seen.create.body.data.id;
  seen.update = await call("PUT", "/api/v1/meters/" + id,
    { "Content-Type": "application/json", "If-Match": seen.read.etag },
    JSON.stringify({ account_id: ACCOUNT, name: "Renamed in the browser" }));
  seen.stale = await call("PUT", "/api/v1/meters/" + id,
    { "Content-Type": "application/json", "If-Match": seen.read.etag },
    JSON.stringify({ account_id: ACCOUNT, name: "Stale" }));
  seen.list = await call("GET", "/api/v1/meters?account_id=" + ACCOUNT, {});
  seen.delete = await call("DELETE", "/api/v1/meters/" + id + "?account_id=" + ACCOUNT,
    { "If-Match": seen.update.etag });
}
flow()
  .catch((error) => { seen.failure = String(error); })
  .finally(() => fetch("/result", { method: "POST", body: JSON.stringify(seen) }));
"#;

/// A port for the page, bound first: the API must know the page's origin before it starts.
async fn page_origin() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (listener, origin)
}

/// Serves the page (another origin than the API's: another port) and hands back what it posts.
fn serve_page(listener: tokio::net::TcpListener, api: &Api) -> mpsc::Receiver<Value> {
    let page = format!(
        "<!doctype html><title>meters front end</title><script>\nconst API = {:?}; const TOKEN = {:?}; \
         const ACCOUNT = \"{}\";\n{PAGE_SCRIPT}</script>",
        api.base, api.token, api.account
    );
    let (sender, results) = mpsc::channel(1);
    let sender = Arc::new(Mutex::new(Some(sender)));
    let router = axum::Router::new()
        .route("/", get(move || async move { axum::response::Html(page) }))
        .route(
            "/result",
            post(move |body: String| async move {
                let sender = sender.lock().unwrap().take();
                if let Some(sender) = sender {
                    let _ = sender.send(serde_json::from_str(&body).unwrap()).await;
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    results
}

/// Chromium on the page until it posts its result (or a minute passes), then closed.
async fn browse(origin: &str, mut results: mpsc::Receiver<Value>) -> Value {
    let profile = tempdir("chromium-profile");
    let mut browser = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("{origin}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts (set CHROMIUM to its path if it is not `chromium`)");
    let seen = tokio::time::timeout(Duration::from_secs(60), results.recv()).await;
    let _ = browser.kill();
    let _ = browser.wait();
    let _ = std::fs::remove_dir_all(&profile);
    seen.expect("the page reported within a minute")
        .expect("the page server is running")
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Api {
    _server: LocalServer,
    _data: std::path::PathBuf,
    base: String,
    token: String,
    account: AccountId,
}

fn start_api(allowed_origin: &str) -> Api {
    let data = tempdir("meters-browser");
    let server = LocalServer::start_with(
        env!("CARGO_BIN_EXE_meters-local"),
        &data,
        &[
            ("JWT_SECRET", SECRET),
            ("CORS_ALLOWED_ORIGINS", allowed_origin),
        ],
    );
    let account = AccountId::from(uuid::Uuid::new_v4());
    let token = TokenIssuer::new(&hs256_config(SECRET))
        .unwrap()
        .issue(&[account], Duration::from_secs(600))
        .unwrap();
    Api {
        base: server.base.clone(),
        _server: server,
        _data: data,
        token,
        account,
    }
}

#[tokio::test]
#[ignore = "drives headless Chromium (Debian's `chromium`; scripts/test installs it)"]
async fn a_page_on_an_allowed_origin_creates_reads_updates_lists_and_deletes_through_the_browser() {
    let (listener, origin) = page_origin().await;
    let api = start_api(&origin);
    let seen = browse(&origin, serve_page(listener, &api)).await;

    assert_eq!(seen.get("failure"), None, "{seen:#}");
    let create = &seen["create"];
    assert_eq!(create["status"], 201, "{seen:#}");
    let id = create["body"]["data"]["id"].as_i64().unwrap();
    assert_eq!(create["etag"], format!("\"{id}-1\""), "ETag is exposed");
    assert!(
        create["location"]
            .as_str()
            .is_some_and(|location| location.contains(&format!("/api/v1/meters/{id}"))),
        "Location is exposed: {seen:#}"
    );
    assert!(
        create["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(seen["replay"]["status"], 201);
    assert_eq!(
        seen["replay"]["replayed"], "true",
        "Idempotent-Replayed is exposed"
    );
    assert_eq!(
        seen["replay"]["body"]["data"]["id"], id,
        "the replay is the same meter"
    );
    assert_eq!(seen["read"]["status"], 200);
    assert_eq!(
        seen["update"]["status"], 200,
        "If-Match went through: {seen:#}"
    );
    assert_eq!(
        seen["update"]["body"]["data"]["name"],
        "Renamed in the browser"
    );
    assert_eq!(seen["stale"]["status"], 412);
    assert_eq!(seen["stale"]["body"]["code"], "precondition_failed");
    assert_eq!(seen["list"]["status"], 200);
    assert_eq!(seen["list"]["body"]["count"], 1, "{seen:#}");
    assert_eq!(seen["delete"]["status"], 204, "{seen:#}");
}

#[tokio::test]
#[ignore = "drives headless Chromium (Debian's `chromium`; scripts/test installs it)"]
async fn a_page_on_an_origin_that_is_not_allowed_is_blocked_by_the_browser() {
    let (listener, origin) = page_origin().await;
    let api = start_api("http://allowed.example");
    let seen = browse(&origin, serve_page(listener, &api)).await;
    assert_eq!(seen.get("create"), None, "{seen:#}");
    assert!(
        seen["failure"]
            .as_str()
            .is_some_and(|failure| failure.contains("Failed to fetch")),
        "the browser refused the call: {seen:#}"
    );
    let check = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/meters?account_id={}",
            api.base, api.account
        ))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    let listed: Value = check.json().await.unwrap();
    assert_eq!(
        listed["count"], 0,
        "a blocked preflight kept the create from being sent"
    );
}
