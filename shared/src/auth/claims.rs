//! The claim rules every verified token must meet, and the accounts claim in every shape identity providers
//! send it.

use serde_json::{Map, Value};

use super::error::AuthError;
use crate::domain::meter::AccountId;

/// Clock skew tolerated for `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: u64 = 60;

/// The last second a time claim may name: the end of year 9999, the latest instant RFC 3339 (and this
/// API's timestamps) can write. An `exp` past it is a token that never expires, not a lifetime.
pub const LATEST_TIME: u64 = 253_402_300_799;

/// What the configuration asks of `iss` and `aud`.
#[derive(Debug, Clone, Default)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
}

impl ClaimRules {
    /// `iss`, `aud`, `nbf` and `iat`, and that `exp` names a time (jsonwebtoken has checked the signature and
    /// that `exp` has not passed).
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(), AuthError> {
        let expiry = claims.get("exp").and_then(Value::as_u64);
        if expiry.is_some_and(|exp| exp > LATEST_TIME) {
            return Err(AuthError::BadTimeClaim("exp"));
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                None | Some(Value::Null) => return Err(AuthError::NoIssuer),
                Some(Value::String(iss)) if iss == issuer => {}
                Some(_) => return Err(AuthError::WrongIssuer),
            }
        }
        if !self.audiences.is_empty() {
            self.check_audience(claims)?;
        }
        for (claim, error) in [
            ("nbf", AuthError::NotYetValid),
            ("iat", AuthError::IssuedInTheFuture),
        ] {
            match claims.get(claim) {
                None => {}
                Some(Value::Number(at))
                    if at
                        .as_f64()
                        .is_some_and(|at| at <= (now + LEEWAY_SECONDS) as f64) => {}
                Some(Value::Number(_)) => return Err(error),
                Some(_) => return Err(AuthError::BadTimeClaim(claim)),
            }
        }
        Ok(())
    }

    /// `aud` (a string or an array of strings) must name one of the configured audiences. A Cognito access
    /// token has no `aud`: it passes when its `token_use` is `access` and its `client_id` is one of them.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), AuthError> {
        let accepted = |candidate: &Value| {
            candidate
                .as_str()
                .is_some_and(|aud| self.audiences.iter().any(|wanted| wanted == aud))
        };
        match claims.get("aud") {
            Some(Value::String(_)) if accepted(&claims["aud"]) => Ok(()),
            Some(Value::Array(list)) if list.iter().any(accepted) => Ok(()),
            Some(Value::Null) | None => {
                let cognito_access =
                    claims.get("token_use").and_then(Value::as_str) == Some("access");
                match claims.get("client_id") {
                    Some(client) if cognito_access && accepted(client) => Ok(()),
                    _ => Err(AuthError::NoAudience),
                }
            }
            Some(_) => Err(AuthError::WrongAudience),
        }
    }
}

/// The accounts a claim grants: a JSON array of UUID strings, or one string holding a JSON array, the
/// `[a b]` form API Gateway flattens arrays to, or ids separated by commas and/or spaces (identity providers'
/// custom attributes are strings). Anything else, in whole or in part, grants nothing.
pub fn accounts_in(claim: Option<&Value>) -> Vec<AccountId> {
    let parsed = match claim {
        Some(Value::Array(items)) => accounts_in_array(items),
        Some(Value::String(text)) => accounts_in_text(text),
        _ => None,
    };
    parsed.unwrap_or_default()
}

/// The string shapes of the accounts claim; `None` if any part is not an account id.
pub fn accounts_in_text(text: &str) -> Option<Vec<AccountId>> {
    let text = text.trim();
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) {
        return accounts_in_array(&items);
    }
    match text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        Some(flattened) => split_ids(flattened),
        None => split_ids(text),
    }
}

fn accounts_in_array(items: &[Value]) -> Option<Vec<AccountId>> {
    items
        .iter()
        .map(|item| item.as_str().and_then(|raw| AccountId::parse(raw).ok()))
        .collect()
}

fn split_ids(list: &str) -> Option<Vec<AccountId>> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(|part| AccountId::parse(part).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_expiry_past_the_year_9999_is_refused() {
        let rules = ClaimRules::default();
        let claims = |exp: Value| json!({ "exp": exp }).as_object().unwrap().clone();
        assert_eq!(
            rules.check(&claims(json!(u64::MAX)), 1_800_000_000),
            Err(AuthError::BadTimeClaim("exp"))
        );
        assert_eq!(
            rules.check(&claims(json!(LATEST_TIME + 1)), 1_800_000_000),
            Err(AuthError::BadTimeClaim("exp"))
        );
        assert_eq!(
            rules.check(&claims(json!(LATEST_TIME)), 1_800_000_000),
            Ok(())
        );
    }

    const A: &str = "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22";
    const B: &str = "0b7e9d4c-1a2b-4c3d-8e9f-001122334455";

    fn ids(accounts: Vec<AccountId>) -> Vec<String> {
        accounts.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_shape_of_the_accounts_claim_grants_its_accounts() {
        let both = vec![A.to_owned(), B.to_owned()];
        let shapes = [
            json!([A, B]),
            json!(format!("[\"{A}\",\"{B}\"]")),
            json!(format!("[{A} {B}]")),
            json!(format!("{A},{B}")),
            json!(format!("{A}, {B}")),
            json!(format!("  {A}   {B} ")),
            json!([A.to_uppercase(), B]),
        ];
        for shape in shapes {
            assert_eq!(ids(accounts_in(Some(&shape))), both, "{shape}");
        }
        assert_eq!(ids(accounts_in(Some(&json!(A)))), vec![A.to_owned()]);
    }

    #[test]
    fn a_malformed_accounts_claim_grants_nothing() {
        for shape in [
            json!("acme"),
            json!([1]),
            json!({"id": A}),
            json!([A, "acme"]),
            json!(format!("{A},acme")),
            json!(format!("[\"{A}\", 7]")),
            json!(true),
            json!(null),
            json!(""),
            json!("[]"),
        ] {
            assert!(accounts_in(Some(&shape)).is_empty(), "{shape}");
        }
        assert!(accounts_in(None).is_empty());
    }

    fn rules(issuer: Option<&str>, audiences: &[&str]) -> ClaimRules {
        ClaimRules {
            issuer: issuer.map(str::to_owned),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn check(rules: &ClaimRules, claims: Value) -> Result<(), AuthError> {
        rules.check(claims.as_object().unwrap(), 1_800_000_000)
    }

    #[test]
    fn a_configured_issuer_must_be_present_a_string_and_equal() {
        let rules = rules(Some("https://id.example"), &[]);
        assert_eq!(check(&rules, json!({"iss": "https://id.example"})), Ok(()));
        assert_eq!(check(&rules, json!({})), Err(AuthError::NoIssuer));
        assert_eq!(
            check(&rules, json!({"iss": null})),
            Err(AuthError::NoIssuer)
        );
        assert_eq!(
            check(&rules, json!({"iss": 5})),
            Err(AuthError::WrongIssuer)
        );
        assert_eq!(
            check(&rules, json!({"iss": "https://evil.example"})),
            Err(AuthError::WrongIssuer)
        );
    }

    #[test]
    fn a_configured_audience_must_be_present_and_one_of_the_list() {
        let rules = rules(None, &["meters", "app-client-7"]);
        assert_eq!(check(&rules, json!({"aud": "meters"})), Ok(()));
        assert_eq!(
            check(&rules, json!({"aud": ["billing", "app-client-7"]})),
            Ok(())
        );
        assert_eq!(check(&rules, json!({})), Err(AuthError::NoAudience));
        assert_eq!(
            check(&rules, json!({"aud": null})),
            Err(AuthError::NoAudience)
        );
        assert_eq!(
            check(&rules, json!({"aud": "billing"})),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            check(&rules, json!({"aud": ["billing"]})),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            check(&rules, json!({"aud": 7})),
            Err(AuthError::WrongAudience)
        );
    }

    #[test]
    fn a_cognito_access_token_passes_on_its_client_id() {
        let rules = rules(None, &["app-client-7"]);
        let access = json!({"token_use": "access", "client_id": "app-client-7"});
        assert_eq!(check(&rules, access), Ok(()));
        let other_client = json!({"token_use": "access", "client_id": "other"});
        assert_eq!(check(&rules, other_client), Err(AuthError::NoAudience));
        let id_token_without_aud = json!({"token_use": "id", "client_id": "app-client-7"});
        assert_eq!(
            check(&rules, id_token_without_aud),
            Err(AuthError::NoAudience)
        );
    }

    #[test]
    fn nbf_and_iat_in_the_future_beyond_the_leeway_are_refused() {
        let rules = ClaimRules::default();
        let now = 1_800_000_000u64;
        assert_eq!(
            check(&rules, json!({"nbf": now + 30, "iat": now + 30})),
            Ok(())
        );
        assert_eq!(
            check(&rules, json!({"nbf": now + 3600 * 24 * 3650})),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            check(&rules, json!({"iat": now + 600})),
            Err(AuthError::IssuedInTheFuture)
        );
        assert_eq!(
            check(&rules, json!({"nbf": "soon"})),
            Err(AuthError::BadTimeClaim("nbf"))
        );
    }
}
