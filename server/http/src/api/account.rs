//! Signing in and out, and my devices.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use makker_mobile_api::{
    LocationViewEntry, LoginRequest, LoginResponse, PersonView, Problem, SessionRequest, SessionView,
};
use makker_store::{Device, Person};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PathId, SESSION_COOKIE, csrf_token, text};
use crate::views;

/// Sign in with username and password; receive a device token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "account", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 422, body = Problem),
        (status = 429, description = "Locked after too many failed sign-ins", body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let device_name = text("device_name", &req.device_name, 100, true)?;
    let (person, token, device) = sign_in(&state, &req.username, &req.password, &device_name).await?;
    Ok(Json(LoginResponse {
        token,
        device_id: device.id,
        expires_at: device.expires_at,
        person: views::person(&person),
    }))
}

async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    device_name: &str,
) -> Result<(Person, String, Device), ApiError> {
    let username = text("username", username, 64, true)?;
    if password.is_empty() || password.len() > 1024 {
        return Err(ApiError::Invalid("password must be 1 to 1024 bytes".into()));
    }
    Ok(state.engine.login(&username, password, device_name).await?)
}

/// Sign in from a browser: starts a web session in an HttpOnly, Secure, SameSite=Strict
/// cookie and returns the CSRF token the page sends with every state-changing request.
#[utoipa::path(post, path = "/api/v1/auth/session", tag = "account", request_body = SessionRequest,
    responses((status = 200, body = SessionView, headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 401, body = Problem), (status = 422, body = Problem),
        (status = 429, description = "Locked after too many failed sign-ins", body = Problem)))]
pub async fn start_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SessionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (person, token, device) =
        sign_in(&state, &req.username, &req.password, &browser_name(&headers)).await?;
    let cookie = session_cookie(&state, &token, &device);
    let view = session_view(&token, &device, &person);
    Ok((AppendHeaders([(SET_COOKIE, cookie)]), Json(view)))
}

/// The web session of this browser, with its CSRF token again (for a reloaded page).
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "account", security(("web_session" = [])),
    responses((status = 200, body = SessionView), (status = 401, body = Problem)))]
pub async fn session(me: Caller) -> Result<Json<SessionView>, ApiError> {
    let token = me.session.as_deref().ok_or(ApiError::Unauthorized)?;
    Ok(Json(session_view(token, &me.device, &me.person)))
}

/// Sign out of this browser: revokes the session and clears its cookie.
#[utoipa::path(delete, path = "/api/v1/auth/session", tag = "account", security(("web_session" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn end_session(State(state): State<AppState>, me: Caller) -> Result<impl IntoResponse, ApiError> {
    if me.session.is_none() {
        return Err(ApiError::Unauthorized);
    }
    state
        .engine
        .revoke_device(&me.person, me.device.id)
        .await
        .map_err(me.err())?;
    let cookie = format!("{SESSION_COOKIE}=; {COOKIE_ATTRIBUTES}; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, AppendHeaders([(SET_COOKIE, cookie)])))
}

/// The `Set-Cookie` value that starts the web session of `token`, until its device expires
/// (a password sign-in and single sign-on alike).
pub(crate) fn session_cookie(state: &AppState, token: &str, device: &Device) -> String {
    let max_age = (device.expires_at - state.engine.now()).num_seconds().max(0);
    format!("{SESSION_COOKIE}={token}; {COOKIE_ATTRIBUTES}; Max-Age={max_age}")
}

/// Never readable by scripts, never sent over plain HTTP (browsers except localhost), never
/// sent with requests started by another site.
const COOKIE_ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Strict";

fn session_view(token: &str, device: &Device, person: &Person) -> SessionView {
    SessionView {
        csrf_token: csrf_token(token),
        device_id: device.id,
        expires_at: device.expires_at,
        person: views::person(person),
    }
}

/// The name the session gets in my list of devices: the browser, as far as it says.
fn browser_name(headers: &HeaderMap) -> String {
    let agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let known = ["Edg/", "Firefox/", "Chrome/", "Safari/"];
    let browser = known
        .iter()
        .find(|k| agent.contains(*k))
        .map_or("Browser", |k| k.trim_end_matches('/'));
    let browser = if browser == "Edg" { "Edge" } else { browser };
    format!("Web session ({browser})")
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
