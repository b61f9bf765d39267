#[allow(
    dead_code,
    reason = "shared with the benchmarks, which use other parts"
)]
pub mod events;
#[allow(
    dead_code,
    reason = "shared with the benchmark harness, which uses the timing half"
)]
pub mod runtime_api;
