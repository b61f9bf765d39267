//! The readings the benchmark sends.

use std::sync::atomic::{AtomicU64, Ordering};

use meters::domain::meter::{AccountId, MeterId, ReadingValue};
use meters::domain::reading::Reading;
use serde_json::{Value, json};

/// Readings of random meters of one account, each later than every one before it.
pub(crate) struct Readings {
    pub(crate) account: AccountId,
    pub(crate) meters: u64,
    pub(crate) next: AtomicU64,
    pub(crate) start: chrono::DateTime<chrono::Utc>,
}

impl Readings {
    pub(crate) fn next(&self) -> Reading {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Reading {
            account_id: self.account,
            meter_id: MeterId::new(1 + (n * 7_919 % self.meters) as i64).expect("an id"),
            value: ReadingValue::parse(n as f64 * 0.25).expect("a value"),
            at: self.start + chrono::Duration::milliseconds(n as i64),
        }
    }

    /// An SQS batch of `messages` messages of `per_message` readings each.
    pub(crate) fn batch(&self, messages: usize, per_message: usize) -> String {
        let records: Vec<Value> = (0..messages)
            .map(|_| {
                let body: Vec<Value> = (0..per_message).map(|_| self.next().to_json()).collect();
                json!({"messageId": uuid::Uuid::new_v4().to_string(), "receiptHandle": "r",
                       "body": Value::Array(body).to_string(), "attributes": {}, "messageAttributes": {},
                       "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:readings",
                       "awsRegion": "us-east-1"})
            })
            .collect();
        json!({ "Records": records }).to_string()
    }
}
