//! Routes, areas, coverage and incidents: the wire types of the manager's pages and of
//! incident reports from phones and boards.
//!
//! Coverage figures are aggregates ([`CoverageReport`], from the domain): they never name a
//! worker. GeoJSON (RFC 7946) bodies are plain JSON values here; the server checks them.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use makker_domain::incident::{DeadlineState, Duty, IncidentKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use makker_domain::coverage::{
    AckStats, AreaTally, CoverageReport, Gap, HeatCell, IncidentCount, PlaceVisits, RouteTally, StopTally,
    Tally, TwoPerson, WeekTally,
};
pub use makker_domain::coverage_export::Table;

/// A planned stop: a place on a weekday between two local times of the team's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    pub place_id: Uuid,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// Local time, "HH:MM".
    #[schema(value_type = String, example = "10:00")]
    pub opens: NaiveTime,
    #[schema(value_type = String, example = "12:00")]
    pub closes: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    pub name: String,
    pub valid_from: NaiveDate,
    /// The last day it applies; open-ended when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    pub stops: Vec<StopRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StopView {
    pub place_id: Uuid,
    pub place_name: String,
    pub weekday: u8,
    #[schema(value_type = String, example = "10:00:00")]
    pub opens: NaiveTime,
    #[schema(value_type = String, example = "12:00:00")]
    pub closes: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteView {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub stops: Vec<StopView>,
}

/// Two periods side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CoverageComparison {
    pub a: CoverageReport,
    pub b: CoverageReport,
}

/// A warning to put on the place with the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentWarningRequest {
    /// What the next worker there reads; a plain line by the kind when left out (never a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// 12 months from now when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentRequest {
    pub kind: IncidentKind,
    pub description: String,
    /// The place; the visit's place when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_id: Option<Uuid>,
    /// Now when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// The first day of absence, when absence follows: the authority must then be told
    /// within 9 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absence_from: Option<DateTime<Utc>>,
    /// Whether a police report is to be made (within 72 hours); by default for threats and
    /// violence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub police_report: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<IncidentWarningRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeadlineView {
    pub duty: Duty,
    pub due_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub state: DeadlineState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentView {
    pub id: Uuid,
    pub team_id: Uuid,
    pub place_id: Uuid,
    pub visit_id: Option<Uuid>,
    pub kind: IncidentKind,
    pub description: String,
    pub occurred_at: DateTime<Utc>,
    pub reported_at: DateTime<Utc>,
    /// The warning the report put on the place.
    pub warning_id: Option<Uuid>,
    pub deadlines: Vec<DeadlineView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlineDoneRequest {
    pub duty: Duty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbsenceRequest {
    /// The first day of absence.
    pub from: DateTime<Utc>,
}
