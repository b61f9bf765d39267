#[allow(
    dead_code,
    reason = "shared with the benchmark harness, which uses the timing half"
)]
pub mod runtime_api;
