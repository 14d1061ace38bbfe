//! Local fakes of the SMS providers' HTTP APIs, on 127.0.0.1 and a free port.
//!
//! Each fake checks what the real API documents: the method and path, the credentials, the
//! content type and the fields. A request that gets any of it wrong is answered as the
//! provider would (401 or 400). A request that gets it right is recorded and answered as the
//! test asked: accepted with a fresh id, or with 429, 500 or any other status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use serde_json::{Value, json};

/// Which API a fake speaks, and the credentials it accepts.
#[derive(Debug, Clone)]
enum Kind {
    GatewayApi { token: String },
    Elks46 { username: String, password: String },
    Twilio { account_sid: String, auth_token: String },
}

/// How the fake answers the next well-formed requests.
#[derive(Debug, Clone)]
pub enum Answer {
    /// As the provider does on success, with a fresh id.
    Accept,
    /// A 2xx whose body is not what the provider documents.
    AcceptUnreadably,
    /// 429 with this `Retry-After`.
    TooManyRequests { retry_after: String },
    /// This status, with a short error body.
    Status(u16),
    /// Accept, but only after this long.
    Slowly(Duration),
}

/// A well-formed request the fake received: its fields, as strings or JSON.
#[derive(Debug, Clone)]
pub struct Received {
    pub fields: BTreeMap<String, Value>,
}

impl Received {
    /// A field's text (form fields are always text).
    pub fn text(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no text field {name} in {:?}", self.fields))
    }
}

struct Shared {
    kind: Kind,
    answer: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
    next_id: Mutex<u64>,
}

/// A running fake provider; it stops when dropped.
pub struct FakeProvider {
    pub base_url: Url,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeProvider {
    pub async fn gatewayapi(token: &str) -> Self {
        Self::start(Kind::GatewayApi { token: token.into() }).await
    }

    pub async fn elks46(username: &str, password: &str) -> Self {
        Self::start(Kind::Elks46 {
            username: username.into(),
            password: password.into(),
        })
        .await
    }

    pub async fn twilio(account_sid: &str, auth_token: &str) -> Self {
        Self::start(Kind::Twilio {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
        })
        .await
    }

    async fn start(kind: Kind) -> Self {
        let shared = Arc::new(Shared {
            kind,
            answer: Mutex::new(Answer::Accept),
            received: Mutex::default(),
            next_id: Mutex::new(1_000_001),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake provider runs");
        });
        Self {
            base_url: Url::parse(&format!("http://{address}")).expect("a URL"),
            shared,
            server,
        }
    }

    /// Answer the following requests so.
    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// The well-formed requests so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected_path = match &shared.kind {
        Kind::GatewayApi { .. } => "/rest/mtsms".to_string(),
        Kind::Elks46 { .. } => "/a1/sms".to_string(),
        Kind::Twilio { account_sid, .. } => {
            format!("/2010-04-01/Accounts/{account_sid}/Messages.json")
        }
    };
    if method != Method::POST || uri.path() != expected_path {
        return (StatusCode::NOT_FOUND, "no such resource").into_response();
    }
    if !authorized(&shared.kind, &headers) {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let fields = match &shared.kind {
        Kind::GatewayApi { .. } => gatewayapi_fields(content_type, &body),
        Kind::Elks46 { .. } => form_fields(content_type, &body, &["from", "to", "message"]),
        Kind::Twilio { .. } => form_fields(content_type, &body, &["To", "From", "Body"]),
    };
    let fields = match fields {
        Ok(fields) => fields,
        Err(problem) => return (StatusCode::BAD_REQUEST, problem).into_response(),
    };
    shared.received.lock().unwrap().push(Received { fields });

    let answer = shared.answer.lock().unwrap().clone();
    match answer {
        Answer::Accept => accept(&shared),
        Answer::AcceptUnreadably => (StatusCode::OK, "queued, thanks").into_response(),
        Answer::TooManyRequests { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, retry_after)],
            "slow down",
        )
            .into_response(),
        Answer::Status(status) => (
            StatusCode::from_u16(status).expect("a status code"),
            "as the test asked",
        )
            .into_response(),
        Answer::Slowly(delay) => {
            tokio::time::sleep(delay).await;
            accept(&shared)
        }
    }
}

/// The success answer each API documents, with a fresh id.
fn accept(shared: &Shared) -> Response {
    let id = {
        let mut next = shared.next_id.lock().unwrap();
        *next += 1;
        *next
    };
    match shared.kind {
        Kind::GatewayApi { .. } => axum::Json(json!({
            "ids": [id],
            "usage": {"countries": {"DK": 1}, "currency": "DKK", "total_cost": 0.12},
        }))
        .into_response(),
        Kind::Elks46 { .. } => axum::Json(json!({
            "status": "created",
            "direction": "outgoing",
            "id": format!("s{id}"),
            "parts": 1,
        }))
        .into_response(),
        Kind::Twilio { .. } => (
            StatusCode::CREATED,
            axum::Json(json!({"sid": format!("SM{id}"), "status": "queued"})),
        )
            .into_response(),
    }
}

fn authorized(kind: &Kind, headers: &HeaderMap) -> bool {
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let basic = |user: &str, password: &str| {
        auth == format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    };
    match kind {
        // Documented: `Token <token>`, or basic auth with the token as the username.
        Kind::GatewayApi { token } => auth == format!("Token {token}") || basic(token, ""),
        Kind::Elks46 { username, password } => basic(username, password),
        Kind::Twilio {
            account_sid,
            auth_token,
        } => basic(account_sid, auth_token),
    }
}

/// GatewayAPI's JSON: `sender`, `message`, `userref` and one `recipients[].msisdn` integer.
fn gatewayapi_fields(content_type: &str, body: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    if !content_type.starts_with("application/json") {
        return Err(format!("expected JSON, got {content_type:?}"));
    }
    let fields: BTreeMap<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON object: {e}"))?;
    for name in ["sender", "message", "userref"] {
        if !fields.get(name).is_some_and(Value::is_string) {
            return Err(format!("{name} must be a string"));
        }
    }
    let recipients = fields
        .get("recipients")
        .and_then(Value::as_array)
        .ok_or("recipients must be an array")?;
    if recipients.is_empty() || !recipients.iter().all(|r| r["msisdn"].is_u64()) {
        return Err("each recipient needs an integer msisdn".into());
    }
    Ok(fields)
}

/// A form with at least the `required` fields, each given once.
fn form_fields(
    content_type: &str,
    body: &[u8],
    required: &[&str],
) -> Result<BTreeMap<String, Value>, String> {
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(format!("expected a form, got {content_type:?}"));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("not a form: {e}"))?;
    let mut fields = BTreeMap::new();
    for (name, value) in pairs {
        if fields.insert(name.clone(), Value::String(value)).is_some() {
            return Err(format!("{name} given twice"));
        }
    }
    for name in required {
        if !fields.contains_key(*name) {
            return Err(format!("{name} is required"));
        }
    }
    Ok(fields)
}
