//! The endpoints (the API's one route table) and what every request goes through: the event guard's verdict, the deadline, the
//! handler, the one place its error becomes a response, the headers every answer carries, and the
//! request's log line.

use std::time::Instant;

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, RequestExt, Response};

use super::app::App;
use super::error::ApiError;
use super::handlers;
use super::request::{rejected_event, request_id};
use crate::telemetry;

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

/// What every answer of the API carries, whoever produced it (a handler, or the local server refusing a
/// request before any handler): the request id the logs carry, and headers that keep meters out of shared
/// caches and stop browsers guessing content types.
fn finish(mut response: Response<Body>, request_id: &str) -> Response<Body> {
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

/// The endpoints of `/api/v1/meters`: the route table the local server routes by, and which the template's
/// routes and `cargo lambda watch`'s router are checked against (`meters-local routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListMeters,
    CreateMeter,
    GetMeter,
    UpdateMeter,
    DeleteMeter,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::ListMeters,
        Endpoint::CreateMeter,
        Endpoint::GetMeter,
        Endpoint::UpdateMeter,
        Endpoint::DeleteMeter,
    ];

    /// The route's method (a `HEAD` is answered as the `GET` of its path).
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::ListMeters | Endpoint::GetMeter => "GET",
            Endpoint::CreateMeter => "POST",
            Endpoint::UpdateMeter => "PUT",
            Endpoint::DeleteMeter => "DELETE",
        }
    }

    /// The function binary that serves it in Lambda.
    pub fn function(self) -> &'static str {
        match self {
            Endpoint::ListMeters => "list-meters",
            Endpoint::CreateMeter => "create-meter",
            Endpoint::GetMeter => "get-meter",
            Endpoint::UpdateMeter => "update-meter",
            Endpoint::DeleteMeter => "delete-meter",
        }
    }

    /// Runs the endpoint's handler within the request's deadline, and answers (`respond`).
    pub async fn handle(self, app: &App, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(&request);
        let budget = app.budget(&request);
        telemetry::within_request(invocation(&request, &request_id), async {
            let result = match rejected_event(&request) {
                Some(rejected) => Err(rejected.into()),
                None => tokio::time::timeout(budget, self.serve(app, &request))
                    .await
                    .unwrap_or(Err(ApiError::DeadlineExceeded {
                        deadline_ms: budget.as_millis() as u64,
                    })),
            };
            let method = request.method().as_str();
            respond(result, &request_id, self.route(), method, started)
        })
        .await
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
            Endpoint::ListMeters => handlers::list_meters(app, request).await,
            Endpoint::CreateMeter => handlers::create_meter(app, request).await,
            Endpoint::GetMeter => handlers::get_meter(app, request).await,
            Endpoint::UpdateMeter => handlers::update_meter(app, request).await,
            Endpoint::DeleteMeter => handlers::delete_meter(app, request).await,
        }
    }
}

/// How a request is answered, whoever handled it: an error becomes its envelope (here, and nowhere else),
/// every answer carries what all answers carry (`finish`), and the request's one log line is written.
/// Call it while the request is being served (`telemetry::within_request`).
fn respond(
    result: Result<Response<Body>, ApiError>,
    request_id: &str,
    route: &str,
    method: &str,
    started: Instant,
) -> Response<Body> {
    let (response, error_code, error_detail) = match result {
        Ok(response) => (response, None, None),
        Err(error) => {
            let (code, detail) = (error.code(), error.detail());
            (error.into_response(request_id), Some(code), detail)
        }
    };
    let response = finish(response, request_id);
    telemetry::record(&telemetry::Served {
        route,
        method,
        status: response.status().as_u16(),
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
        error_code,
        error_detail,
    });
    response
}

/// A request refused before it reached any endpoint (the local server's 404, 405, 408, 413, 414, 431 and
/// 400 for a malformed head), answered and logged like every other.
pub async fn refuse(
    error: ApiError,
    request_id: &str,
    path: &str,
    method: &str,
    started: Instant,
) -> Response<Body> {
    let invocation = telemetry::Invocation::new(Some(request_id.to_owned()), None, None);
    telemetry::within_request(invocation, async {
        respond(Err(error), request_id, path, method, started)
    })
    .await
}
