//! Places and their warnings. A home is a pseudonymous reference ("Hjem 12"), never a
//! citizen's name.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::geo::Shape;
use crate::{PlaceId, Role, TeamId, WarningId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlaceKind {
    Park,
    DropIn,
    Shelter,
    Street,
    Home,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub id: PlaceId,
    pub team: TeamId,
    pub name: String,
    pub kind: PlaceKind,
    pub shape: Shape,
}

/// The places among `places` that `role` may not see: homes, for a manager. A manager plans
/// the public places and reads aggregates; where a citizen lives, and how often the team goes
/// there, is for the supervisors and admins who answer for visits there.
pub fn hidden_from(role: Role, places: &[Place]) -> HashSet<PlaceId> {
    if role != Role::Manager {
        return HashSet::new();
    }
    places
        .iter()
        .filter(|p| p.kind == PlaceKind::Home)
        .map(|p| p.id)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WarningKind {
    Dog,
    Threat,
    Violence,
    Weapon,
    Other,
}

/// Something the next worker at this place should know. Warnings expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    pub id: WarningId,
    pub place: PlaceId,
    pub kind: WarningKind,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Warning {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.created_at <= now && now < self.expires_at
    }
}

/// The warnings that still apply at `now`.
pub fn active_warnings(warnings: &[Warning], now: DateTime<Utc>) -> Vec<&Warning> {
    warnings.iter().filter(|w| w.is_active(now)).collect()
}
