//! Incident reports (threat, violence, offensive act, near miss) from phones and boards, the
//! warnings they put on places, and the Danish deadlines they track until done.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use makker_domain::incident::{Incident, Report};
use makker_domain::{IncidentId, PlaceId, TeamId, VisitId};
use makker_engine::coverage::{IncidentInput, WarningInput};
use makker_mobile_api::Problem;
use makker_mobile_api::coverage::{
    AbsenceRequest, DeadlineDoneRequest, DeadlineView, IncidentRequest, IncidentView,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::coverage::{Ids, TeamPath};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller, PathId};

fn view(i: &Incident, now: chrono::DateTime<chrono::Utc>) -> IncidentView {
    use makker_domain::incident::Duty;
    let deadlines = [
        (Duty::AuthorityNotice, i.authority),
        (Duty::PoliceReport, i.police),
    ]
    .into_iter()
    .filter_map(|(duty, d)| {
        d.map(|d| DeadlineView {
            duty,
            due_at: d.due_at,
            done_at: d.done_at,
            state: d.state(now),
        })
    })
    .collect();
    IncidentView {
        id: i.id.0,
        team_id: i.team.0,
        place_id: i.place.0,
        visit_id: i.visit.map(|v| v.0),
        kind: i.kind,
        description: i.description.clone(),
        occurred_at: i.occurred_at,
        reported_at: i.reported_at,
        warning_id: i.warning.map(|w| w.0),
        deadlines,
    }
}

/// Reports an incident at a place of my team — the visit's place when only a visit is given —
/// optionally putting a warning on the place (12 months unless said). Anyone in the team.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", security(("device_token" = [])),
    request_body = IncidentRequest,
    responses((status = 201, body = IncidentView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn report(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<IncidentRequest>,
) -> Result<(StatusCode, Json<IncidentView>), ApiError> {
    let now = state.engine.now();
    let input = IncidentInput {
        place: req.place_id.map(PlaceId),
        visit: req.visit_id.map(VisitId),
        report: Report {
            kind: req.kind,
            description: req.description,
            occurred_at: req.occurred_at.unwrap_or(now),
            absence_from: req.absence_from,
            police_report: req.police_report,
        },
        warning: req.warning.map(|w| WarningInput {
            text: w.text,
            expires_at: w.expires_at,
        }),
    };
    let incident = state
        .engine
        .report_incident(&me.person, input)
        .await
        .map_err(me.err())?;
    Ok((StatusCode::CREATED, Json(view(&incident, now))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// First date (UTC) of the incidents to list; all when `from` and `to` are left out.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Only those with a deadline not yet done, soonest due first.
    pub pending: Option<bool>,
}

/// The team's incidents, newest first, with their deadlines. Supervisors, managers, admins.
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/incidents", tag = "incidents", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), IncidentsQuery),
    responses((status = 200, body = Vec<IncidentView>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiQuery(q): ApiQuery<IncidentsQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    let period = match (q.from, q.to) {
        (None, None) => None,
        (Some(a), Some(b)) if a <= b => Some((a, b)),
        _ => {
            return Err(ApiError::Invalid(
                "give both from and to, from not after to".into(),
            ));
        }
    };
    let list = state
        .engine
        .incidents(&me.person, TeamId(p.team_id), period, q.pending.unwrap_or(false))
        .await
        .map_err(me.err())?;
    let now = state.engine.now();
    Ok(Json(list.iter().map(|i| view(i, now)).collect()))
}

/// Marks a deadline done: the notice to the working-environment authority, or the police
/// report. Marking it again keeps the first time. Supervisors, managers, admins.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/done", tag = "incidents", security(("device_token" = [])),
    params(("id" = Uuid, Path, description = "The incident")),
    request_body = DeadlineDoneRequest,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn done(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
    ApiJson(req): ApiJson<DeadlineDoneRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    let i = state
        .engine
        .incident_done(&me.person, IncidentId(id), req.duty)
        .await
        .map_err(me.err())?;
    Ok(Json(view(&i, state.engine.now())))
}

/// Records that absence followed, from a first day: the authority's notice is due 9 days
/// later. Supervisors, managers, admins.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/absence", tag = "incidents", security(("device_token" = [])),
    params(("id" = Uuid, Path, description = "The incident")),
    request_body = AbsenceRequest,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn absence(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
    ApiJson(req): ApiJson<AbsenceRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    let i = state
        .engine
        .incident_absence(&me.person, IncidentId(id), req.from)
        .await
        .map_err(me.err())?;
    Ok(Json(view(&i, state.engine.now())))
}
