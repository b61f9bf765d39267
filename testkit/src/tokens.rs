//! HS256 development tokens, signed the way `meters-local token` signs them.

use std::time::Duration;

use meters::auth::AuthConfig;
use meters::auth::TokenIssuer;
use meters::domain::meter::AccountId;

/// The account most tests act for, and one they must never reach.
pub const ACCOUNT: &str = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22";
pub const OTHER_ACCOUNT: &str = "0b7e9d4c-1a2b-4c3d-8e9f-001122334455";

/// A development secret for tests only; deployed stacks get theirs from their identity provider.
pub const TEST_SECRET: &str = "meters-test-secret-of-at-least-32-bytes";

pub fn account(raw: &str) -> AccountId {
    AccountId::parse(raw).expect("a test account is a UUID")
}

/// HS256 with `secret` and nothing else configured, as `JWT_SECRET` alone gives.
pub fn hs256_config(secret: &str) -> AuthConfig {
    AuthConfig::read(&meters::config::Env::of([("JWT_SECRET", secret)]))
        .expect("a test secret is long enough")
}

/// A token signed with `secret` that grants `accounts` for five minutes.
pub fn token_for(secret: &str, accounts: &[AccountId]) -> String {
    TokenIssuer::new(&hs256_config(secret))
        .expect("an HS256 configuration issues tokens")
        .issue(accounts, Duration::from_secs(300))
        .expect("a token is signed")
}

/// An HS256 token signed with `secret` carrying exactly `claims` (give it an `exp`): for callers with a
/// `sub` and `client_id` of their own, as machine clients' tokens have.
pub fn token_with_claims(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token is signed")
}
