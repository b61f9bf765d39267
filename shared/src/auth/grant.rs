//! The tenant boundary: the accounts an authenticated request may act for.

pub use crate::domain::Actor;
use crate::domain::meter::AccountId;

/// The accounts an authenticated request may act for, and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub(super) accounts: Vec<AccountId>,
    pub actor: Actor,
}

impl Grant {
    /// The tenant boundary: a token for account A never reads or writes account B. Every handler passes
    /// here with the account its request names, which the request's log line then carries.
    pub fn authorize(&self, account: &AccountId) -> Result<(), AccountNotGranted> {
        crate::telemetry::note_account(account);
        if self.accounts.contains(account) {
            Ok(())
        } else {
            Err(AccountNotGranted(*account))
        }
    }
}

/// The token is valid but does not grant the account the request names (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token does not grant access to account {0}")]
pub struct AccountNotGranted(pub AccountId);
