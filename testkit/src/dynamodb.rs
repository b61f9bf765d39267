//! DynamoDB Local, which `scripts/test` starts and names in `DYNAMODB_ENDPOINT`: a fresh table per test, and
//! the environment a function binary needs to use it.

use meters::store::DynamoDbStore;
use meters::store::dynamodb::DynamoDbConfig;

/// The running DynamoDB Local's endpoint. Tests that need it are `#[ignore]`d outside `scripts/test`.
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT must point at DynamoDB Local; run scripts/test, which starts it")
}

/// A new, empty table named `{prefix}-{random}`, created as the template declares it.
pub async fn fresh_table(prefix: &str) -> (DynamoDbConfig, DynamoDbStore) {
    let config = DynamoDbConfig {
        table_name: format!("{prefix}-{}", uuid::Uuid::new_v4().simple()),
        endpoint: Some(endpoint()),
        extra_roots: None,
    };
    let store = DynamoDbStore::new(
        meters::store::dynamodb::dynamodb_client(&config).await,
        config.table_name.clone(),
    );
    store
        .create_table_if_missing()
        .await
        .expect("the test table is created");
    (config, store)
}

/// An endpoint where nothing listens (a loopback port bound and released): every call fails to connect.
pub fn unreachable() -> DynamoDbConfig {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a loopback port")
        .port();
    DynamoDbConfig {
        table_name: "meters-unreachable".into(),
        endpoint: Some(format!("http://127.0.0.1:{closed_port}")),
        extra_roots: None,
    }
}

/// A function's configuration against DynamoDB Local (which accepts any credentials).
pub fn function_environment(config: &DynamoDbConfig, jwt_secret: &str) -> Vec<(String, String)> {
    [
        ("TABLE_NAME", config.table_name.as_str()),
        (
            "DYNAMODB_ENDPOINT",
            config.endpoint.as_deref().unwrap_or_default(),
        ),
        ("JWT_SECRET", jwt_secret),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}
