//! A TCP proxy between a DynamoDB client and DynamoDB Local that can hold back the response to a chosen
//! operation: the write reaches DynamoDB and is applied, but its answer arrives after the client's attempt
//! timeout, so the client retries into its own earlier write, as on a slow network. It can also answer an
//! operation itself, as DynamoDB does when it throttles, without passing the request on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Work run before a request is passed on.
type Interlude = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

#[derive(Default)]
struct Faults {
    /// Run this before passing on the next request for this operation: another client's write landing
    /// between two reads of one request, at exactly that point.
    before_next: Option<(String, Interlude)>,
    /// Hold back the answer to the next request for this `X-Amz-Target` operation (such as `PutItem`);
    /// `None` as the delay drops it (the connection is closed instead).
    delay_next: Option<(String, Option<Duration>)>,
    delayed: usize,
    /// While frozen, nothing DynamoDB answers is passed on.
    frozen: bool,
    /// Answers to requests for this operation wait until this is cleared.
    held: Option<String>,
    /// Requests seen, by operation (`Query`, `GetItem`, …).
    requests: std::collections::HashMap<String, usize>,
    /// Requests for this operation are answered with `ProvisionedThroughputExceededException` here.
    throttled: Option<String>,
    throttled_answers: usize,
}

/// DynamoDB's answer to a request over the table's throughput, as its JSON protocol writes it.
const THROTTLED_BODY: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#;

/// What happens to one answer.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Delay(Duration),
    Drop,
    /// Held while answers to its operation are held (`hold_answers`).
    Held,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field(
                "before_next",
                &self.before_next.as_ref().map(|(operation, _)| operation),
            )
            .field("delay_next", &self.delay_next)
            .field("frozen", &self.frozen)
            .field("held", &self.held)
            .field("throttled", &self.throttled)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:port`, to use as the DynamoDB endpoint.
    pub endpoint: String,
    faults: Arc<Mutex<Faults>>,
}

impl FaultProxy {
    /// Forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = Arc::clone(&faults);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let faults = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, faults).await;
                    }
                });
            }
        });
        Self { endpoint, faults }
    }

    /// The answer to the next `operation` request (`PutItem`, `UpdateItem`, `DeleteItem`, …) is held back
    /// for `delay` after DynamoDB has given it.
    pub fn delay_next_answer(&self, operation: &str, delay: Duration) {
        self.faults.lock().expect("not poisoned").delay_next =
            Some((operation.to_owned(), Some(delay)));
    }

    /// The answer to the next `operation` request is never passed on: the connection is closed instead.
    pub fn drop_next_answer(&self, operation: &str) {
        self.faults.lock().expect("not poisoned").delay_next = Some((operation.to_owned(), None));
    }

    /// Freezes (or resumes) every answer: requests still reach DynamoDB, answers wait until resumed.
    pub fn set_frozen(&self, frozen: bool) {
        self.faults.lock().expect("not poisoned").frozen = frozen;
    }

    /// Runs `interlude` (to completion) before the next `operation` request is passed on to DynamoDB.
    pub fn before_next<F>(&self, operation: &str, interlude: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let interlude: Interlude = Box::new(move || Box::pin(interlude));
        self.faults.lock().expect("not poisoned").before_next =
            Some((operation.to_owned(), interlude));
    }

    /// Holds back every answer to an `operation` request from now on (they still reach DynamoDB, which
    /// applies them) until `release_answers`: the client gives up on each attempt, then on the operation.
    pub fn hold_answers(&self, operation: &str) {
        self.faults.lock().expect("not poisoned").held = Some(operation.to_owned());
    }

    /// Lets the held answers go, late.
    pub fn release_answers(&self) {
        self.faults.lock().expect("not poisoned").held = None;
    }

    /// Every `operation` request from now on is answered as DynamoDB answers when it throttles
    /// (`ProvisionedThroughputExceededException`); none of them reaches DynamoDB.
    pub fn throttle(&self, operation: &str) {
        self.faults.lock().expect("not poisoned").throttled = Some(operation.to_owned());
    }

    /// How many `operation` requests have come through so far.
    pub fn requests(&self, operation: &str) -> usize {
        let faults = self.faults.lock().expect("not poisoned");
        faults.requests.get(operation).copied().unwrap_or(0)
    }

    /// How many requests were answered as throttled so far.
    pub fn throttled_answers(&self) -> usize {
        self.faults.lock().expect("not poisoned").throttled_answers
    }

    /// How many answers were held back so far.
    pub fn delayed(&self) -> usize {
        self.faults.lock().expect("not poisoned").delayed
    }
}

fn answers_held(faults: &Mutex<Faults>) -> bool {
    faults.lock().expect("not poisoned").held.is_some()
}

fn faults_frozen(faults: &Mutex<Faults>) -> bool {
    faults.lock().expect("not poisoned").frozen
}

async fn relay(client: TcpStream, server: TcpStream, faults: Arc<Mutex<Faults>>) {
    let faults_for_answers = Arc::clone(&faults);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set when a request on this connection is the one whose answer is to be held back.
    let hold = Arc::new(Mutex::new(None::<Fate>));
    let marked = Arc::clone(&hold);
    // Answers the proxy gives itself, written to the client between DynamoDB's.
    let (own_answers, mut answers_to_write) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        // Bytes of a throttled request's body still to come, which DynamoDB must not see.
        let mut swallowing = 0usize;
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if swallowing > 0 {
                swallowing = swallowing.saturating_sub(read);
                continue;
            }
            let text = String::from_utf8_lossy(&buffer[..read]).to_ascii_lowercase();
            let target_of = |operation: &str| {
                format!(
                    "x-amz-target: dynamodb_20120810.{}",
                    operation.to_ascii_lowercase()
                )
            };
            let (throttled, interlude) = {
                let mut faults = faults.lock().expect("not poisoned");
                if let Some(operation) = operation_of(&text) {
                    *faults.requests.entry(operation).or_default() += 1;
                }
                let interlude = match faults.before_next.take() {
                    Some((operation, interlude)) if text.contains(&target_of(&operation)) => {
                        Some(interlude)
                    }
                    other => {
                        faults.before_next = other;
                        None
                    }
                };
                if let Some((operation, delay)) = faults.delay_next.clone()
                    && text.contains(&target_of(&operation))
                {
                    faults.delay_next = None;
                    faults.delayed += 1;
                    *marked.lock().expect("not poisoned") =
                        Some(delay.map_or(Fate::Drop, Fate::Delay));
                }
                if faults
                    .held
                    .as_deref()
                    .is_some_and(|operation| text.contains(&target_of(operation)))
                {
                    *marked.lock().expect("not poisoned") = Some(Fate::Held);
                }
                let throttled = faults
                    .throttled
                    .as_deref()
                    .is_some_and(|operation| text.contains(&target_of(operation)));
                faults.throttled_answers += usize::from(throttled);
                (throttled, interlude)
            };
            if let Some(interlude) = interlude {
                interlude().await;
            }
            if throttled {
                swallowing = body_still_to_come(&text, read);
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
                     x-amzn-requestid: fault-proxy\r\ncontent-length: {}\r\n\r\n{THROTTLED_BODY}",
                    THROTTLED_BODY.len()
                );
                if own_answers.send(answer.into_bytes()).is_err() {
                    break;
                }
                continue;
            }
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            own = answers_to_write.recv() => match own {
                Some(answer) if client_write.write_all(&answer).await.is_ok() => continue,
                _ => break,
            },
            read = server_read.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            },
        };
        let fate = hold.lock().expect("not poisoned").take();
        match fate {
            Some(Fate::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(Fate::Drop) => break,
            Some(Fate::Held) => {
                while answers_held(&faults_for_answers) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            None => {}
        }
        while faults_frozen(&faults_for_answers) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if client_write.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

/// The DynamoDB operation a request head names (`x-amz-target: DynamoDB_20120810.Query`), as the SDK
/// spells it.
fn operation_of(lowercase_text: &str) -> Option<String> {
    const OPERATIONS: [&str; 9] = [
        "Query",
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "Scan",
        "DescribeTable",
        "CreateTable",
    ];
    let named = lowercase_text
        .split("x-amz-target: dynamodb_20120810.")
        .nth(1)?
        .split(|c: char| c.is_whitespace())
        .next()?;
    OPERATIONS
        .iter()
        .find(|operation| operation.eq_ignore_ascii_case(named))
        .map(|operation| (*operation).to_owned())
}

/// How much of a request's body has not arrived with its head: `read` bytes came in this read, `text` is
/// them lower-cased.
fn body_still_to_come(text: &str, read: usize) -> usize {
    let Some(head_end) = text.find("\r\n\r\n") else {
        return 0;
    };
    let length = text[..head_end]
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (head_end + 4 + length).saturating_sub(read)
}
