//! The real binary as a user runs it: data survives a restart, printed tokens work, SIGTERM drains and exits in time.

use crate::helpers::*;

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
