//! Visits: start, join, check in, extend, check out, withdraw.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use makker_domain::visit::Visit;
use makker_domain::{PersonId, PlaceId, VisitId};
use makker_engine::StartCommand;
use makker_mobile_api::{
    ActiveVisitResponse, CheckOutRequest, EventRequest, ExtendRequest, JoinRequest, Problem,
    StartVisitRequest, VisitView,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PathId, VisitCaller, text};
use crate::views;

fn reply(v: &Visit) -> Json<VisitView> {
    Json(views::visit(v))
}

/// Start a visit: the policy decides with the risk assessment and who goes along.
#[utoipa::path(post, path = "/api/v1/visits", tag = "visits", security(("device_token" = [])),
    request_body = StartVisitRequest,
    responses((status = 201, body = VisitView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn start(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<StartVisitRequest>,
) -> Result<(StatusCode, Json<VisitView>), ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let lone_reason = req
        .lone_reason
        .as_deref()
        .map(|r| text("lone_reason", r, 500, false))
        .transpose()?;
    if req.partners.len() > 10 {
        return Err(ApiError::Invalid("at most 10 partners".into()));
    }
    if req
        .answers
        .as_ref()
        .is_some_and(|a| a.len() > 100 || a.keys().any(|k| k.len() > 64))
    {
        return Err(ApiError::Invalid("too many or too long answers".into()));
    }
    let cmd = StartCommand {
        kind: req.kind,
        place: PlaceId(req.place_id),
        planned_minutes: req.planned_minutes,
        role: req.role,
        partners: req
            .partners
            .iter()
            .map(|p| (PersonId(p.person_id), p.role))
            .collect(),
        answers: req.answers,
        lone_reason,
        lone_approval: req.lone_approval_id,
        tell_colleague: req.tell_colleague_id.map(PersonId),
    };
    let v = state
        .engine
        .start_visit(&me.person, cmd, stamp)
        .await
        .map_err(me.err())?;
    Ok((StatusCode::CREATED, reply(&v.value)))
}

/// My active visit, if any.
#[utoipa::path(get, path = "/api/v1/visits/active", tag = "visits", security(("device_token" = [])),
    responses((status = 200, body = ActiveVisitResponse), (status = 401, body = Problem)))]
pub async fn active(
    State(state): State<AppState>,
    me: Caller,
) -> Result<Json<ActiveVisitResponse>, ApiError> {
    let v = state.engine.active_visit(&me.person).await.map_err(me.err())?;
    Ok(Json(ActiveVisitResponse {
        visit: v.as_ref().map(views::visit),
    }))
}

/// A visit of my teams.
#[utoipa::path(get, path = "/api/v1/visits/{id}", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = VisitView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
) -> Result<Json<VisitView>, ApiError> {
    let v = state
        .engine
        .visit(&me.person, VisitId(id))
        .await
        .map_err(me.err())?;
    Ok(reply(&v.value))
}

/// Join a colleague's visit as a partner.
#[utoipa::path(post, path = "/api/v1/visits/{id}/join", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = JoinRequest,
    responses((status = 200, body = VisitView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn join(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
    ApiJson(req): ApiJson<JoinRequest>,
) -> Result<Json<VisitView>, ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let v = state
        .engine
        .join(&me.person, VisitId(id), req.role, stamp)
        .await
        .map_err(me.err())?;
    Ok(reply(&v))
}

/// "I'm OK": check in.
#[utoipa::path(post, path = "/api/v1/visits/{id}/check-in", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = EventRequest,
    responses((status = 200, body = VisitView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn check_in(
    State(state): State<AppState>,
    VisitCaller { me, visit }: VisitCaller,
    ApiJson(req): ApiJson<EventRequest>,
) -> Result<Json<VisitView>, ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let v = state
        .engine
        .check_in(&me.person, visit, stamp)
        .await
        .map_err(me.err())?;
    Ok(reply(&v))
}

/// Extend the planned end, within the policy's maximum duration.
#[utoipa::path(post, path = "/api/v1/visits/{id}/extend", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = ExtendRequest,
    responses((status = 200, body = VisitView), (status = 422, body = Problem)))]
pub async fn extend(
    State(state): State<AppState>,
    VisitCaller { me, visit }: VisitCaller,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> Result<Json<VisitView>, ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let v = state
        .engine
        .extend(&me.person, visit, req.minutes, stamp)
        .await
        .map_err(me.err())?;
    Ok(reply(&v))
}

/// Check out with my PIN. The answer is the same for the duress PIN.
#[utoipa::path(post, path = "/api/v1/visits/{id}/check-out", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = CheckOutRequest,
    responses((status = 200, body = VisitView), (status = 422, body = Problem)))]
pub async fn check_out(
    State(state): State<AppState>,
    VisitCaller { me, visit }: VisitCaller,
    ApiJson(req): ApiJson<CheckOutRequest>,
) -> Result<Json<VisitView>, ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let pin = req.pin.as_deref().map(str::trim);
    let v = state
        .engine
        .check_out(&me.person, visit, pin, stamp)
        .await
        .map_err(me.err())?;
    Ok(reply(&v))
}

/// The observer decides that the pair leaves now (rule 4).
#[utoipa::path(post, path = "/api/v1/visits/{id}/withdraw", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = EventRequest,
    responses((status = 200, body = VisitView), (status = 403, body = Problem)))]
pub async fn withdraw(
    State(state): State<AppState>,
    VisitCaller { me, visit }: VisitCaller,
    ApiJson(req): ApiJson<EventRequest>,
) -> Result<Json<VisitView>, ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let v = state
        .engine
        .withdraw(&me.person, visit, stamp)
        .await
        .map_err(me.err())?;
    Ok(reply(&v))
}

/// A heartbeat from the phone during a visit (when the policy watches for silence).
#[utoipa::path(post, path = "/api/v1/visits/{id}/heartbeat", tag = "visits", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = EventRequest,
    responses((status = 200, body = VisitView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    VisitCaller { me, visit }: VisitCaller,
    ApiJson(req): ApiJson<EventRequest>,
) -> Result<Json<VisitView>, ApiError> {
    let stamp = me.stamp(&state, req.client_time, req.position)?;
    let v = state
        .engine
        .heartbeat(&me.person, visit, stamp)
        .await
        .map_err(me.err())?;
    Ok(reply(&v))
}
