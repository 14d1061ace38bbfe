//! A local fake of 46elks' SMS API (`POST /a1/sms`, HTTP basic auth, form-encoded `from`,
//! `to`, `message`; the answer is JSON with the message's `id`), as documented. It records
//! the messages it accepts; tests use it as the failover provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

pub const USERNAME: &str = "u-fake";
pub const PASSWORD: &str = "fake-46elks-password";

/// One accepted message: its form fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub from: String,
    pub to: String,
    pub message: String,
}

#[derive(Clone, Default)]
pub struct Fake46elks {
    received: Arc<Mutex<Vec<Sent>>>,
    pub base_url: String,
}

impl Fake46elks {
    /// Starts on 127.0.0.1:0.
    pub async fn start() -> Fake46elks {
        let mut fake = Fake46elks::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        fake.base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/a1/sms", post(sms))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// Accepted messages, in order.
    pub fn received(&self) -> Vec<Sent> {
        self.received.lock().unwrap().clone()
    }
}

async fn sms(
    State(fake): State<Fake46elks>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let expected = format!("Basic {}", STANDARD.encode(format!("{USERNAME}:{PASSWORD}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            "API access requires Basic HTTP authentication",
        )
            .into_response();
    }
    let field = |name: &str| form.get(name).cloned();
    let (Some(from), Some(to), Some(message)) = (field("from"), field("to"), field("message")) else {
        return (StatusCode::BAD_REQUEST, "Missing key from, to or message").into_response();
    };
    let mut received = fake.received.lock().unwrap();
    received.push(Sent { from, to, message });
    let id = format!("s{:016x}", received.len());
    Json(json!({"status": "created", "direction": "outgoing", "id": id, "parts": 1})).into_response()
}
