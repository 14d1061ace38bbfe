//! A local fake of GatewayAPI's SMS API (`POST /rest/mtsms`, token auth, JSON), speaking its
//! documented request and answer shapes. It records what it receives and answers what the
//! test scripts: the next statuses (e.g. 500, 429 with `Retry-After`), then 200. It can answer
//! after a delay, as a slow provider does, and records when each message arrived (the
//! benchmarks measure escalation latency up to that moment).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const TOKEN: &str = "fake-gatewayapi-token";

#[derive(Default)]
struct Inner {
    /// Accepted messages with the wall-clock time their request arrived.
    received: Vec<(SystemTime, Value)>,
    script: VecDeque<(u16, Option<u64>)>,
    next_id: u64,
    delay: Duration,
}

#[derive(Clone, Default)]
pub struct FakeGatewayApi {
    inner: Arc<Mutex<Inner>>,
    pub base_url: String,
}

impl FakeGatewayApi {
    /// Starts on 127.0.0.1:0.
    pub async fn start() -> FakeGatewayApi {
        let mut fake = FakeGatewayApi::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        fake.base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/rest/mtsms", post(mtsms))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The next answers, in order: a status and an optional `Retry-After` in seconds.
    pub fn script(&self, answers: &[(u16, Option<u64>)]) {
        self.inner.lock().unwrap().script.extend(answers.iter().copied());
    }

    /// Answers every request `delay` after it arrived (zero, the default, answers at once).
    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// Accepted messages' bodies, in order.
    pub fn received(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .received
            .iter()
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Accepted messages with the wall-clock time each request arrived, in order.
    pub fn received_at(&self) -> Vec<(SystemTime, Value)> {
        self.inner.lock().unwrap().received.clone()
    }
}

async fn mtsms(State(fake): State<FakeGatewayApi>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let arrived = SystemTime::now();
    let delay = fake.inner.lock().unwrap().delay;
    let response = answer(&fake, &headers, body, arrived);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// The answer to one request, recording it when accepted.
fn answer(fake: &FakeGatewayApi, headers: &HeaderMap, body: Value, arrived: SystemTime) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Token {TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "bad token"}))).into_response();
    }
    let well_formed = body["message"].is_string()
        && body["recipients"][0]["msisdn"].is_number()
        && body["userref"].is_string();
    if !well_formed {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "bad request"}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    if let Some((status, retry_after)) = inner.script.pop_front() {
        let mut response = (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "scripted"})),
        )
            .into_response();
        if let Some(s) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", s.to_string().parse().unwrap());
        }
        return response;
    }
    inner.next_id += 1;
    let id = inner.next_id;
    inner.received.push((arrived, body));
    Json(json!({"ids": [id], "usage": {"total_cost": 0.0}})).into_response()
}
