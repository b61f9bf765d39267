//! A function binary started as Lambda starts it (a clean environment plus Lambda's variables), driven
//! through a `RuntimeApi`.

use std::ffi::OsStr;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::runtime_api::{Outcome, RuntimeApi};

/// The running process; killed when dropped.
#[derive(Debug)]
pub struct Function {
    child: Child,
    /// Its standard output line by line, when started with `Output::Lines`.
    lines: Option<mpsc::Receiver<String>>,
}

/// Where a function's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Kept, and returned by `stop`: for tests that read what a function logged.
    Captured,
    /// Thrown away (errors still reach this process's stderr): for benchmarks of many requests, which
    /// must neither read the logs nor block on a full pipe.
    Discarded,
    /// Read as it comes, line by line (`next_line`); errors reach this process's stderr.
    Lines,
}

impl Function {
    /// Starts the function with its output captured for `stop`.
    pub fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        binary: &Path,
        runtime: &RuntimeApi,
        env: &[(K, V)],
    ) -> Self {
        Self::start_with(binary, runtime, env, Output::Captured)
    }

    pub fn start_with<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        binary: &Path,
        runtime: &RuntimeApi,
        env: &[(K, V)],
        output: Output,
    ) -> Self {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(runtime.lambda_environment());
        match output {
            Output::Captured => command.stdout(Stdio::piped()).stderr(Stdio::piped()),
            Output::Discarded => command.stdout(Stdio::null()).stderr(Stdio::inherit()),
            Output::Lines => command.stdout(Stdio::piped()).stderr(Stdio::inherit()),
        };
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        let lines = (output == Output::Lines).then(|| {
            let stdout = child.stdout.take().expect("a piped stdout");
            let (sender, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            lines
        });
        Self { child, lines }
    }

    /// The next line the function writes, waiting at most `wait` (for `Output::Lines`).
    pub fn next_line(&self, wait: Duration) -> Option<String> {
        self.lines.as_ref()?.recv_timeout(wait).ok()
    }

    /// The next `request` log line (the per-request record, with the capacity it consumed), passing over
    /// the other lines, each awaited at most `wait`. A warning or error passed over is said on stderr: what
    /// went otherwise than planned (a snapshot not read, say) belongs with a benchmark's figures.
    pub fn next_request_log(&self, wait: Duration) -> Option<Value> {
        while let Some(line) = self.next_line(wait) {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if entry["message"] == "request" {
                return Some(entry);
            }
            if matches!(entry["level"].as_str(), Some("WARN" | "ERROR")) {
                eprintln!("the function logged {line}");
            }
        }
        None
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops the function (as Lambda does when it retires an environment) and returns everything it
    /// logged, stdout then stderr; and whether it had exited by itself with success.
    pub fn stop(mut self) -> (Option<bool>, String) {
        use std::io::Read;
        let exited = self
            .child
            .try_wait()
            .expect("the function can be waited on")
            .map(|status| status.success());
        if exited.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let mut logs = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout
                .read_to_string(&mut logs)
                .expect("stdout is readable");
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr
                .read_to_string(&mut logs)
                .expect("stderr is readable");
        }
        (exited, logs)
    }

    /// Waits for the function to exit by itself; whether it succeeded, and everything it logged.
    pub fn wait_for_exit(mut self) -> (bool, String) {
        let status = self.child.wait().expect("the function exits");
        let (_, logs) = self.stop();
        (status.success(), logs)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What API Gateway would return to the client for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayResponse {
    pub status: u16,
    pub headers: Value,
    /// The envelope, or `Null` for an empty body.
    pub body: Value,
}

impl GatewayResponse {
    /// Parses the function's answer to the Runtime API (an API Gateway proxy response).
    pub fn parse(answer: &str) -> Self {
        let response: Value = serde_json::from_str(answer).expect("an API Gateway response");
        let status = response["statusCode"].as_u64().expect("a status code") as u16;
        let body = match response["body"].as_str() {
            Some(text) if !text.is_empty() => serde_json::from_str(text).expect("a JSON envelope"),
            _ => Value::Null,
        };
        Self {
            status,
            headers: response["headers"].clone(),
            body,
        }
    }
}

/// Sends one event to a running function and waits for its response.
pub async fn invoke(runtime: &mut RuntimeApi, event: &Value) -> (String, GatewayResponse) {
    let request_id = runtime.invoke(event.to_string());
    match runtime.outcome(Duration::from_secs(30)).await {
        Some(Outcome::Response {
            request_id: answered,
            body,
        }) => {
            assert_eq!(answered, request_id, "the answer is for another invocation");
            (request_id, GatewayResponse::parse(&body))
        }
        other => panic!("the function did not answer with a response: {other:?}"),
    }
}

/// What `sam build` put in `METERS_ARTEFACTS` for the template's function `folder`, as a program to start:
/// a script that runs its bootstrap under `METERS_ARTEFACT_RUNNER` (for arm64 artefacts on another machine,
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu`), written into `wrappers`.
pub fn built_artefact(folder: &str, wrappers: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let artefacts = std::path::PathBuf::from(
        std::env::var("METERS_ARTEFACTS").expect("METERS_ARTEFACTS names the sam build folder"),
    );
    let runner = std::env::var("METERS_ARTEFACT_RUNNER").unwrap_or_default();
    let bootstrap = artefacts.join(folder).join("bootstrap");
    assert!(bootstrap.is_file(), "{} is missing", bootstrap.display());
    std::fs::create_dir_all(wrappers).expect("a folder for the wrappers");
    let wrapper = wrappers.join(folder);
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {runner} {} \"$@\"\n", bootstrap.display()),
    )
    .expect("the wrapper is written");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("the wrapper is made executable");
    wrapper
}
