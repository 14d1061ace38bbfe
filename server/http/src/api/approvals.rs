//! Asking for a supervisor's approval of a lone visit from the door, and answering the ask.
//! The approval itself is `POST /api/v1/lone-approvals` (team.rs); a later start of the
//! visit uses it without naming it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use makker_domain::PlaceId;
use makker_engine::{AskState, LoneAsk};
use makker_mobile_api::{LoneApprovalAsk, LoneApprovalAskView, LoneAskState, Problem};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PathId};

fn view((ask, state): (LoneAsk, AskState)) -> Json<LoneApprovalAskView> {
    let (state, lone_approval_id) = match state {
        AskState::Open => (LoneAskState::Open, None),
        AskState::Approved { lone_approval_id } => (LoneAskState::Approved, Some(lone_approval_id)),
        AskState::Declined => (LoneAskState::Declined, None),
        AskState::Expired => (LoneAskState::Expired, None),
    };
    Json(LoneApprovalAskView {
        request_id: ask.request_id,
        place_id: ask.place_id.0,
        state,
        lone_approval_id,
        risk_level: ask.risk_level,
        requested_at: ask.requested_at,
        expires_at: ask.expires_at,
    })
}

/// Ask the team's supervisors to approve a lone visit at a place: their boards show the ask
/// with the place's warnings and the assessed risk. Asking again while an ask for the place
/// is open gives that ask back.
#[utoipa::path(post, path = "/api/v1/lone-approvals/requests", tag = "visits", security(("device_token" = [])),
    request_body = LoneApprovalAsk,
    responses((status = 201, body = LoneApprovalAskView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn ask(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<LoneApprovalAsk>,
) -> Result<(StatusCode, Json<LoneApprovalAskView>), ApiError> {
    if req
        .answers
        .as_ref()
        .is_some_and(|a| a.len() > 100 || a.keys().any(|k| k.len() > 64))
    {
        return Err(ApiError::Invalid("too many or too long answers".into()));
    }
    let asked = state
        .engine
        .ask_lone_approval(&me.person, PlaceId(req.place_id), req.kind, req.answers)
        .await
        .map_err(me.err())?;
    Ok((StatusCode::CREATED, view(asked)))
}

/// Where my ask stands (the phone polls while the worker waits); a supervisor may read the
/// asks of their teams.
#[utoipa::path(get, path = "/api/v1/lone-approvals/requests/{id}", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = LoneApprovalAskView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
) -> Result<Json<LoneApprovalAskView>, ApiError> {
    let asked = state.engine.lone_ask(&me.person, id).await.map_err(me.err())?;
    Ok(view(asked))
}

/// Decline an open ask: the worker is told to wait for a colleague.
#[utoipa::path(post, path = "/api/v1/lone-approvals/requests/{id}/decline", tag = "visits",
    security(("device_token" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn decline(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .decline_lone(&me.person, id)
        .await
        .map_err(me.err())?;
    Ok(StatusCode::NO_CONTENT)
}
