//! Typed identifiers. UUIDs are made by the caller (the engine), never here.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id!(
    TeamId,
    PersonId,
    PlaceId,
    VisitId,
    ShiftId,
    AssessmentId,
    AlarmId,
    WarningId,
    RouteId,
    AreaId,
    IncidentId
);
