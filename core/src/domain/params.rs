//! A request's parameters as name and value pairs, and the rules every endpoint applies to them: no
//! unknown parameter, none given twice.

use crate::domain::field_error::FieldError;
use crate::domain::meter::AccountId;

/// The query string's parameters, each name with the values it was given.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            pairs: pairs.into_iter().collect(),
        }
    }

    /// Refuses any parameter not in `allowed`, so a misspelt `sortby` is an error rather than ignored.
    pub fn only(&self, allowed: &[&str]) -> Result<&Self, FieldError> {
        let Some((unknown, _)) = self
            .pairs
            .iter()
            .find(|(name, _)| !allowed.contains(&name.as_str()))
        else {
            return Ok(self);
        };
        let unknown: String = unknown.chars().take(64).collect();
        let rule = if allowed.is_empty() {
            // PUT and POST take everything in the body, `account_id` included.
            format!(
                "unknown parameter `{unknown}`; this request takes none (send account_id in the body)"
            )
        } else {
            format!(
                "unknown parameter `{unknown}`; allowed: {}",
                allowed.join(", ")
            )
        };
        Err(FieldError::new("query string", rule))
    }

    /// The parameter's one value; given twice it is ambiguous, so refused.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, FieldError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str());
        match (values.next(), values.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(_)) => Err(FieldError::new(name, "must be given once")),
            (None, Some(_)) => Ok(None),
        }
    }

    /// The required `account_id` of list, get and delete.
    pub fn account_id(&self) -> Result<AccountId, FieldError> {
        match self.single("account_id")? {
            Some(raw) => AccountId::parse(raw),
            None => Err(FieldError::new(
                "account_id",
                "is required as a query parameter",
            )),
        }
    }
}
