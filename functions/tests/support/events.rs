//! What a function binary is given in tests and benchmarks: API Gateway HTTP API events, and the
//! configuration that points it at DynamoDB Local.

use serde_json::json;

/// An API Gateway HTTP API (payload 2.0) event for `/api/v1/meters[/{id}]`, with its path parameter.
pub fn http_api_event(
    method: &str,
    raw_path: &str,
    query: &str,
    token: &str,
    body: Option<&str>,
) -> String {
    let id = raw_path.strip_prefix("/api/v1/meters/");
    let route = if id.is_some() {
        "/api/v1/meters/{id}"
    } else {
        "/api/v1/meters"
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json"},
        "pathParameters": id.map(|id| json!({"id": id})),
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": "req", "routeKey": format!("{method} {route}"), "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600000000u64,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// A function's configuration against DynamoDB Local (which accepts any credentials).
pub fn dynamodb_local_config(
    table: &str,
    endpoint: &str,
    jwt_secret: &str,
) -> Vec<(String, String)> {
    [
        ("TABLE_NAME", table),
        ("DYNAMODB_ENDPOINT", endpoint),
        ("JWT_SECRET", jwt_secret),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}
