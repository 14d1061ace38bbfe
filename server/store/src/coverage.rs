//! Storage for routes and coverage: areas, route edits, incidents, and the facts a coverage
//! report is computed from. A supertrait of [`crate::Store`], implemented once in
//! `sql/coverage.rs` for both dialects.
//!
//! Invariants: the facts carry no person (coverage never identifies a worker); visit facts are
//! streamed to the caller, never collected as rows, so a year of a large municipality fits;
//! every multi-row write (an import, an incident with its warning) is one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use makker_domain::area::Area;
use makker_domain::coverage::{AlarmFact, VisitFact};
use makker_domain::incident::Incident;
use makker_domain::place::Warning;
use makker_domain::route::Route;
use makker_domain::visit::Visit;
use makker_domain::{AreaId, IncidentId, RouteId, TeamId};

use crate::{Assessment, Changes, StoreResult};

/// Named constraints of these tables.
pub mod constraint {
    pub const AREA_NAME: &str = "area_team_name_key";
}

#[async_trait]
pub trait CoverageStore: Send + Sync {
    /// Inserts or replaces these areas (by id) in one transaction.
    ///
    /// # Errors
    /// `Conflict` when two areas of a team would share a name.
    async fn save_areas(&self, areas: &[Area], now: DateTime<Utc>) -> StoreResult<()>;
    /// A team's areas, by name.
    async fn areas(&self, team: TeamId) -> StoreResult<Vec<Area>>;
    /// # Errors
    /// `NotFound` when the team has no such area.
    async fn delete_area(&self, team: TeamId, id: AreaId) -> StoreResult<()>;

    /// Inserts or replaces these routes (by id), each with all its stops, in one transaction.
    async fn save_routes(&self, routes: &[Route], now: DateTime<Utc>) -> StoreResult<()>;
    async fn route(&self, id: RouteId) -> StoreResult<Route>;

    /// Calls `each` for every visit of `team` that started in `from..to`, as it is read.
    async fn visit_facts(
        &self,
        team: TeamId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: &mut (dyn FnMut(VisitFact) + Send),
    ) -> StoreResult<()>;
    /// The alarms of `team` raised in `from..to` (drills included, marked).
    async fn alarm_facts(
        &self,
        team: TeamId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<AlarmFact>>;

    /// Writes an incident and the warning it puts on its place, in one transaction.
    async fn insert_incident(&self, incident: &Incident, warning: Option<&Warning>) -> StoreResult<()>;
    async fn incident(&self, id: IncidentId) -> StoreResult<Incident>;
    /// A team's incidents that happened in `from..to`, newest first.
    async fn incidents(
        &self,
        team: TeamId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Incident>>;
    /// Incidents of a team with a deadline not yet done, soonest due first.
    async fn incidents_pending(&self, team: TeamId) -> StoreResult<Vec<Incident>>;
    /// Saves an incident's deadlines (due and done times).
    async fn save_incident_deadlines(&self, incident: &Incident) -> StoreResult<()>;

    /// Writes past visits (each with its assessment, as `insert_visit` does) and `changes` in
    /// one transaction: history for the demo and the benchmarks, in bulk.
    async fn insert_history(
        &self,
        visits: &[(Visit, Assessment)],
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}
