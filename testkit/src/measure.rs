//! What the benchmarks read off a run: percentiles of latencies, and a process's CPU time and peak
//! memory from `/proc` (Linux; elsewhere they read as zero).

use std::time::Duration;

/// The `p` quantile (0 to 1) of `samples`, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds, as the reports print them.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The process's peak resident memory so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// The process's resident memory now (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// A figure in KiB from the process's `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The CPU time the process has used so far, user and system.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends at the last ')': utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|t| t.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|t| t.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A cgroup v1 CPU group with Lambda's CPU share for a memory size: `memory_mb / 1769` of one core (Lambda
/// gives a full vCPU at 1,769 MB), as a CFS quota per 100 ms period. Needs the controller writable (root).
#[derive(Debug)]
pub struct CpuShare {
    group: std::path::PathBuf,
}

/// Memory (MB) at which Lambda gives one full vCPU.
pub const FULL_CORE_MB: u32 = 1_769;

impl CpuShare {
    /// A new group named `name` (unique per run), or why none can be made here.
    pub fn of_memory(memory_mb: u32, name: &str) -> std::io::Result<Self> {
        let group = std::path::PathBuf::from("/sys/fs/cgroup/cpu").join(name);
        std::fs::create_dir_all(&group)?;
        std::fs::write(group.join("cpu.cfs_period_us"), "100000")?;
        let quota = 100_000u64 * u64::from(memory_mb) / u64::from(FULL_CORE_MB);
        std::fs::write(group.join("cpu.cfs_quota_us"), quota.to_string())?;
        Ok(Self { group })
    }

    /// Moves process `pid` (every thread of it, and all it starts later) into the group.
    pub fn join(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.group.join("cgroup.procs"), pid.to_string())
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // Only empty once its processes have ended; a group left behind is harmless and named by its run.
        let _ = std::fs::remove_dir(&self.group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentile_is_the_nearest_ranked_sample() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
    }

    #[test]
    fn this_process_has_used_memory_and_cpu() {
        let pid = std::process::id();
        let spin: u64 = (0..5_000_000u64).fold(0, |sum, n| sum.wrapping_add(n * n));
        assert!(spin > 0);
        assert!(peak_rss_kib(pid) > 0);
        assert!(rss_kib(pid) > 0 && rss_kib(pid) <= peak_rss_kib(pid));
        assert!(cpu_time(pid) > Duration::ZERO);
    }
}
