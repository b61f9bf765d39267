//! A TCP proxy between a DynamoDB client and DynamoDB Local that can hold back the response to a chosen
//! operation: the write reaches DynamoDB and is applied, but its answer arrives after the client's attempt
//! timeout, so the client retries into its own earlier write, as on a slow network.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct Faults {
    /// Hold back the answer to the next request for this `X-Amz-Target` operation (such as `PutItem`);
    /// `None` as the delay drops it (the connection is closed instead).
    delay_next: Option<(String, Option<Duration>)>,
    delayed: usize,
    /// While frozen, nothing DynamoDB answers is passed on.
    frozen: bool,
}

/// What happens to one answer.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Delay(Duration),
    Drop,
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

    /// How many answers were held back so far.
    pub fn delayed(&self) -> usize {
        self.faults.lock().expect("not poisoned").delayed
    }
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
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let text = String::from_utf8_lossy(&buffer[..read]).to_ascii_lowercase();
            {
                let mut faults = faults.lock().expect("not poisoned");
                if let Some((operation, delay)) = faults.delay_next.clone() {
                    let target = format!(
                        "x-amz-target: dynamodb_20120810.{}",
                        operation.to_ascii_lowercase()
                    );
                    if text.contains(&target) {
                        faults.delay_next = None;
                        faults.delayed += 1;
                        *marked.lock().expect("not poisoned") =
                            Some(delay.map_or(Fate::Drop, Fate::Delay));
                    }
                }
            }
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let fate = hold.lock().expect("not poisoned").take();
        match fate {
            Some(Fate::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(Fate::Drop) => break,
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
