//! Snapshots in S3: one object per account, `listings/<account_id>.json.gz`, in the bucket `SNAPSHOT_BUCKET`
//! names. A write replaces the object whole (S3 reads what was last written), so a reader finds either the
//! snapshot before or the one after, never a mix; if two processes write at once the older may win, which
//! only lengthens the next refresh.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::format::{MAX_OBJECT_BYTES, decode, encode};
use super::{ListingSnapshots, Snapshot, SnapshotError};
use crate::config::{ConfigError, Env};
use crate::domain::meter::AccountId;
use crate::store::listing::Listing;

#[derive(Debug, Clone)]
pub struct S3Snapshots {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Snapshots {
    /// From `SNAPSHOT_BUCKET` (unset: `None`, no snapshots) and the SDK's own settings: the region and
    /// credentials Lambda gives, and `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) for an emulator.
    pub async fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        use aws_sdk_s3::config::retry::RetryConfig;
        use aws_sdk_s3::config::timeout::TimeoutConfig;
        let Some(bucket) = env.get("SNAPSHOT_BUCKET") else {
            return Ok(None);
        };
        check_bucket_name(&bucket)?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        // An emulator answers at one host, not at `<bucket>.<host>`.
        let emulated =
            env.get("AWS_ENDPOINT_URL_S3").is_some() || env.get("AWS_ENDPOINT_URL").is_some();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(emulated)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(6))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build();
        Ok(Some(Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket,
        }))
    }

    /// On a client built elsewhere (tests, benchmarks).
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object `account`'s snapshot is kept in.
    pub fn key_of(account: &AccountId) -> String {
        format!("listings/{account}.json.gz")
    }
}

fn check_bucket_name(name: &str) -> Result<(), ConfigError> {
    let valid = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            variable: "SNAPSHOT_BUCKET",
            reason: "an S3 bucket name is 3 to 63 characters of a-z, 0-9, `-` and `.`".into(),
        })
    }
}

#[async_trait]
impl ListingSnapshots for S3Snapshots {
    async fn read(&self, account: &AccountId) -> Result<Option<Snapshot>, SnapshotError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(Self::key_of(account))
            .send()
            .await;
        let object = match object {
            Ok(object) => object,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(error) => return Err(SnapshotError::Unavailable(Box::new(error))),
        };
        // Refused unread when it is bigger than any snapshot (the bucket is written by list processes only).
        if object
            .content_length()
            .is_some_and(|length| length as u64 > MAX_OBJECT_BYTES as u64)
        {
            return Err(SnapshotError::Unreadable(format!(
                "an object of {} bytes, over the {MAX_OBJECT_BYTES} a snapshot may take",
                object.content_length().unwrap_or_default()
            )));
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|error| SnapshotError::Unavailable(Box::new(error)))?
            .into_bytes();
        // Parsing is seconds of CPU at a small share: off the threads that serve requests.
        let account = *account;
        tokio::task::spawn_blocking(move || decode(&account, &bytes))
            .await
            .map_err(|error| SnapshotError::Unreadable(error.to_string()))?
            .map(Some)
    }

    async fn write(
        &self,
        account: &AccountId,
        version: u64,
        listing: Arc<Listing>,
    ) -> Result<(), SnapshotError> {
        let owner = *account;
        let bytes = tokio::task::spawn_blocking(move || encode(&owner, version, &listing))
            .await
            .map_err(|error| SnapshotError::Unreadable(error.to_string()))??;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key_of(account))
            // Not `Content-Encoding: gzip`, which a client may undo on the way in: the bytes are the format.
            .content_type("application/gzip")
            .metadata("list-version", version.to_string())
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| SnapshotError::Unavailable(Box::new(error)))?;
        Ok(())
    }
}
