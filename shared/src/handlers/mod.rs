//! One handler per endpoint, each in its own file; this module holds what they share: the application's
//! dependencies and the single place where a handler's error becomes a response.

mod create_meter;
mod delete_meter;
mod get_meter;
mod list_meters;
mod update_meter;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::request::request_id;
use crate::store::MeterStore;
use crate::telemetry;

/// What every handler needs, built once per process (at cold start in Lambda) and shared by requests.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Arc<dyn MeterStore>,
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
    pub fn new(store: impl MeterStore + 'static, auth: Authenticator) -> Self {
        Self {
            store: Arc::new(store),
            auth: Arc::new(auth),
            deadline: DEFAULT_DEADLINE,
        }
    }

    pub fn with_deadline(self, deadline: Duration) -> Self {
        Self { deadline, ..self }
    }

    /// This request's budget: the configured deadline, or less when the Lambda invocation ends sooner.
    fn budget(&self, request: &Request) -> Duration {
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

/// Which invocation this is: its request id (Lambda's, in Lambda), its trace, and API Gateway's request id.
fn invocation(request: &Request, request_id: &str) -> telemetry::Invocation {
    use lambda_http::request::RequestContext;
    let context = request.lambda_context_ref();
    let correlation_id = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        _ => None,
    };
    telemetry::Invocation::new(
        Some(request_id.to_owned()),
        context.and_then(|context| context.xray_trace_id.as_deref()),
        correlation_id,
    )
}

/// A Lambda context without a deadline (tests, the local server) reads as 1970.
fn context_deadline_is_set(left: Duration) -> bool {
    left > Duration::ZERO
}

/// What every answer of the API carries, whoever produced it (a handler, or the local server refusing a
/// request before any handler): the request id the logs carry, and headers that keep meters out of shared
/// caches and stop browsers guessing content types.
pub fn finish(mut response: Response<Body>, request_id: &str) -> Response<Body> {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The five endpoints of `/api/v1/meters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListMeters,
    CreateMeter,
    GetMeter,
    UpdateMeter,
    DeleteMeter,
}

impl Endpoint {
    /// Runs the endpoint's handler; any error becomes its envelope here, and every response carries the
    /// request id that the logs carry.
    pub async fn handle(self, app: &App, request: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let request_id = request_id(&request);
        let budget = app.budget(&request);
        let (result, facts) = telemetry::within_request(invocation(&request, &request_id), async {
            match crate::request::rejected_event(&request) {
                Some(rejected) => Err(rejected.into()),
                None => tokio::time::timeout(budget, self.serve(app, &request))
                    .await
                    .unwrap_or(Err(ApiError::DeadlineExceeded {
                        deadline_ms: budget.as_millis() as u64,
                    })),
            }
        })
        .await;
        let (response, error_code, error_detail) = match result {
            Ok(response) => (response, None, None),
            Err(error) => {
                let (code, detail) = (error.code(), error.detail());
                (error.into_response(&request_id), Some(code), detail)
            }
        };
        let response = finish(response, &request_id);
        telemetry::record(
            &telemetry::Served {
                route: self.route(),
                method: request.method().as_str(),
                status: response.status().as_u16(),
                latency_ms: started.elapsed().as_secs_f64() * 1e3,
                error_code,
                error_detail,
            },
            facts,
        );
        response
    }

    /// The route's path, as API Gateway names it.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::ListMeters | Endpoint::CreateMeter => "/api/v1/meters",
            Endpoint::GetMeter | Endpoint::UpdateMeter | Endpoint::DeleteMeter => {
                "/api/v1/meters/{id}"
            }
        }
    }

    async fn serve(self, app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
        match self {
            Endpoint::ListMeters => list_meters::list_meters(app, request).await,
            Endpoint::CreateMeter => create_meter::create_meter(app, request).await,
            Endpoint::GetMeter => get_meter::get_meter(app, request).await,
            Endpoint::UpdateMeter => update_meter::update_meter(app, request).await,
            Endpoint::DeleteMeter => delete_meter::delete_meter(app, request).await,
        }
    }
}
