//! Makker's domain: the rules of safe outreach work, as pure functions.
//!
//! Invariants:
//! - No I/O, no clock, no database, no async. Time always comes in as a value (`now`).
//! - State changes return effects as data ([`visit::Effect`]); storage persists them in the
//!   same transaction, notification delivery happens later from an outbox.
//! - Every refusal carries a stable code and a text a worker can read on the phone
//!   ([`refusal::Refusal`]).

pub mod alarm;
pub mod area;
pub mod coverage;
pub mod coverage_export;
pub mod geo;
pub mod ids;
pub mod incident;
pub mod place;
pub mod policy;
pub mod refusal;
pub mod risk;
pub mod route;
pub mod text;
pub mod visit;

pub use ids::*;
pub use refusal::Refusal;

use serde::{Deserialize, Serialize};

/// What a person may do. One role per person; team membership decides the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Worker,
    Supervisor,
    Manager,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Worker, Role::Supervisor, Role::Manager, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// # Errors
    /// An unknown role name.
    pub fn parse(s: &str) -> Result<Self, UnknownName> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }

    /// Whether this role goes out on visits.
    pub fn does_visits(self) -> bool {
        matches!(self, Role::Worker | Role::Supervisor)
    }
}

/// A check-out PIN (normal or duress) is four to eight ASCII digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name: {0}")]
pub struct UnknownName(pub String);
