//! A function process under the benchmark, through its own Runtime API stub.

use std::path::Path;
use std::time::{Duration, Instant};

use meters_testkit::function::{Function, Output};
use meters_testkit::measure::CpuShare;
use meters_testkit::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;

use super::TIMEOUT;

/// A function process and its Runtime API stub.
pub(crate) struct Running {
    pub(crate) runtime: RuntimeApi,
    pub(crate) function: Function,
}

impl Running {
    pub(crate) async fn start(
        binary: &Path,
        env: &[(String, String)],
        share: Option<&CpuShare>,
    ) -> Self {
        let mut runtime = RuntimeApi::start().await;
        let function = Function::start_with(binary, &runtime, env, Output::Lines);
        if let Some(share) = share {
            share
                .join(function.id())
                .expect("the process joins the CPU group");
        }
        runtime
            .next_poll(TIMEOUT)
            .await
            .expect("the function polls");
        Self { runtime, function }
    }

    /// Invokes it with `event`; its answer and how long it took.
    pub(crate) async fn invoke(&mut self, event: String) -> (String, Duration) {
        let started = Instant::now();
        self.runtime.invoke(event);
        match self.runtime.outcome(TIMEOUT).await {
            Some(Outcome::Response { body, .. }) => (body, started.elapsed()),
            other => panic!("the function failed: {other:?}"),
        }
    }

    /// The write units its log lines report (`write_units` of readings batches, `consumed_wcu` of requests).
    pub(crate) fn write_units(&self) -> f64 {
        let mut units = 0.0;
        while let Some(line) = self.function.next_line(Duration::from_millis(200)) {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            units += entry["write_units"]
                .as_f64()
                .or(entry["consumed_wcu"].as_f64())
                .unwrap_or(0.0);
        }
        units
    }
}
