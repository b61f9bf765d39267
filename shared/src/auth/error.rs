//! Why a request's credentials are refused.

/// Why a request carries no acceptable token: each a 401 naming the rule, except `KeysUnavailable` (503).
/// None repeats the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    WrongAlgorithm,
    #[error("the token's header names critical extensions (`crit`) this API does not understand")]
    CriticalExtension,
    #[error("the token has no `kid` naming its signing key")]
    NoKeyId,
    #[error("the token's signing key (`kid`) is not in the issuer's key set")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token has no `exp` claim")]
    NoExpiry,
    #[error("the token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error("the token was issued in the future (`iat`)")]
    IssuedInTheFuture,
    #[error("the token's `{0}` claim must be a number of seconds")]
    BadTimeClaim(&'static str),
    #[error("the token has no `iss` claim")]
    NoIssuer,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token has no `aud` claim")]
    NoAudience,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    #[error(
        "no claims from the API Gateway JWT authorizer: in gateway mode only verified requests are served"
    )]
    NoGatewayClaims,
    /// The identity provider's key set could not be fetched and no cached key fits: the caller may retry.
    #[error("the token's signing keys cannot be fetched right now")]
    KeysUnavailable { retry_after_seconds: u64 },
}
