//! The token and the tenant boundary: 401 without a valid token, 403 for another account, several accounts per token, and tokens checked against a JWKS URL.

use crate::helpers::*;

#[tokio::test]
async fn requests_without_a_valid_token_answer_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let claims = |exp: u64| json!({"exp": exp, "account_ids": [app.account.to_string()]});
    let now = jsonwebtoken::get_current_timestamp();
    let sign = |claims: &Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let unsigned = |claims: &Value| {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
            engine.encode(claims.to_string())
        )
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("not.a.jwt".into())),
        (
            "wrongly signed",
            Some(sign(
                &claims(now + 600),
                "some-other-secret-that-is-32-bytes-long",
            )),
        ),
        ("expired", Some(sign(&claims(now - 600), SECRET))),
        ("alg none", Some(unsigned(&claims(now + 600)))),
    ];
    let paths = [
        (
            reqwest::Method::GET,
            format!("/api/v1/meters?account_id={}", app.account),
        ),
        (reqwest::Method::POST, "/api/v1/meters".to_owned()),
        (
            reqwest::Method::GET,
            format!("/api/v1/meters/1?account_id={}", app.account),
        ),
        (reqwest::Method::PUT, "/api/v1/meters/1".to_owned()),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/meters/1?account_id={}", app.account),
        ),
    ];
    for (case, token) in &cases {
        for (method, path) in &paths {
            let body = matches!(*method, reqwest::Method::POST | reqwest::Method::PUT)
                .then(|| full_body(&app.account).to_string());
            let reply = app.send(method.clone(), path, token.as_deref(), body).await;
            assert_eq!(reply.status, 401, "{case} {method} {path}: {reply:?}");
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
            assert_eq!(reply.body["success"], false);
            if let Some(token) = token {
                assert!(
                    !reply.body.to_string().contains(token.as_str()),
                    "the token was echoed"
                );
            }
        }
    }
    assert_eq!(app.list("").await.body["count"], 0);
}

#[tokio::test]
async fn a_token_for_another_account_gets_403_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.create_named("mine").await;
    let stranger_account = AccountId::from(uuid::Uuid::new_v4());
    let stranger = app.token_for(&[stranger_account]);

    // A token without the requested account.
    let mut body = full_body(&app.account);
    assert_error_mentions(
        &app.send(
            reqwest::Method::POST,
            "/api/v1/meters",
            Some(&stranger),
            Some(body.to_string()),
        )
        .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );
    let path = format!("/api/v1/meters/{id}?account_id={}", app.account);
    assert_error_mentions(
        &app.send(reqwest::Method::GET, &path, Some(&stranger), None)
            .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );
    assert_error_mentions(
        &app.send(reqwest::Method::DELETE, &path, Some(&stranger), None)
            .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );
    let list = format!("/api/v1/meters?account_id={}", app.account);
    assert_error_mentions(
        &app.send(reqwest::Method::GET, &list, Some(&stranger), None)
            .await,
        403,
        &format!("the token does not grant access to account {}", app.account),
    );

    // The stranger's own account, asking for our meter.
    let theirs = format!("/api/v1/meters/{id}?account_id={stranger_account}");
    assert_error_mentions(
        &app.send(reqwest::Method::GET, &theirs, Some(&stranger), None)
            .await,
        403,
        &format!("meter {id} does not belong to this account"),
    );
    assert_error_mentions(
        &app.send(reqwest::Method::DELETE, &theirs, Some(&stranger), None)
            .await,
        403,
        &format!("meter {id} does not belong to this account"),
    );
    body = json!({"account_id": stranger_account.to_string(), "name": "hijacked"});
    let put = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/meters/{id}"),
            Some(&stranger),
            Some(body.to_string()),
        )
        .await;
    assert_error_mentions(
        &put,
        403,
        &format!("meter {id} does not belong to this account"),
    );
    let listed = format!("/api/v1/meters?account_id={stranger_account}");
    assert_eq!(
        app.send(reqwest::Method::GET, &listed, Some(&stranger), None)
            .await
            .body["count"],
        0
    );

    let mine = app.get(id).await;
    assert_eq!(
        (mine.status, mine.data()["name"].as_str()),
        (200, Some("mine"))
    );
}

#[tokio::test]
async fn a_token_for_several_accounts_may_act_for_each() {
    let app = spawn_app().await;
    let second = AccountId::from(uuid::Uuid::new_v4());
    let token = app.token_for(&[app.account, second]);
    let body =
        json!({"account_id": second.to_string().to_uppercase(), "name": "n", "serial_number": "s"});
    let reply = app
        .send(
            reqwest::Method::POST,
            "/api/v1/meters",
            Some(&token),
            Some(body.to_string()),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.data()["account_id"], second.to_string());
}

/// The real binary with `JWT_JWKS_URL`, as the functions take it: tokens signed by the identity provider's
/// published key are served, others are not.
#[tokio::test]
async fn meters_local_verifies_tokens_against_a_jwks_url() {
    let jwks = meters_testkit::jwks::JwksServer::start().await;
    let key = meters_testkit::jwks::SigningKey::rsa("local-key", jsonwebtoken::Algorithm::RS256);
    jwks.publish(&[&key], &[]);
    let data_dir = std::env::temp_dir().join(format!(
        "meters-local-jwks-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let server = LocalServer::start_with(
        env!("CARGO_BIN_EXE_meters-local"),
        &data_dir,
        &[
            ("JWT_JWKS_URL", jwks.url.as_str()),
            ("JWT_ISSUER", "https://id.example"),
        ],
    );
    let account = uuid::Uuid::new_v4().to_string();
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    let signed =
        key.sign(&json!({"iss": "https://id.example", "exp": exp, "account_ids": [account]}));
    let stranger =
        meters_testkit::jwks::SigningKey::rsa("local-key", jsonwebtoken::Algorithm::RS256);
    let forged =
        stranger.sign(&json!({"iss": "https://id.example", "exp": exp, "account_ids": [account]}));
    let client = reqwest::Client::new();
    let list = |token: String| {
        client
            .get(format!(
                "{}/api/v1/meters?account_id={account}",
                server.base
            ))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(list(signed).await.unwrap().status(), 200);
    assert_eq!(list(forged).await.unwrap().status(), 401);
    assert_eq!(jwks.fetches(), 1);
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
}
