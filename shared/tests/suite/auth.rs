//! Authentication end to end through the handlers: keys from a JWKS served over real HTTP (rotation, rate
//! limit, an endpoint that is down or hangs), the claim rules, the token shapes of the identity providers
//! teams use, and gateway mode.

use std::time::{Duration, Instant};

use lambda_http::http::HeaderMap;
use meters::auth::AuthConfig;
use meters::auth::Authenticator;
use meters::config::Env;
use meters::store::EmbeddedStore;
use meters::{App, Endpoint};
use meters_testkit::jwks::{JwksServer, SigningKey};
use meters_testkit::{ACCOUNT, HttpEvent, OTHER_ACCOUNT};
use serde_json::{Value, json};

fn app_with(variables: &[(&str, &str)], refresh: Duration) -> App {
    let config =
        AuthConfig::read(&Env::of(variables.iter().copied())).expect("a valid configuration");
    App::new(
        EmbeddedStore::in_memory().unwrap(),
        Authenticator::with_refresh_interval(&config, refresh).unwrap(),
    )
}

fn jwks_app(server: &JwksServer, refresh: Duration) -> App {
    app_with(
        &[("JWT_JWKS_URL", &server.url), ("JWT_ALGORITHM", "ES256")],
        refresh,
    )
}

async fn list(app: &App, event: HttpEvent) -> (u16, HeaderMap, Value) {
    let request = meters::runtime::request_from_event(&event.http_api().to_string()).unwrap();
    let response = Endpoint::ListMeters.handle(app, request).await;
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (response.status().as_u16(), response.headers().clone(), body)
}

/// The list of `account`'s meters, with `token`.
fn listing(account: &str, token: &str) -> HttpEvent {
    HttpEvent::new("GET", "/api/v1/meters")
        .query(&format!("account_id={account}"))
        .bearer(token)
}

async fn status(app: &App, token: &str) -> (u16, String) {
    let (status, _, body) = list(app, listing(ACCOUNT, token)).await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn in_ten_minutes() -> u64 {
    jsonwebtoken::get_current_timestamp() + 600
}

fn claims() -> Value {
    json!({"exp": in_ten_minutes(), "account_ids": [ACCOUNT]})
}

#[tokio::test]
async fn keys_rotate_through_the_jwks_without_a_restart() {
    let server = JwksServer::start().await;
    let (a, b) = (SigningKey::es256("key-a"), SigningKey::es256("key-b"));
    server.publish(&[&a], &[]);
    let refresh = Duration::from_millis(200);
    let app = jwks_app(&server, refresh);
    assert_eq!(
        server.fetches(),
        0,
        "nothing is fetched before the first token"
    );

    assert_eq!(status(&app, &a.sign(&claims())).await.0, 200);
    assert_eq!(status(&app, &a.sign(&claims())).await.0, 200);
    assert_eq!(server.fetches(), 1, "the key set is cached");

    // The provider adds key B and starts signing with it: the first token naming B refreshes the set.
    server.publish(&[&a, &b], &[]);
    tokio::time::sleep(refresh).await;
    assert_eq!(status(&app, &b.sign(&claims())).await.0, 200);
    assert_eq!(status(&app, &a.sign(&claims())).await.0, 200);
    assert_eq!(server.fetches(), 2);

    // Key A is withdrawn: it works from the cache until the next refresh, and never after it.
    server.publish(&[&b], &[]);
    tokio::time::sleep(refresh).await;
    assert_eq!(status(&app, &a.sign(&claims())).await.0, 200);
    let unknown = SigningKey::es256("key-c");
    assert_eq!(
        status(&app, &unknown.sign(&claims())).await,
        (
            401,
            "the token's signing key (`kid`) is not in the issuer's key set".into()
        )
    );
    assert_eq!(server.fetches(), 3);
    assert_eq!(status(&app, &a.sign(&claims())).await.0, 401);
    assert_eq!(status(&app, &b.sign(&claims())).await.0, 200);
}

#[tokio::test]
async fn unknown_keys_refresh_the_set_at_most_once_per_interval() {
    let server = JwksServer::start().await;
    let a = SigningKey::es256("key-a");
    server.publish(&[&a], &[]);
    let app = jwks_app(&server, meters::auth::REFRESH_INTERVAL);
    for n in 0..5 {
        let stranger = SigningKey::es256(&format!("unknown-{n}"));
        assert_eq!(status(&app, &stranger.sign(&claims())).await.0, 401);
    }
    assert_eq!(server.fetches(), 1, "five unknown kids, one fetch");
    assert_eq!(status(&app, &a.sign(&claims())).await.0, 200);
}

#[tokio::test]
async fn a_jwks_endpoint_that_is_down_gives_503_with_retry_after_not_401() {
    let server = JwksServer::start().await;
    let a = SigningKey::es256("key-a");
    server.publish(&[&a], &[]);
    server.set_down(true);
    let app = jwks_app(&server, Duration::from_secs(30));
    let (status, headers, body) = list(&app, listing(ACCOUNT, &a.sign(&claims()))).await;
    assert_eq!(status, 503, "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(
        body["error"],
        "the token's signing keys cannot be fetched right now"
    );

    // Back up: the next refresh (once the interval allows it) serves the key.
    server.set_down(false);
    let app = jwks_app(&server, Duration::from_millis(1));
    assert_eq!(self::status(&app, &a.sign(&claims())).await.0, 200);
}

#[tokio::test]
async fn a_jwks_endpoint_that_never_answers_is_given_up_within_the_fetch_timeout() {
    // A listener nobody accepts from: the connection opens, no answer ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", silent.local_addr().unwrap());
    let app = app_with(
        &[("JWT_JWKS_URL", &url), ("JWT_ALGORITHM", "ES256")],
        Duration::from_secs(30),
    );
    let started = Instant::now();
    let (status, _, _) = list(
        &app,
        listing(ACCOUNT, &SigningKey::es256("k").sign(&claims())),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(status, 503);
    assert!(
        waited >= meters::auth::FETCH_TIMEOUT
            && waited < meters::auth::FETCH_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test]
async fn keys_not_for_signing_and_tokens_of_another_algorithm_are_refused() {
    let server = JwksServer::start().await;
    let (signing, encrypting) = (SigningKey::es256("sig"), SigningKey::es256("enc"));
    let mut encryption_jwk = encrypting.jwk();
    encryption_jwk["use"] = json!("enc");
    server.publish(&[&signing], &[encryption_jwk]);
    let app = jwks_app(&server, Duration::from_secs(30));
    assert_eq!(status(&app, &signing.sign(&claims())).await.0, 200);
    assert_eq!(status(&app, &encrypting.sign(&claims())).await.0, 401);

    let rsa = SigningKey::rsa("rsa", jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        status(&app, &rsa.sign(&claims())).await,
        (401, "the token's algorithm is not accepted".into())
    );
}

#[tokio::test]
async fn rs256_and_ps256_tokens_verify_against_their_jwks() {
    for algorithm in [
        jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::Algorithm::PS256,
    ] {
        let server = JwksServer::start().await;
        let key = SigningKey::rsa("rsa-1", algorithm);
        server.publish(&[&key], &[]);
        let name = format!("{algorithm:?}");
        let app = app_with(
            &[("JWT_JWKS_URL", &server.url), ("JWT_ALGORITHM", &name)],
            Duration::from_secs(30),
        );
        assert_eq!(status(&app, &key.sign(&claims())).await.0, 200, "{name}");
    }
}

/// Each refusal of the claim rules, through the handler, naming its rule.
#[tokio::test]
async fn tokens_breaking_a_claim_rule_are_refused_naming_the_rule() {
    let server = JwksServer::start().await;
    let key = SigningKey::es256("key");
    server.publish(&[&key], &[]);
    let app = app_with(
        &[
            ("JWT_JWKS_URL", &server.url),
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_ISSUER", "https://id.example"),
            ("JWT_AUDIENCE", "meters"),
        ],
        Duration::from_secs(30),
    );
    let now = jsonwebtoken::get_current_timestamp();
    let good = json!({"exp": now + 600, "iss": "https://id.example", "aud": "meters", "account_ids": [ACCOUNT]});
    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    let without = |field: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(field);
        claims
    };
    assert_eq!(status(&app, &key.sign(&good)).await.0, 200);
    let cases = [
        (without("iss"), "the token has no `iss` claim"),
        (with("iss", Value::Null), "the token has no `iss` claim"),
        (with("iss", json!(5)), "the token's issuer is not accepted"),
        (
            with("iss", json!("https://evil.example")),
            "the token's issuer is not accepted",
        ),
        (without("aud"), "the token has no `aud` claim"),
        (with("aud", Value::Null), "the token has no `aud` claim"),
        (
            with("aud", json!("billing")),
            "the token's audience is not accepted",
        ),
        (
            with("nbf", json!(now + 10 * 365 * 86_400)),
            "the token is not valid yet (`nbf` is in the future)",
        ),
        (
            with("iat", json!(now + 3600)),
            "the token was issued in the future (`iat`)",
        ),
        (with("exp", json!(now - 120)), "the token has expired"),
        (without("exp"), "the token has no `exp` claim"),
    ];
    for (claims, rule) in cases {
        assert_eq!(
            status(&app, &key.sign(&claims)).await,
            (401, rule.to_owned()),
            "{claims}"
        );
    }
}

/// The token shapes of the identity providers teams use, each granting exactly its account.
#[tokio::test]
async fn tokens_shaped_as_cognito_auth0_okta_and_entra_id_issue_them_are_accepted() {
    let now = jsonwebtoken::get_current_timestamp();
    let providers = [
        (
            "Cognito ID token: custom attribute string",
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf",
            "4f1c2a9b7d3e",
            "custom:account_ids",
            json!({"aud": "4f1c2a9b7d3e", "token_use": "id", "custom:account_ids": format!("{ACCOUNT},{}", uuid::Uuid::new_v4())}),
        ),
        (
            "Cognito access token: client_id, array from a pre-token-generation trigger",
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf",
            "4f1c2a9b7d3e",
            "account_ids",
            json!({"token_use": "access", "client_id": "4f1c2a9b7d3e", "scope": "meters/read", "account_ids": [ACCOUNT]}),
        ),
        (
            "Auth0: audience array, namespaced claim",
            "https://meters.eu.auth0.com/",
            "https://meters.example/api",
            "https://meters.example/account_ids",
            json!({"aud": ["https://meters.example/api", "https://meters.eu.auth0.com/userinfo"], "https://meters.example/account_ids": [ACCOUNT]}),
        ),
        (
            "Okta: space-separated string",
            "https://meters.okta.com/oauth2/default",
            "api://meters",
            "account_ids",
            json!({"aud": "api://meters", "cid": "0oa1b2c3", "account_ids": format!("{} {ACCOUNT}", uuid::Uuid::new_v4())}),
        ),
        (
            "Entra ID: GUID audience, JSON array in a string",
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "6e74172b-be56-4843-9ff4-e66a39bb12e3",
            "extension_account_ids",
            json!({"aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "extension_account_ids": format!("[\"{}\"]", ACCOUNT.to_uppercase())}),
        ),
    ];
    for (provider, issuer, audience, claim, specific) in providers {
        let server = JwksServer::start().await;
        let key = SigningKey::rsa("provider-key", jsonwebtoken::Algorithm::RS256);
        server.publish(&[&key], &[]);
        let app = app_with(
            &[
                ("JWT_JWKS_URL", &server.url),
                ("JWT_ISSUER", issuer),
                ("JWT_AUDIENCE", audience),
                ("JWT_ACCOUNTS_CLAIM", claim),
            ],
            Duration::from_secs(30),
        );
        let mut claims = json!({"iss": issuer, "sub": "user-1", "iat": now, "exp": now + 3600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(specific.as_object().unwrap().clone());
        let token = key.sign(&claims);
        assert_eq!(
            list(&app, listing(ACCOUNT, &token)).await.0,
            200,
            "{provider}"
        );
        assert_eq!(
            list(&app, listing(OTHER_ACCOUNT, &token)).await.0,
            403,
            "{provider}"
        );
    }
}

#[tokio::test]
async fn gateway_mode_reads_the_authorizers_claims_and_fails_closed_without_them() {
    let app = app_with(&[("AUTH_MODE", "gateway")], Duration::from_secs(30));
    let request = |account: &str| {
        HttpEvent::new("GET", "/api/v1/meters").query(&format!("account_id={account}"))
    };
    let flattened = format!("[{ACCOUNT} {}]", uuid::Uuid::new_v4());
    let verified = |account: &str| {
        request(account).authorizer_claims(&[("sub", "user-1"), ("account_ids", &flattened)])
    };
    assert_eq!(list(&app, verified(ACCOUNT)).await.0, 200);
    assert_eq!(list(&app, verified(OTHER_ACCOUNT)).await.0, 403);
    let (status, headers, body) = list(&app, request(ACCOUNT).bearer("anything")).await;
    assert_eq!(
        (status, &headers["www-authenticate"]),
        (401, &"Bearer".parse().unwrap())
    );
    assert_eq!(
        body["error"],
        "no claims from the API Gateway JWT authorizer: in gateway mode only verified requests are served"
    );
    // A REST API or ALB event carries no JWT authorizer claims: refused alike.
    let rest =
        meters::runtime::request_from_event(&verified(ACCOUNT).rest_api().to_string()).unwrap();
    assert_eq!(Endpoint::ListMeters.handle(&app, rest).await.status(), 401);
    let malformed = request(ACCOUNT).authorizer_claims(&[("account_ids", "[acme]")]);
    assert_eq!(list(&app, malformed).await.0, 403);
}

/// A token with a random `kid` causes a refresh; a key the provider publishes just after it still works
/// within seconds (docs/identity-providers.md says 5 s; 7 s allows for a slow machine), not after a long back-off.
#[tokio::test]
async fn a_key_published_after_an_unknown_kid_refresh_works_within_the_interval() {
    let server = JwksServer::start().await;
    let a = SigningKey::es256("key-a");
    server.publish(&[&a], &[]);
    let app = jwks_app(&server, meters::auth::REFRESH_INTERVAL);
    let stranger = SigningKey::es256("random-kid");
    assert_eq!(status(&app, &stranger.sign(&claims())).await.0, 401);
    let published_at = std::time::Instant::now();
    let b = SigningKey::es256("key-b");
    server.publish(&[&a, &b], &[]);
    let token = b.sign(&claims());
    while status(&app, &token).await.0 != 200 {
        assert!(
            published_at.elapsed() < Duration::from_secs(7),
            "the new key still refused {:?} after it was published",
            published_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// While a refresh waits on a slow identity provider, a request whose key is cached is served: it does
/// not wait for the fetch (the provider answers only once that request is done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_refresh_does_not_stall_requests_with_cached_keys() {
    let server = JwksServer::start().await;
    let a = SigningKey::es256("key-a");
    server.publish(&[&a], &[]);
    let app = jwks_app(&server, Duration::from_millis(1));
    assert_eq!(status(&app, &a.sign(&claims())).await.0, 200);
    server.set_held(true);
    let refreshing = {
        let (app, stranger) = (app.clone(), SigningKey::es256("unknown"));
        tokio::spawn(async move { status(&app, &stranger.sign(&claims())).await.0 })
    };
    while server.fetches() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cached = tokio::time::timeout(Duration::from_secs(5), status(&app, &a.sign(&claims())))
        .await
        .expect("a request with a cached key is served while the refresh waits");
    assert_eq!(cached.0, 200);
    server.set_held(false);
    assert_eq!(refreshing.await.unwrap(), 401);
}

/// Every write records who made it: the verified token's `sub` and `client_id`, or in gateway mode the
/// authorizer's claims of those names.
#[tokio::test]
async fn writes_record_the_tokens_subject_and_client_or_the_authorizers_in_gateway_mode() {
    use meters::domain::Actor;
    use meters::domain::meter::MeterId;
    use meters::store::MeterStore;
    async fn create(app: &App, event: HttpEvent) -> MeterId {
        let event = event
            .json_body(&json!({"account_id": ACCOUNT, "name": "audited", "serial_number": "A-1"}));
        let request = meters::runtime::request_from_event(&event.http_api().to_string()).unwrap();
        let response = Endpoint::CreateMeter.handle(app, request).await;
        assert_eq!(response.status(), 201);
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        MeterId::new(body["data"]["id"].as_i64().unwrap()).unwrap()
    }
    let account = meters_testkit::tokens::account(ACCOUNT);
    let expected = Actor {
        sub: Some("svc-billing".into()),
        client_id: Some("billing-client".into()),
    };

    let store = EmbeddedStore::in_memory().unwrap();
    let config = meters_testkit::tokens::hs256_config(meters_testkit::TEST_SECRET);
    let app = App::new(store.clone(), Authenticator::new(&config).unwrap());
    let token = meters_testkit::tokens::token_with_claims(
        meters_testkit::TEST_SECRET,
        &json!({"exp": in_ten_minutes(), "account_ids": [ACCOUNT], "sub": "svc-billing",
                "client_id": "billing-client"}),
    );
    let id = create(
        &app,
        HttpEvent::new("POST", "/api/v1/meters").bearer(&token),
    )
    .await;
    let written = store.written_by(&account, id).await.unwrap();
    assert_eq!(written.created_by.as_ref(), Some(&expected));
    assert_eq!(written.updated_by.as_ref(), Some(&expected));

    let store = EmbeddedStore::in_memory().unwrap();
    let app = App::new(
        store.clone(),
        Authenticator::new(&AuthConfig::read(&Env::of([("AUTH_MODE", "gateway")])).unwrap())
            .unwrap(),
    );
    let verified = HttpEvent::new("POST", "/api/v1/meters").authorizer_claims(&[
        ("sub", "svc-billing"),
        ("client_id", "billing-client"),
        ("account_ids", ACCOUNT),
    ]);
    let id = create(&app, verified).await;
    let written = store.written_by(&account, id).await.unwrap();
    assert_eq!(written.created_by, Some(expected));
}
