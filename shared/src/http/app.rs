//! The application: what every handler needs, built once per process, and how long a request may take.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::{Request, RequestExt};

use crate::auth::Authenticator;
use crate::config::{ConfigError, Env};
use crate::store::{IdempotencyStore, MeterStore, ReadingStore, Store};

/// What every handler needs, built once per process (at cold start in Lambda) and shared by requests.
#[derive(Debug, Clone)]
pub struct App {
    pub meters: Arc<dyn MeterStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Readings reach meters by the readings queue (`crate::readings`); in one process, the local server's
    /// loopback route takes them here.
    pub readings: Arc<dyn ReadingStore>,
    pub auth: Arc<Authenticator>,
    /// How long one request may take, every store call, page and retry included.
    pub deadline: Duration,
}

/// The default request deadline: inside the functions' 10 s timeout with room to answer.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(8);

/// Kept back from the Lambda invocation's own deadline, so that the 503 is written before Lambda stops
/// the function.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

impl App {
    /// The application on `store`, which keeps the meters, their readings and the idempotency records.
    pub fn new(store: impl Store + 'static, auth: Authenticator) -> Self {
        let store = Arc::new(store);
        Self {
            meters: Arc::clone(&store) as Arc<dyn MeterStore>,
            readings: Arc::clone(&store) as Arc<dyn ReadingStore>,
            idempotency: store,
            auth: Arc::new(auth),
            deadline: DEFAULT_DEADLINE,
        }
    }

    pub fn with_deadline(self, deadline: Duration) -> Self {
        Self { deadline, ..self }
    }

    /// This request's budget: the configured deadline, or less when the Lambda invocation ends sooner.
    pub(super) fn budget(&self, request: &Request) -> Duration {
        let invocation_left = request.lambda_context_ref().and_then(|context| {
            let deadline = UNIX_EPOCH + Duration::from_millis(context.deadline);
            deadline.duration_since(SystemTime::now()).ok()
        });
        match invocation_left {
            Some(left) if context_deadline_is_set(left) => {
                self.deadline.min(left.saturating_sub(ANSWER_MARGIN))
            }
            _ => self.deadline,
        }
    }
}

/// A Lambda context without a deadline (tests, the local server) reads as 1970.
fn context_deadline_is_set(left: Duration) -> bool {
    left > Duration::ZERO
}

/// `REQUEST_DEADLINE_MS`: how long one request may take in all (default 8,000). In Lambda the invocation's
/// own deadline caps it further, so a request always ends before the function's timeout.
pub fn request_deadline(env: &Env) -> Result<Duration, ConfigError> {
    let deadline = env.parsed("REQUEST_DEADLINE_MS", |raw| {
        match raw.trim().parse::<u64>() {
            Ok(ms) if (100..=900_000).contains(&ms) => Ok(Duration::from_millis(ms)),
            _ => Err("it must be a whole number of milliseconds from 100 to 900000".to_owned()),
        }
    })?;
    Ok(deadline.unwrap_or(DEFAULT_DEADLINE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_deadline_defaults_to_8_seconds_and_takes_milliseconds() {
        let deadline = |raw: &str| request_deadline(&Env::of([("REQUEST_DEADLINE_MS", raw)]));
        assert_eq!(deadline(""), Ok(Duration::from_secs(8)));
        assert_eq!(deadline("2500"), Ok(Duration::from_millis(2500)));
        for bad in ["0", "99", "8s", "-1", "900001"] {
            assert!(deadline(bad).is_err(), "{bad}");
        }
    }
}
