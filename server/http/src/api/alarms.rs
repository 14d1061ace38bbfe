//! Alarms: the list of my teams' open alarms, acknowledge ("I'm on it") and resolve.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use makker_domain::{AlarmId, PersonId, TeamId};
use makker_mobile_api::{AlarmView, DeliveryView, DrillRequest, Problem, ResolveRequest};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PathId, text};
use crate::views;

/// Unresolved alarms of my teams, newest first; a duress alarm never shows on the phone of the
/// worker it is about.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms", security(("device_token" = [])),
    responses((status = 200, body = Vec<AlarmView>), (status = 401, body = Problem)))]
pub async fn list(State(state): State<AppState>, me: Caller) -> Result<Json<Vec<AlarmView>>, ApiError> {
    let alarms = state.engine.team_alarms(&me.person).await.map_err(me.err())?;
    Ok(Json(alarms.iter().map(views::alarm).collect()))
}

/// "I'm on it": the first to acknowledge owns the alarm and escalation stops.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/acknowledge", tag = "alarms", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AlarmView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
) -> Result<Json<AlarmView>, ApiError> {
    let alarm = state
        .engine
        .acknowledge(&me.person, AlarmId(id))
        .await
        .map_err(me.err())?;
    Ok(Json(views::alarm(&alarm)))
}

/// The escalation trail: every message of the alarm, to whom, by which channel, and each
/// delivery attempt with the provider's answer and receipt. Supervisors, managers, admins.
#[utoipa::path(get, path = "/api/v1/alarms/{id}/deliveries", tag = "alarms", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<DeliveryView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn deliveries(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let trail = state
        .engine
        .deliveries(&me.person, AlarmId(id))
        .await
        .map_err(me.err())?;
    Ok(Json(trail.iter().map(views::delivery).collect()))
}

/// Resolve an alarm I acknowledged, with its outcome and a note.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/resolve", tag = "alarms", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = ResolveRequest,
    responses((status = 200, body = AlarmView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn resolve(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<AlarmView>, ApiError> {
    let outcome = text("outcome", &req.outcome, 64, true)?;
    let note = req
        .note
        .as_deref()
        .map(|n| text("note", n, 2000, false))
        .transpose()?;
    let alarm = state
        .engine
        .resolve(&me.person, AlarmId(id), &outcome, note)
        .await
        .map_err(me.err())?;
    Ok(Json(views::alarm(&alarm)))
}

/// Start a drill: the real escalation chain, every message marked as a test.
#[utoipa::path(post, path = "/api/v1/drills", tag = "alarms", security(("device_token" = [])),
    request_body = DrillRequest,
    responses((status = 201, body = Vec<AlarmView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn drill(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<DrillRequest>,
) -> Result<(StatusCode, Json<Vec<AlarmView>>), ApiError> {
    let worker = req.worker_id.map(PersonId);
    let alarms = state
        .engine
        .start_drill(&me.person, worker, req.team_id.map(TeamId))
        .await
        .map_err(me.err())?;
    Ok((
        StatusCode::CREATED,
        Json(alarms.iter().map(views::alarm).collect()),
    ))
}
