//! `Idempotency-Key` for mutating calls: a phone replaying its offline queue, or retrying
//! after a lost answer, gets the first answer again and changes nothing.
//!
//! Protocol: claim (person, key) with a hash of method, path and body → run the handler →
//! store its answer. The same key again with the same request replays the stored answer; with
//! a different request it is refused; while the first is still running it is a conflict.
//! 5xx answers are not stored, so a retry after a server failure runs again.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use makker_domain::PersonId;
use makker_engine::EngineError;
use makker_mobile_api::IDEMPOTENCY_KEY;
use makker_store::Idempotency;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::Credential;
use crate::{AppState, BODY_LIMIT};

pub const REPLAYED: &str = "idempotent-replayed";

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY).filter(|_| mutating) else {
        return next.run(req).await;
    };
    let Some(key) = key.to_str().ok().filter(|k| valid_key(k)).map(str::to_owned) else {
        return ApiError::IdempotencyKeyInvalid.into_response();
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return ApiError::BodyTooLarge.into_response();
    };
    // Keys belong to a person; without valid credentials (or a session's CSRF token) the
    // handler answers 401 or 403 itself, and nothing is recorded under the key.
    let person = match Credential::of(&parts) {
        Ok(Some(c)) => state.engine.authenticate(c.token()).await.ok().map(|(p, _)| p.id),
        _ => None,
    };
    let Some(person) = person else {
        return next.run(Request::from_parts(parts, Body::from(bytes))).await;
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let hash: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let store = &state.engine.store;
    match store
        .idempotency_begin(person, &key, &hash, state.engine.now())
        .await
    {
        Err(e) => ApiError::from(EngineError::Store(e)).into_response(),
        Ok(Idempotency::Mismatch) => ApiError::IdempotencyKeyReused.into_response(),
        Ok(Idempotency::InProgress) => ApiError::IdempotencyInProgress.into_response(),
        Ok(Idempotency::Done { status, body }) => replay(status, body),
        // Run to the end on a task of its own: should the phone's connection close first (a
        // network change, a lost answer), dropping the handler midway would leave the key
        // claimed with no answer, and every replay a 409 for good.
        Ok(Idempotency::Started) => {
            let run = tokio::spawn(
                answer_once(state.clone(), person, key.clone(), parts, bytes, next)
                    .instrument(tracing::Span::current()),
            );
            match run.await {
                Ok(response) => response,
                Err(_) => {
                    let _ = store.idempotency_abandon(person, &key).await;
                    ApiError::Internal("the handler failed".into()).into_response()
                }
            }
        }
    }
}

/// Runs the claimed request and stores its answer under `key` (a 5xx releases the key).
async fn answer_once(
    state: AppState,
    person: PersonId,
    key: String,
    parts: Parts,
    bytes: Bytes,
    next: Next,
) -> Response {
    let store = &state.engine.store;
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (mut head, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        let _ = store.idempotency_abandon(person, &key).await;
        return ApiError::Internal("unreadable response body".into()).into_response();
    };
    let saved = if head.status.is_server_error() {
        store.idempotency_abandon(person, &key).await
    } else {
        store
            .idempotency_finish(
                person,
                &key,
                head.status.as_u16(),
                &String::from_utf8_lossy(&body),
            )
            .await
    };
    if let Err(e) = saved {
        tracing::error!(error = %e, "could not record an idempotent answer");
    }
    head.headers.remove(REPLAYED);
    Response::from_parts(head, Body::from(body))
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    let mut response = (status, [(CONTENT_TYPE, content_type)], body).into_response();
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
