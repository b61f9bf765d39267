//! Who writes: every meter write records its actor on the meter, and the change events carry it.

use serde::{Deserialize, Serialize};

/// Who made a request: the token's `sub`, and its `client_id` when it has one (a machine client's token);
/// in `gateway` mode, the authorizer's claims of those names. Never the token itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: Option<String>,
    pub client_id: Option<String>,
}

/// Who created a meter and who last changed it, as the store recorded them. Not part of the meter's JSON
/// (docs/api.md, "Who changed a meter"): `None` for meters written before actors were recorded, or by the import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenBy {
    pub created_by: Option<Actor>,
    pub updated_by: Option<Actor>,
}
