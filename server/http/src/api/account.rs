//! Signing in and out, and my devices.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use makker_mobile_api::{LocationViewEntry, LoginRequest, LoginResponse, PersonView, Problem};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PathId, text};
use crate::views;

/// Sign in with username and password; receive a device token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "account", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 422, body = Problem),
        (status = 429, description = "Locked after too many failed sign-ins", body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let username = text("username", &req.username, 64, true)?;
    let device_name = text("device_name", &req.device_name, 100, true)?;
    if req.password.is_empty() || req.password.len() > 1024 {
        return Err(ApiError::Invalid("password must be 1 to 1024 bytes".into()));
    }
    let (person, token, device) = state.engine.login(&username, &req.password, &device_name).await?;
    Ok(Json(LoginResponse {
        token,
        device_id: device.id,
        expires_at: device.expires_at,
        person: views::person(&person),
    }))
}

/// Sign out: revokes this device's token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "account", security(("device_token" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(State(state): State<AppState>, me: Caller) -> Result<StatusCode, ApiError> {
    state
        .engine
        .revoke_device(&me.person, me.device.id)
        .await
        .map_err(me.err())?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who I am.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("device_token" = [])),
    responses((status = 200, body = PersonView), (status = 401, body = Problem)))]
pub async fn me(me: Caller) -> Json<PersonView> {
    Json(views::person(&me.person))
}

/// Who was shown my position, when and on which alarm (from the audit log).
#[utoipa::path(get, path = "/api/v1/me/location-views", tag = "account", security(("device_token" = [])),
    responses((status = 200, body = Vec<LocationViewEntry>), (status = 401, body = Problem)))]
pub async fn location_views(
    State(state): State<AppState>,
    me: Caller,
) -> Result<Json<Vec<LocationViewEntry>>, ApiError> {
    let views = state.engine.location_views(&me.person).await.map_err(me.err())?;
    Ok(Json(
        views
            .into_iter()
            .map(|v| LocationViewEntry {
                at: v.at,
                viewer_id: v.viewer.as_ref().map(|p| p.id.0),
                viewer_name: v.viewer.map(|p| p.display_name),
                alarm_id: v.alarm,
            })
            .collect(),
    ))
}

/// Everything Makker holds about me, as one JSON document (an access request): my account and
/// devices, shifts, visits with my own events and positions, alarms about me, messages to me,
/// and who was shown my position.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "account", security(("device_token" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
pub async fn export(State(state): State<AppState>, me: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.engine.export(&me.person).await.map_err(me.err())?))
}

/// Revoke one of my devices (an admin may revoke anyone's).
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "account", security(("device_token" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    me: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .revoke_device(&me.person, id)
        .await
        .map_err(me.err())?;
    Ok(StatusCode::NO_CONTENT)
}
