//! What every test file shares: `spawn_app` (the server in this process on a free port, with a client and a token), the real binary as a user runs it (`LocalServer`), and the envelope assertions.

pub(crate) use std::time::Duration;

pub(crate) use meters::auth::TokenIssuer;
pub(crate) use meters::domain::meter::AccountId;
pub(crate) use meters_local::{Storage, serve, start};
pub(crate) use meters_testkit::TEST_SECRET as SECRET;
pub(crate) use meters_testkit::tokens::hs256_config;
pub(crate) use serde_json::{Value, json};

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) issuer: TokenIssuer,
    pub(crate) account: AccountId,
    pub(crate) token: String,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub(crate) fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    pub(crate) fn ids(&self) -> Vec<i64> {
        self.data()
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    }
}

pub(crate) async fn spawn_app() -> TestApp {
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
    pub(crate) fn token_for(&self, accounts: &[AccountId]) -> String {
        self.issuer
            .issue(accounts, Duration::from_secs(600))
            .unwrap()
    }

    pub(crate) async fn send(
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

    pub(crate) async fn create(&self, body: Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            "/api/v1/meters",
            Some(&self.token),
            Some(body.to_string()),
        )
        .await
    }

    pub(crate) async fn create_named(&self, name: &str) -> i64 {
        let reply = self.create(json!({"account_id": self.account.to_string(), "name": name, "serial_number": format!("SN-{name}")})).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.data()["id"].as_i64().unwrap()
    }

    pub(crate) async fn get(&self, id: i64) -> Reply {
        self.send(
            reqwest::Method::GET,
            &format!("/api/v1/meters/{id}?account_id={}", self.account),
            Some(&self.token),
            None,
        )
        .await
    }

    pub(crate) async fn update(&self, id: i64, body: Value) -> Reply {
        self.send(
            reqwest::Method::PUT,
            &format!("/api/v1/meters/{id}"),
            Some(&self.token),
            Some(body.to_string()),
        )
        .await
    }

    pub(crate) async fn delete(&self, id: i64) -> Reply {
        self.send(
            reqwest::Method::DELETE,
            &format!("/api/v1/meters/{id}?account_id={}", self.account),
            Some(&self.token),
            None,
        )
        .await
    }

    pub(crate) async fn list(&self, query: &str) -> Reply {
        let path = format!("/api/v1/meters?account_id={}&{query}", self.account);
        self.send(reqwest::Method::GET, &path, Some(&self.token), None)
            .await
    }
}

pub(crate) fn full_body(account: &AccountId) -> Value {
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
pub(crate) fn assert_field_error(reply: &Reply, status: u16, field: &str) {
    assert_error_envelope(reply, status);
    assert!(
        reply.error().starts_with(&format!("{field}: ")),
        "error `{}` should be about `{field}`",
        reply.error()
    );
    // Only a rule a value broke names a field for clients; 403 and 404 say it in `error` alone.
    if status == 400 {
        assert_eq!(reply.body["field"], field, "{reply:?}");
    }
}

/// An error envelope whose `error` says `text`, for errors that are not about one field.
pub(crate) fn assert_error_mentions(reply: &Reply, status: u16, text: &str) {
    assert_error_envelope(reply, status);
    assert!(
        reply.error().contains(text),
        "error `{}` should say `{text}`",
        reply.error()
    );
}

pub(crate) fn assert_error_envelope(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.body["success"], false, "{reply:?}");
    assert!(reply.body["message"].is_string(), "{reply:?}");
    // A code clients can branch on, from the one list, and the status that code goes with.
    let code = reply.body["code"].as_str().unwrap_or_default();
    assert!(
        meters::http::error::ERROR_CODES
            .iter()
            .any(|(listed, listed_status, _)| *listed == code && *listed_status == status),
        "code `{code}` with {status}: {reply:?}"
    );
    assert!(reply.headers.contains_key("x-request-id"), "{reply:?}");
    assert_eq!(reply.headers["cache-control"], "no-store", "{reply:?}");
    assert_eq!(
        reply.headers["x-content-type-options"], "nosniff",
        "{reply:?}"
    );
}

pub(crate) struct LocalServer {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
}

impl LocalServer {
    pub(crate) fn start(binary: &str, data_dir: &std::path::Path) -> Self {
        Self::start_with(binary, data_dir, &[])
    }

    pub(crate) fn start_with(
        binary: &str,
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
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

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}
