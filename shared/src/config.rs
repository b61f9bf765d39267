//! Settings from the environment, read once at start-up through one reader: a variable set to the empty
//! string counts as unset (SAM and CloudFormation cannot leave a declared variable out), a value is parsed
//! into its type where it is read, and anything wrong is an error that names the variable. Nothing falls
//! back to a default secret. Each layer reads its own settings with this: `auth::AuthConfig`,
//! `store::dynamodb::DynamoDbConfig`, the request deadline in `http`, the log settings in `telemetry`.

use std::collections::HashMap;

/// Why start-up cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable that must be set is not.
    #[error("{variable} is not set: {hint}")]
    Missing {
        variable: &'static str,
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{variable} is invalid: {reason}")]
    Invalid {
        variable: &'static str,
        reason: String,
    },
}

/// Where settings come from: the process's environment, a fixed set of variables (tests), or the
/// environment with some variables given (the local server's development secret).
pub struct Env {
    given: HashMap<String, String>,
    process: bool,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: only the names are shown.
        f.debug_struct("Env")
            .field("given", &self.given.keys().collect::<Vec<_>>())
            .field("process", &self.process)
            .finish()
    }
}

impl Env {
    /// The process's environment.
    pub fn process() -> Self {
        Self {
            given: HashMap::new(),
            process: true,
        }
    }

    /// Exactly these variables and no others.
    pub fn of<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let given = vars
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()));
        Self {
            given: given.collect(),
            process: false,
        }
    }

    /// This environment with `name` set to `value`, whatever it held.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.given.insert(name.to_owned(), value.into());
        self
    }

    /// The variable's value; unset and empty are the same.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match self.given.get(name) {
            Some(value) => Some(value.clone()),
            None if self.process => std::env::var(name).ok(),
            None => None,
        };
        value.filter(|value| !value.is_empty())
    }

    /// The variable's value, or `Missing` with a hint of what it is for.
    pub fn required(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing {
            variable: name,
            hint,
        })
    }

    /// The variable parsed into its type, `None` when unset; `parse` says why a value is refused, and the
    /// error names the variable.
    pub fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|raw| {
                parse(&raw).map_err(|reason| ConfigError::Invalid {
                    variable: name,
                    reason,
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_variable_is_unset() {
        let env = Env::of([("TABLE_NAME", ""), ("STAGE", "dev")]);
        assert_eq!(env.get("TABLE_NAME"), None);
        assert_eq!(env.get("STAGE").as_deref(), Some("dev"));
        assert_eq!(
            env.required("TABLE_NAME", "the table").unwrap_err(),
            ConfigError::Missing {
                variable: "TABLE_NAME",
                hint: "the table"
            }
        );
    }

    #[test]
    fn a_value_that_does_not_parse_is_refused_naming_the_variable() {
        let env = Env::of([("LIMIT", "ten")]);
        let parsed = env.parsed("LIMIT", |raw| {
            raw.parse::<u32>()
                .map_err(|_| "it must be a whole number".to_owned())
        });
        assert_eq!(
            parsed.unwrap_err().to_string(),
            "LIMIT is invalid: it must be a whole number"
        );
        assert_eq!(env.parsed("UNSET", |raw| Ok(raw.len())), Ok(None));
    }

    #[test]
    fn values_are_never_shown_in_debug_output() {
        let env = Env::of([("JWT_SECRET", "a-secret-value")]);
        assert!(!format!("{env:?}").contains("a-secret-value"));
    }
}
