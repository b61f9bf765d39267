//! Authentication and the tenant boundary: which accounts a request may act for. In function mode the
//! function verifies the Bearer JWT itself (HS256 secret, one PEM key, or a JWKS); in gateway mode API
//! Gateway's JWT authorizer has verified it and the function reads the claims it passes on.

mod authenticator;
mod claims;
mod error;
mod grant;
mod jwks;
mod settings;
mod tokens;

pub use authenticator::Authenticator;
pub use claims::{ClaimRules, LATEST_TIME, LEEWAY_SECONDS, accounts_in, accounts_in_text};
pub use error::AuthError;
pub use grant::{AccountNotGranted, Actor, Grant};
pub use jwks::{FETCH_TIMEOUT, JwksKeys, REFRESH_INTERVAL};
pub use settings::{AuthConfig, KeySource, MIN_SECRET_BYTES};
pub use tokens::TokenIssuer;
