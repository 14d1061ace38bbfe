//! Shifts, colleagues, places, the risk questions, lone approvals and SOS.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use makker_domain::{PersonId, PlaceId, TeamId};
use makker_mobile_api::{
    AlarmView, ColleagueView, EventRequest, LatLon, LoneApprovalRequest, LoneApprovalView, NearbyPlaceView,
    PhoneStatusView, PlaceView, Problem, QuestionView, ShiftRequest, ShiftView, StatusRequest,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::api::coverage::{Ids, TeamPath};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller, position};
use crate::views;

/// Start my shift.
#[utoipa::path(post, path = "/api/v1/shift/start", tag = "shift", security(("device_token" = [])),
    request_body = ShiftRequest,
    responses((status = 201, body = ShiftView), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn start_shift(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<ShiftRequest>,
) -> Result<(StatusCode, Json<ShiftView>), ApiError> {
    let shift = state
        .engine
        .start_shift(&me.person, req.team_id.map(TeamId))
        .await
        .map_err(me.err())?;
    Ok((StatusCode::CREATED, Json(views::shift(&shift))))
}

/// End my shift (after checking out of any visit).
#[utoipa::path(post, path = "/api/v1/shift/end", tag = "shift", security(("device_token" = [])),
    responses((status = 200, body = ShiftView), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn end_shift(State(state): State<AppState>, me: Caller) -> Result<Json<ShiftView>, ApiError> {
    let shift = state.engine.end_shift(&me.person).await.map_err(me.err())?;
    Ok(Json(views::shift(&shift)))
}

/// Report my phone's battery during my shift, for the supervisors' board (the last report
/// replaces the one before; ending the shift deletes it).
#[utoipa::path(post, path = "/api/v1/shift/status", tag = "shift", security(("device_token" = [])),
    request_body = StatusRequest,
    responses((status = 200, body = PhoneStatusView), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn report_status(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<Json<PhoneStatusView>, ApiError> {
    let status = state
        .engine
        .report_status(&me.person, req.battery_pct, req.charging)
        .await
        .map_err(me.err())?;
    Ok(Json(views::phone_status(&status)))
}

/// Colleagues on shift in my teams.
#[utoipa::path(get, path = "/api/v1/colleagues", tag = "shift", security(("device_token" = [])),
    responses((status = 200, body = Vec<ColleagueView>), (status = 401, body = Problem)))]
pub async fn colleagues(
    State(state): State<AppState>,
    me: Caller,
) -> Result<Json<Vec<ColleagueView>>, ApiError> {
    let list = state.engine.colleagues(&me.person).await.map_err(me.err())?;
    Ok(Json(list.iter().map(views::colleague).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NearQuery {
    pub lat: f64,
    pub lon: f64,
    /// Metres; 1000 when left out.
    pub radius_m: Option<f64>,
}

/// My teams' places near a position, nearest first, with their active warnings.
#[utoipa::path(get, path = "/api/v1/places/near", tag = "places", security(("device_token" = [])),
    params(NearQuery),
    responses((status = 200, body = Vec<NearbyPlaceView>), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn places_near(
    State(state): State<AppState>,
    me: Caller,
    ApiQuery(q): ApiQuery<NearQuery>,
) -> Result<Json<Vec<NearbyPlaceView>>, ApiError> {
    let at = position(Some(LatLon {
        lat: q.lat,
        lon: q.lon,
    }))?
    .expect("BUG: a given position parses to one");
    let places = state
        .engine
        .places_near(&me.person, at, q.radius_m.unwrap_or(1000.0))
        .await
        .map_err(me.err())?;
    Ok(Json(places.iter().map(views::nearby).collect()))
}

/// The team's places by name with the warnings that apply now (homes only for supervisors
/// and admins).
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/places", tag = "places", security(("device_token" = [])),
    params(("team_id" = uuid::Uuid, Path, description = "The team")),
    responses((status = 200, body = Vec<PlaceView>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn team_places(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
) -> Result<Json<Vec<PlaceView>>, ApiError> {
    let places = state
        .engine
        .team_places(&me.person, TeamId(p.team_id))
        .await
        .map_err(me.err())?;
    Ok(Json(places.iter().map(|(p, w)| views::place(p, w)).collect()))
}

/// The quick risk assessment's questions, in my language.
#[utoipa::path(get, path = "/api/v1/assessment/questions", tag = "visits", security(("device_token" = [])),
    responses((status = 200, body = Vec<QuestionView>), (status = 401, body = Problem)))]
pub async fn questions(State(state): State<AppState>, me: Caller) -> Json<Vec<QuestionView>> {
    let qs = &state.engine.policy.assessment.questions;
    Json(
        qs.iter()
            .map(|q| QuestionView {
                id: q.id.clone(),
                text: q.text.get(me.lang).to_owned(),
            })
            .collect(),
    )
}

/// A supervisor approves one lone visit by a worker at a place.
#[utoipa::path(post, path = "/api/v1/lone-approvals", tag = "visits", security(("device_token" = [])),
    request_body = LoneApprovalRequest,
    responses((status = 201, body = LoneApprovalView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn approve_lone(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<LoneApprovalRequest>,
) -> Result<(StatusCode, Json<LoneApprovalView>), ApiError> {
    let a = state
        .engine
        .approve_lone(&me.person, PersonId(req.worker_id), PlaceId(req.place_id))
        .await
        .map_err(me.err())?;
    let view = LoneApprovalView {
        id: a.id,
        worker_id: a.worker.0,
        place_id: a.place.0,
        expires_at: a.expires_at,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// SOS: raise an alarm now.
#[utoipa::path(post, path = "/api/v1/sos", tag = "alarms", security(("device_token" = [])),
    request_body = EventRequest,
    responses((status = 201, body = AlarmView), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn sos(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<EventRequest>,
) -> Result<(StatusCode, Json<AlarmView>), ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let alarm = state.engine.sos(&me.person, stamp).await.map_err(me.err())?;
    Ok((StatusCode::CREATED, Json(views::alarm(&alarm))))
}
