//! What a careless or slow client meets: header and body timeouts, idle keep-alive connections, oversized and malformed requests, all answered in the envelope.

use crate::helpers::*;

/// A server with short timeouts, so that slow clients can be tried in a test's time.
async fn spawn_with_short_timeouts() -> (std::net::SocketAddr, TestApp) {
    spawn_with_limits(meters_local::Limits {
        header_read: Duration::from_millis(600),
        body_read: Duration::from_millis(600),
        drain: Duration::from_millis(600),
        connections: 256,
    })
    .await
}

async fn spawn_with_limits(limits: meters_local::Limits) -> (std::net::SocketAddr, TestApp) {
    let auth = hs256_config(SECRET);
    let (listener, app) = start(&Storage::Memory, &auth, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(meters_local::serve_with(
        listener,
        app,
        std::future::pending(),
        limits,
        meters_local::Cors::default(),
    ));
    let issuer = TokenIssuer::new(&auth).unwrap();
    let account = AccountId::from(uuid::Uuid::new_v4());
    let token = issuer.issue(&[account], Duration::from_secs(600)).unwrap();
    let test_app = TestApp {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        issuer,
        account,
        token,
    };
    (address, test_app)
}

/// Everything the server sends until it closes the connection (or `wait` passes).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut received)).await {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let (address, _) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /api/v1/meters HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "still connected after 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_a_408_in_the_envelope() {
    use tokio::io::AsyncWriteExt;
    let (address, app) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/meters HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed within 5 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{answer}"
    );
    assert!(
        answer.contains(r#""error":"the body did not arrive within 0.6 s""#),
        "{answer}"
    );
}

/// One request per connection: after its answer the connection is closed (`Connection: close`), so a
/// second request on it is never read by the HTTP layer unscreened.
#[tokio::test]
async fn a_connection_is_closed_after_its_answer() {
    use tokio::io::AsyncWriteExt;
    let (address, app) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /api/v1/meters?account_id={} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        app.account, app.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

/// What the HTTP layer would refuse with a bare 400 or 431 is refused in the envelope: more header fields
/// than it takes, and bodies framed ambiguously.
#[tokio::test]
async fn heads_the_http_layer_would_refuse_bare_are_answered_in_the_envelope() {
    use tokio::io::AsyncWriteExt;
    let (address, _) = spawn_with_short_timeouts().await;
    let many_fields: String = (0..110).map(|n| format!("X-Field-{n}: {n}\r\n")).collect();
    let cases = [
        (many_fields, "431"),
        ("Content-Length: ten\r\n".to_owned(), "400"),
        (
            "Content-Length: 2\r\nContent-Length: 3\r\n".to_owned(),
            "400",
        ),
        // Equal values, but as a list in one field: hyper refuses that bare.
        ("Content-Length: 2, 2\r\n".to_owned(), "400"),
        ("Transfer-Encoding: gzip\r\n".to_owned(), "400"),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n".to_owned(),
            "400",
        ),
    ];
    for (fields, status) in cases {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("POST /api/v1/meters HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .expect("answered and closed");
        let label = fields.lines().next().unwrap_or_default().to_owned();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{label}: {answer}"
        );
        assert!(answer.contains(r#""success":false"#), "{label}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("x-request-id:"),
            "{label}: {answer}"
        );
    }
}

#[tokio::test]
async fn oversized_targets_and_headers_and_head_requests_are_answered_in_the_envelope() {
    let (_, app) = spawn_with_short_timeouts().await;
    // A 100,000-digit id: longer than HTTP clients will build, so it goes over a raw connection.
    let (address, _) = (app.base.trim_start_matches("http://").to_owned(), ());
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /api/v1/meters/{}?account_id={} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        "9".repeat(100_000),
        app.account,
        app.token
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    let shown: String = answer.chars().take(400).collect();
    assert!(answer.starts_with("HTTP/1.1 414"), "{shown}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{shown}"
    );
    assert!(
        answer.contains(r#""error":"the request target is longer than 8192 bytes""#),
        "{shown}"
    );

    let huge = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/meters?account_id={}",
            app.base, app.account
        ))
        .bearer_auth(&app.token)
        .header("x-padding", "p".repeat(1_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 431);
    assert!(huge.headers().contains_key("x-request-id"));
    let body: Value = huge.json().await.unwrap();
    assert_eq!(
        body["error"],
        "the request headers are larger than 65536 bytes"
    );

    let head = reqwest::Client::new()
        .head(format!(
            "{}/api/v1/meters?account_id={}",
            app.base, app.account
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("x-request-id"));
    assert_eq!(head.bytes().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_malformed_request_is_answered_400_in_the_envelope() {
    use tokio::io::AsyncWriteExt;
    let (address, _) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /api/v1/meters HTTP/1.1\r\nHost localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{answer}"
    );
    assert!(
        answer.contains(r#""error":"request: is not a well-formed HTTP/1.1 request""#),
        "{answer}"
    );
}

/// A first request whose lines end in bare LF, which the HTTP layer accepts, is answered (not left to
/// time out in the head screener).
#[tokio::test]
async fn a_request_with_bare_lf_line_endings_is_answered() {
    use tokio::io::AsyncWriteExt;
    let (address, app) = spawn_with_short_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /api/v1/meters?account_id={} HTTP/1.1\nHost: localhost\nAuthorization: Bearer {}\nConnection: close\n\n",
        app.account, app.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer before the connection closes");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"success\":true"), "{answer}");
}

/// No more connections are served at once than the limit: with both slots held by clients that send
/// nothing, a third client's request waits, unread, and is answered once a slot is free.
#[tokio::test]
async fn connections_past_the_limit_wait_for_a_free_slot() {
    use tokio::io::AsyncWriteExt;
    let (address, app) = spawn_with_limits(meters_local::Limits {
        header_read: Duration::from_secs(30),
        body_read: Duration::from_secs(30),
        drain: Duration::from_millis(600),
        connections: 2,
    })
    .await;
    let idle = [
        tokio::net::TcpStream::connect(address).await.unwrap(),
        tokio::net::TcpStream::connect(address).await.unwrap(),
    ];
    let mut third = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /api/v1/meters?account_id={} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        app.account, app.token
    );
    third.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(
        read_until_closed(&mut third, Duration::from_millis(500)).await,
        None,
        "served past the limit"
    );
    drop(idle);
    let answer = read_until_closed(&mut third, Duration::from_secs(5))
        .await
        .expect("answered once a slot is free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
