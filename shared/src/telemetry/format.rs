//! Log lines as JSON in Powertools' keys.

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::facts::with_invocation;
use super::process::process;

/// Log lines as Powertools for AWS Lambda writes them: `timestamp`, `level`, `message`, `service`,
/// `cold_start`, `function_name`, `function_request_id`, `xray_trace_id` (the last three and
/// `correlation_id` while a request is being served), then the event's own fields. No spans.
pub(super) struct PowertoolsJson;

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("message".into(), Value::Null);
        let process = process();
        line.insert("service".into(), process.service.clone().into());
        if let Some(name) = &process.function_name {
            line.insert("function_name".into(), name.clone().into());
        }
        with_invocation(|invocation| {
            line.insert("cold_start".into(), invocation.cold_start.into());
            for (key, value) in [
                ("function_request_id", &invocation.function_request_id),
                ("xray_trace_id", &invocation.xray_trace_id),
                ("correlation_id", &invocation.correlation_id),
            ] {
                if let Some(value) = value {
                    line.insert(key.into(), value.clone().into());
                }
            }
        });
        event.record(&mut JsonFields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| std::fmt::Error)?;
        writer.write_str(&text)?;
        writer.write_char('\n')
    }
}

/// An event's fields as JSON values; `None` fields (`Option` recorded as absent) are left out.
struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
