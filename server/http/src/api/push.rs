//! Web Push subscriptions of the signed-in phone.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use makker_mobile_api::{Problem, PushKeyView, PushSubscriptionRequest, PushUnsubscribeRequest};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller};

/// The VAPID public key to subscribe with (`applicationServerKey`).
#[utoipa::path(get, path = "/api/v1/push/key", tag = "push", security(("device_token" = [])),
    responses((status = 200, body = PushKeyView), (status = 401, body = Problem)))]
pub async fn key(State(state): State<AppState>, _me: Caller) -> Json<PushKeyView> {
    Json(PushKeyView {
        public_key: state.engine.settings.push_public_key.clone(),
    })
}

/// Register this phone's push subscription: reminders and alarms then come by push too.
#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push", security(("device_token" = [])),
    request_body = PushSubscriptionRequest,
    responses((status = 201), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn subscribe(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<PushSubscriptionRequest>,
) -> Result<StatusCode, ApiError> {
    let engine = &state.engine;
    engine
        .register_push(
            &me.person,
            me.device.id,
            &req.endpoint,
            &req.keys.p256dh,
            &req.keys.auth,
        )
        .await
        .map_err(me.err())?;
    Ok(StatusCode::CREATED)
}

/// Forget one of my push subscriptions.
#[utoipa::path(post, path = "/api/v1/push/unsubscribe", tag = "push", security(("device_token" = [])),
    request_body = PushUnsubscribeRequest,
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    me: Caller,
    ApiJson(req): ApiJson<PushUnsubscribeRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .unregister_push(&me.person, &req.endpoint)
        .await
        .map_err(me.err())?;
    Ok(StatusCode::NO_CONTENT)
}
