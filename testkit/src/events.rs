//! Lambda events for `/api/v1/meters[/{id}]` in the three shapes the functions accept: API Gateway HTTP
//! API (payload 2.0), REST API (payload 1.0) and ALB. One request, described once, written in any shape.

use base64::Engine;
use serde_json::{Map, Value, json};

pub const COLLECTION_PATH: &str = "/api/v1/meters";
const API_HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";

/// A request as a client sends it, before a front door turns it into an event.
#[derive(Debug, Clone)]
pub struct HttpEvent {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    base64: bool,
    path_parameters: bool,
    request_id: String,
    authorizer_claims: Option<Vec<(String, String)>>,
}

impl HttpEvent {
    /// `method path`, with the headers API Gateway always sends (`host`, and `content-type` for JSON).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: Vec::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("host".into(), API_HOST.into()),
            ],
            body: None,
            base64: false,
            path_parameters: true,
            request_id: "test-request".into(),
            authorizer_claims: None,
        }
    }

    /// A query string such as `account_id=…&limit=5` (tests send no characters that need escaping).
    pub fn query(mut self, raw: &str) -> Self {
        self.query = raw
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (pair.to_owned(), String::new()),
            })
            .collect();
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(existing, _)| *existing != name);
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self
    }

    pub fn body(mut self, text: &str) -> Self {
        self.body = Some(text.to_owned());
        self.base64 = false;
        self
    }

    pub fn json_body(self, body: &Value) -> Self {
        self.body(&body.to_string())
    }

    /// The body base64-encoded, as API Gateway sends binary media types.
    pub fn base64_body(mut self, text: &str) -> Self {
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(text));
        self.base64 = true;
        self
    }

    /// A body marked base64 as it is, so that a test can send one that does not decode.
    pub fn marked_base64(mut self, text: &str) -> Self {
        self.body = Some(text.to_owned());
        self.base64 = true;
        self
    }

    /// Function URLs and `cargo lambda watch` give no path parameters; the id is then in the path only.
    pub fn without_path_parameters(mut self) -> Self {
        self.path_parameters = false;
        self
    }

    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = id.to_owned();
        self
    }

    /// The claims API Gateway's JWT authorizer passes on (payload 2.0), as strings: arrays arrive
    /// flattened, such as `[a b]`.
    pub fn authorizer_claims(mut self, claims: &[(&str, &str)]) -> Self {
        self.authorizer_claims = Some(
            claims
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        );
        self
    }

    fn meter_id(&self) -> Option<&str> {
        self.path
            .strip_prefix(COLLECTION_PATH)?
            .strip_prefix('/')
            .filter(|id| !id.is_empty())
    }

    fn route(&self) -> &'static str {
        match self.meter_id() {
            Some(_) => "/api/v1/meters/{id}",
            None => COLLECTION_PATH,
        }
    }

    fn path_parameters_json(&self) -> Value {
        match self.meter_id() {
            Some(id) if self.path_parameters => json!({ "id": id }),
            _ => Value::Null,
        }
    }

    fn query_map(&self) -> Value {
        if self.query.is_empty() {
            return Value::Null;
        }
        Value::Object(
            self.query
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .collect(),
        )
    }

    fn headers_map(&self, name_case: fn(&str) -> String) -> Map<String, Value> {
        self.headers
            .iter()
            .map(|(name, value)| (name_case(name), Value::from(value.as_str())))
            .collect()
    }

    /// API Gateway HTTP API, payload format 2.0.
    pub fn http_api(&self) -> Value {
        let route_key = format!("{} {}", self.method, self.route());
        let raw_query = self
            .query
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": raw_query,
            "headers": self.headers_map(str::to_owned),
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc123", "domainName": API_HOST,
                "domainPrefix": "abc123", "requestId": self.request_id, "routeKey": route_key, "stage": "$default",
                "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600000000u64,
                "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "meters-testkit"}
            },
            "isBase64Encoded": self.base64
        });
        insert_present(&mut event, "queryStringParameters", self.query_map());
        insert_present(&mut event, "pathParameters", self.path_parameters_json());
        if let Some(claims) = &self.authorizer_claims {
            let claims: Map<String, Value> = claims
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .collect();
            event["requestContext"]["authorizer"] =
                json!({"jwt": {"claims": claims, "scopes": null}});
        }
        insert_present(
            &mut event,
            "body",
            self.body.clone().map_or(Value::Null, Value::from),
        );
        event
    }

    /// API Gateway REST API, payload format 1.0 (header names as clients usually send them).
    pub fn rest_api(&self) -> Value {
        let headers = self.headers_map(title_case);
        let multi = |map: &Map<String, Value>| -> Value {
            Value::Object(
                map.iter()
                    .map(|(name, value)| (name.clone(), json!([value])))
                    .collect(),
            )
        };
        let query = self.query_map();
        let multi_query = query.as_object().map_or(Value::Null, multi);
        json!({
            "resource": self.route(),
            "path": self.path,
            "httpMethod": self.method,
            "multiValueHeaders": multi(&headers),
            "headers": headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": self.path_parameters_json(),
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc123", "resourceId": "r1", "stage": "prod",
                "requestId": self.request_id, "httpMethod": self.method, "resourcePath": self.route(),
                "identity": {"sourceIp": "203.0.113.7"}
            },
            "body": self.body,
            "isBase64Encoded": self.base64
        })
    }

    /// An Application Load Balancer target-group event.
    pub fn alb(&self) -> Value {
        let mut event = json!({
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/meters/abc"}},
            "httpMethod": self.method,
            "path": self.path,
            "headers": self.headers_map(str::to_owned),
            "body": self.body.clone().unwrap_or_default(),
            "isBase64Encoded": self.base64
        });
        insert_present(&mut event, "queryStringParameters", self.query_map());
        event
    }
}

fn insert_present(event: &mut Value, name: &str, value: Value) {
    if !value.is_null() {
        event[name] = value;
    }
}

fn title_case(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}
