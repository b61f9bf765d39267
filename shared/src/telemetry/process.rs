//! What every log line and metrics document of this process carries.

use crate::config::Env;

/// What every log line and metrics document of this process carries, read from the environment once
/// rather than on every line.
pub(super) struct Process {
    /// `POWERTOOLS_SERVICE_NAME`, as Powertools reads it; `meters-api` by default.
    pub service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`: set in Lambda only.
    pub function_name: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_VERSION`: the version this process runs (`$LATEST`, or a published number).
    pub function_version: Option<String>,
    /// Where EMF goes: `METRICS_NAMESPACE` (`MetersApi` by default) in Lambda, where CloudWatch extracts it
    /// from standard output; elsewhere only when the variable is set.
    pub metrics_namespace: Option<String>,
}

pub(super) fn process() -> &'static Process {
    static PROCESS: std::sync::OnceLock<Process> = std::sync::OnceLock::new();
    PROCESS.get_or_init(|| {
        let env = Env::process();
        let function_name = env.get("AWS_LAMBDA_FUNCTION_NAME");
        let metrics_namespace = env
            .get("METRICS_NAMESPACE")
            .or_else(|| function_name.as_ref().map(|_| "MetersApi".to_owned()));
        Process {
            service: env
                .get("POWERTOOLS_SERVICE_NAME")
                .unwrap_or_else(|| "meters-api".to_owned()),
            function_version: env.get("AWS_LAMBDA_FUNCTION_VERSION"),
            function_name,
            metrics_namespace,
        }
    })
}
