//! The memory table: an apply-readings batch at Lambda's CPU share for a memory size, and what it costs.

use std::path::Path;
use std::time::Duration;

use meters_testkit::measure::{CpuShare, percentile};

use super::readings::Readings;
use super::running::Running;

/// Lambda's price in eu-west-1, arm64: per GB-second, and per million requests.
pub(crate) const GB_SECOND_USD: f64 = 0.000_013_333_4;
pub(crate) const MILLION_REQUESTS_USD: f64 = 0.20;
/// One apply-readings process at `memory_mb`'s CPU share: the median duration of 20 batches of 100 readings.
pub(crate) async fn batch_duration_at(
    binary: &Path,
    env: &[(String, String)],
    readings: &Readings,
    memory_mb: u32,
) -> Duration {
    let share = CpuShare::of_memory(
        memory_mb,
        &format!("meters-readings-{memory_mb}-{}", std::process::id()),
    )
    .expect("a cgroup v1 CPU group (run as root on a machine with the cpu controller)");
    let mut running = Running::start(binary, env, Some(&share)).await;
    let mut durations = Vec::new();
    for _ in 0..22 {
        durations.push(running.invoke(readings.batch(10, 10)).await.1);
    }
    running.function.stop();
    percentile(&durations[2..], 0.5)
}
