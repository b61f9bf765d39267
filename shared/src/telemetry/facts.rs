//! The facts a request gathers on its way (which invocation it is, its account, the store's capacity and
//! trouble), for its log line and metrics. Any layer notes them; nobody passes them along.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// DynamoDB capacity a request consumed, as DynamoDB reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    pub read: f64,
    pub write: f64,
}

/// Which invocation a request is: what every log line written while serving it carries.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The Lambda request id (Powertools' `function_request_id`).
    pub function_request_id: Option<String>,
    /// The X-Ray trace id (its `Root`).
    pub xray_trace_id: Option<String>,
    /// API Gateway's own request id, which its access log carries too.
    pub correlation_id: Option<String>,
    /// The first request of this process.
    pub cold_start: bool,
}

static COLD: AtomicBool = AtomicBool::new(true);

impl Invocation {
    /// Takes the cold start: only the first invocation of a process has it.
    pub fn new(
        function_request_id: Option<String>,
        xray_trace_header: Option<&str>,
        correlation_id: Option<String>,
    ) -> Self {
        Self {
            function_request_id,
            xray_trace_id: xray_trace_header.map(trace_root),
            correlation_id,
            cold_start: COLD.swap(false, Ordering::Relaxed),
        }
    }
}

/// `Root=1-…;Parent=…;Sampled=1` → `1-…`, as Powertools logs it.
fn trace_root(header: &str) -> String {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .unwrap_or(header)
        .to_owned()
}

/// What a request found out on its way, for its log line and metrics.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub invocation: Invocation,
    pub capacity: Capacity,
    pub account_id: Option<String>,
    /// Who made the request: the token's `sub` and `client_id` (never the token).
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub store_throttled: bool,
    pub store_unavailable: bool,
}

tokio::task_local! {
    static REQUEST: RefCell<Facts>;
}

/// Runs `work` as the request `invocation`: what it notes (below) is gathered for its log line, and every
/// line it logs carries the invocation. The request line is written inside, before the scope ends.
pub async fn within_request<F: std::future::Future>(invocation: Invocation, work: F) -> F::Output {
    let facts = Facts {
        invocation,
        ..Facts::default()
    };
    REQUEST.scope(RefCell::new(facts), work).await
}

/// What the request being served has gathered so far; nothing outside a request.
pub fn current() -> Facts {
    REQUEST
        .try_with(|facts| facts.borrow().clone())
        .unwrap_or_default()
}

/// The invocation being served, for the keys of every log line it writes.
pub(super) fn with_invocation(read: impl FnOnce(&Invocation)) {
    let _ = REQUEST.try_with(|facts| read(&facts.borrow().invocation));
}

/// Outside a request (tools, tests of the store alone) nobody is gathering.
fn note(change: impl FnOnce(&mut Facts)) {
    let _ = REQUEST.try_with(|facts| change(&mut facts.borrow_mut()));
}

pub fn note_account(account: &impl std::fmt::Display) {
    note(|facts| facts.account_id = Some(account.to_string()));
}

pub fn note_actor(sub: Option<&str>, client_id: Option<&str>) {
    note(|facts| {
        facts.sub = sub.map(str::to_owned);
        facts.client_id = client_id.map(str::to_owned);
    });
}

pub fn note_store_throttled() {
    note(|facts| facts.store_throttled = true);
}

pub fn note_store_unavailable() {
    note(|facts| facts.store_unavailable = true);
}

/// Read capacity units a store call consumed, as the store reports them (none: it did not say).
pub fn spend_read(units: Option<f64>) {
    if let Some(units) = units {
        note(|facts| facts.capacity.read += units);
    }
}

/// Write capacity units a store call consumed.
pub fn spend_write(units: Option<f64>) {
    if let Some(units) = units {
        note(|facts| facts.capacity.write += units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_root_of_the_trace_header() {
        assert_eq!(
            trace_root(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        assert_eq!(trace_root("1-abc"), "1-abc");
    }
}
