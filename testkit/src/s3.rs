//! An S3 emulator (moto's server), which `scripts/test` starts and names in `S3_ENDPOINT`: a fresh bucket per
//! test, a client for it, and the environment a function binary needs to keep its snapshots there.

use meters::store::snapshots::S3Snapshots;

/// The running emulator's endpoint. Tests that need it are `#[ignore]`d outside `scripts/test`.
pub fn endpoint() -> String {
    std::env::var("S3_ENDPOINT")
        .expect("S3_ENDPOINT must point at moto's server; run scripts/test, which starts it")
}

/// A client of the emulator, configured as a function's would be by `AWS_ENDPOINT_URL_S3`.
pub fn client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        .endpoint_url(endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A new, empty bucket named `{prefix}-{random}`, and the snapshot store on it.
pub async fn fresh_bucket(prefix: &str) -> (String, S3Snapshots) {
    let bucket = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let client = client();
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the test bucket is created");
    let snapshots = S3Snapshots::new(client, bucket.clone());
    (bucket, snapshots)
}

/// The bytes of `key` in `bucket`, if it is there.
pub async fn object(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let object = client()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(object.body.collect().await.ok()?.into_bytes().to_vec())
}

/// Puts `bytes` under `key` in `bucket`, as anyone with write access to it could.
pub async fn put(bucket: &str, key: &str, bytes: Vec<u8>) {
    client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .expect("the object is put");
}

/// Waits (at most 10 s) for `key` to appear in `bucket`, or to change from `before`, and returns its bytes.
pub async fn written(bucket: &str, key: &str, before: Option<&[u8]>) -> Vec<u8> {
    written_within(bucket, key, before, std::time::Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{key} was not written to {bucket} within 10 s"))
}

/// Waits at most `wait` for `key` to appear in `bucket`, or to change from `before`: its bytes, if it did.
pub async fn written_within(
    bucket: &str,
    key: &str,
    before: Option<&[u8]>,
    wait: std::time::Duration,
) -> Option<Vec<u8>> {
    let started = std::time::Instant::now();
    while started.elapsed() < wait {
        if let Some(bytes) = object(bucket, key).await
            && Some(bytes.as_slice()) != before
        {
            return Some(bytes);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// A function's snapshot settings against the emulator.
pub fn function_environment(bucket: &str) -> Vec<(String, String)> {
    [
        ("SNAPSHOT_BUCKET", bucket.to_owned()),
        ("AWS_ENDPOINT_URL_S3", endpoint()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}
