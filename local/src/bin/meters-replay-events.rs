//! Publishes the change events of the batches meter-events gave up on: each message of the failures queue
//! names a stretch of the table's stream, which is read again and published by meter-events' own publisher;
//! a message is deleted once all of its records are on the bus, and kept otherwise. `scripts/replay-events`
//! (docs/runbooks.md: change events failed).
//!
//! Usage: meters-replay-events QUEUE_URL [--dry-run]
//! with the stack's TABLE_NAME (tombstones tell who deleted a meter) and EVENT_BUS_NAME, in the account and
//! region of the stack (the SDK's own settings; DYNAMODB_ENDPOINT and AWS_ENDPOINT_URL_* for emulators).
//! --dry-run reads every message and its records and publishes nothing. Exits 1 if any message was kept.

use aws_sdk_sqs::types::Message;
use meters::events::{ChangePublisher, ParkedBatch, ReplayError, StreamReader};

const USAGE: &str = "usage: meters-replay-events QUEUE_URL [--dry-run]";
/// Long enough to read a batch's records and publish them before another reader could see the message.
const VISIBILITY_SECONDS: i32 = 300;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(clean) => std::process::ExitCode::from(u8::from(!clean)),
        Err(error) => {
            eprintln!("meters-replay-events: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (queue, dry_run) = match args.as_slice() {
        [queue] if !queue.starts_with("--") => (queue.clone(), false),
        [queue, flag] if flag == "--dry-run" => (queue.clone(), true),
        _ => return Err(USAGE.into()),
    };
    let env = meters::config::Env::process();
    let publisher = ChangePublisher::from_env().await?;
    let stream = StreamReader::from_env(&env).await?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (mut replayed, mut kept) = (0, 0);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(VISIBILITY_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            if replay(message, &stream, &publisher, dry_run).await {
                replayed += 1;
                if !dry_run {
                    sqs.delete_message()
                        .queue_url(&queue)
                        .receipt_handle(message.receipt_handle().unwrap_or_default())
                        .send()
                        .await?;
                }
            } else {
                kept += 1;
            }
        }
        if dry_run {
            // Each message was read once; reading on would only see them again after their visibility.
            break;
        }
    }
    println!(
        "meters-replay-events: {replayed} batches {}, {kept} kept in the queue",
        if dry_run { "readable" } else { "replayed" }
    );
    Ok(kept == 0)
}

/// Whether every record of the message's batch is published (or, dry, readable).
async fn replay(
    message: &Message,
    stream: &StreamReader,
    publisher: &ChangePublisher,
    dry_run: bool,
) -> bool {
    let id = message.message_id().unwrap_or("?");
    let parked = match ParkedBatch::from_message(message.body().unwrap_or_default()) {
        Ok(parked) => parked,
        Err(error) => {
            println!("meters-replay-events: message {id} kept: {error}");
            return false;
        }
    };
    let batch = match stream.batch(&parked).await {
        Ok(batch) => batch,
        Err(error @ ReplayError::Trimmed(_)) => {
            println!(
                "meters-replay-events: message {id} kept: {error}; docs/runbooks.md: change events failed"
            );
            return false;
        }
        Err(error) => {
            println!("meters-replay-events: message {id} kept: {error}");
            return false;
        }
    };
    let records = batch["Records"].as_array().map_or(0, Vec::len);
    if dry_run {
        println!(
            "meters-replay-events: message {id}: {records} records from {} to {} in {}",
            parked.start_sequence_number, parked.end_sequence_number, parked.shard_id
        );
        return true;
    }
    match publisher.publish(&batch).await {
        Ok(response) if response.batch_item_failures.is_empty() => {
            println!("meters-replay-events: message {id}: {records} records published");
            true
        }
        Ok(response) => {
            println!(
                "meters-replay-events: message {id} kept: publishing stopped at record {}",
                response.batch_item_failures[0].item_identifier
            );
            false
        }
        Err(error) => {
            println!("meters-replay-events: message {id} kept: {error}");
            false
        }
    }
}
