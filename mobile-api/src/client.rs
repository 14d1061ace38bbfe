//! A typed client for the mobile API v1. The end-to-end tests drive the server through it,
//! exactly as a phone would.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem.
    #[error("{} {}", .0.status, .0.type_)]
    Problem(Problem),
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected answer {status}: {body}")]
    Unexpected { status: StatusCode, body: String },
}

impl ClientError {
    /// The problem, for tests that expect one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Problem(p) => Some(p),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// reqwest is built on rustls without a default crypto provider: install ring first.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    lang: Option<String>,
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            base: base.into().trim_end_matches('/').to_owned(),
            http: http_client(),
            token: None,
            lang: None,
        }
    }

    /// The same client, signed in with a device token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same client, asking for answers in a language (`Accept-Language`).
    pub fn with_lang(&self, lang: &str) -> Self {
        Client {
            lang: Some(lang.to_owned()),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request builder with the token and language set, for calls this client has no method for.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(l) = &self.lang {
            r = r.header("accept-language", l);
        }
        r
    }

    async fn send<T: DeserializeOwned>(&self, r: RequestBuilder) -> Result<T> {
        let response = r.send().await?;
        let status = response.status();
        let body = response.text().await?;
        if status.is_success() {
            let text = if body.is_empty() { "null" } else { &body };
            return serde_json::from_str(text).map_err(|_| ClientError::Unexpected { status, body });
        }
        match serde_json::from_str::<Problem>(&body) {
            Ok(p) => Err(ClientError::Problem(p)),
            Err(_) => Err(ClientError::Unexpected { status, body }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// POST with an `Idempotency-Key`, as the phone's offline queue sends.
    ///
    /// # Errors
    /// The server's problem or a transport failure.
    pub async fn post_idempotent<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        body: &B,
    ) -> Result<T> {
        self.send(
            self.request(Method::POST, path)
                .header(IDEMPOTENCY_KEY, key)
                .json(body),
        )
        .await
    }

    /// # Errors
    /// 401 for a wrong username or password.
    pub async fn login(&self, username: &str, password: &str, device_name: &str) -> Result<LoginResponse> {
        let req = LoginRequest {
            username: username.into(),
            password: password.into(),
            device_name: device_name.into(),
        };
        self.post("/api/v1/auth/login", &req).await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn logout(&self) -> Result<()> {
        self.post("/api/v1/auth/logout", &()).await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn me(&self) -> Result<PersonView> {
        self.get("/api/v1/me").await
    }

    /// # Errors
    /// 404 for someone else's device (unless admin).
    pub async fn revoke_device(&self, id: Uuid) -> Result<()> {
        self.send(self.request(Method::DELETE, &format!("/api/v1/devices/{id}")))
            .await
    }

    /// # Errors
    /// 409 when already on shift.
    pub async fn start_shift(&self, team_id: Option<Uuid>) -> Result<ShiftView> {
        self.post("/api/v1/shift/start", &ShiftRequest { team_id }).await
    }

    /// # Errors
    /// 409 when not on shift or still in a visit.
    pub async fn end_shift(&self) -> Result<ShiftView> {
        self.post("/api/v1/shift/end", &()).await
    }

    /// # Errors
    /// 409 when not on shift; 422 for a level over 100.
    pub async fn report_status(&self, battery_pct: u8, charging: Option<bool>) -> Result<PhoneStatusView> {
        self.post(
            "/api/v1/shift/status",
            &StatusRequest {
                battery_pct,
                charging,
            },
        )
        .await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn colleagues(&self) -> Result<Vec<ColleagueView>> {
        self.get("/api/v1/colleagues").await
    }

    /// # Errors
    /// 422 for a position or radius out of range.
    pub async fn places_near(&self, lat: f64, lon: f64, radius_m: f64) -> Result<Vec<NearbyPlaceView>> {
        self.get(&format!(
            "/api/v1/places/near?lat={lat}&lon={lon}&radius_m={radius_m}"
        ))
        .await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn questions(&self) -> Result<Vec<QuestionView>> {
        self.get("/api/v1/assessment/questions").await
    }

    /// # Errors
    /// 403 unless a supervisor or admin.
    pub async fn approve_lone(&self, worker_id: Uuid, place_id: Uuid) -> Result<LoneApprovalView> {
        self.post(
            "/api/v1/lone-approvals",
            &LoneApprovalRequest { worker_id, place_id },
        )
        .await
    }

    /// # Errors
    /// 404 for a place of another team; 422 for unknown answers.
    pub async fn ask_lone_approval(&self, req: &LoneApprovalAsk) -> Result<LoneApprovalAskView> {
        self.post("/api/v1/lone-approvals/requests", req).await
    }

    /// # Errors
    /// 403 unless a supervisor or admin; 404 unless an open ask of my teams.
    pub async fn decline_lone_ask(&self, request_id: Uuid) -> Result<()> {
        self.send(self.request(
            Method::POST,
            &format!("/api/v1/lone-approvals/requests/{request_id}/decline"),
        ))
        .await
    }

    /// # Errors
    /// 404 unless my own ask, or one of my team's for a supervisor, and recent.
    pub async fn lone_approval_ask(&self, request_id: Uuid) -> Result<LoneApprovalAskView> {
        self.get(&format!("/api/v1/lone-approvals/requests/{request_id}"))
            .await
    }

    /// # Errors
    /// 422 for a bad position or time.
    pub async fn sos(&self, req: &EventRequest) -> Result<AlarmView> {
        self.post("/api/v1/sos", req).await
    }

    /// # Errors
    /// 422 for an endpoint or keys that are not usable.
    pub async fn subscribe_push(&self, req: &PushSubscriptionRequest) -> Result<()> {
        self.post("/api/v1/push/subscriptions", req).await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn push_key(&self) -> Result<PushKeyView> {
        self.get("/api/v1/push/key").await
    }

    /// # Errors
    /// 403 unless a supervisor or admin.
    pub async fn start_drill(&self, req: &DrillRequest) -> Result<Vec<AlarmView>> {
        self.post("/api/v1/drills", req).await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn alarms(&self) -> Result<Vec<AlarmView>> {
        self.get("/api/v1/alarms").await
    }

    /// # Errors
    /// 401 without a valid token.
    pub async fn location_views(&self) -> Result<Vec<LocationViewEntry>> {
        self.get("/api/v1/me/location-views").await
    }

    /// # Errors
    /// 401 without a valid token.
    pub async fn export(&self) -> Result<serde_json::Value> {
        self.get("/api/v1/me/export").await
    }

    /// # Errors
    /// 403 for workers; 404 for another team's alarm.
    pub async fn deliveries(&self, id: Uuid) -> Result<Vec<DeliveryView>> {
        self.get(&format!("/api/v1/alarms/{id}/deliveries")).await
    }

    /// # Errors
    /// 422 for my own alarm or one a colleague took.
    pub async fn acknowledge(&self, id: Uuid) -> Result<AlarmView> {
        self.post(&format!("/api/v1/alarms/{id}/acknowledge"), &()).await
    }

    /// # Errors
    /// 422 unless I own the acknowledged alarm.
    pub async fn resolve(&self, id: Uuid, req: &ResolveRequest) -> Result<AlarmView> {
        self.post(&format!("/api/v1/alarms/{id}/resolve"), req).await
    }

    /// # Errors
    /// The policy's refusal (422), or 409 when already in a visit.
    pub async fn start_visit(&self, req: &StartVisitRequest) -> Result<VisitView> {
        self.post("/api/v1/visits", req).await
    }

    /// # Errors
    /// 401 when not signed in.
    pub async fn active_visit(&self) -> Result<Option<VisitView>> {
        self.get::<ActiveVisitResponse>("/api/v1/visits/active")
            .await
            .map(|r| r.visit)
    }

    /// # Errors
    /// 404 for unknown visits and other teams' visits.
    pub async fn visit(&self, id: Uuid) -> Result<VisitView> {
        self.get(&format!("/api/v1/visits/{id}")).await
    }

    /// # Errors
    /// See the API.
    pub async fn join(&self, id: Uuid, req: &JoinRequest) -> Result<VisitView> {
        self.post(&format!("/api/v1/visits/{id}/join"), req).await
    }

    /// # Errors
    /// See the API.
    pub async fn check_in(&self, id: Uuid, req: &EventRequest) -> Result<VisitView> {
        self.post(&format!("/api/v1/visits/{id}/check-in"), req).await
    }

    /// # Errors
    /// See the API.
    pub async fn heartbeat(&self, id: Uuid, req: &EventRequest) -> Result<VisitView> {
        self.post(&format!("/api/v1/visits/{id}/heartbeat"), req).await
    }

    /// # Errors
    /// See the API.
    pub async fn extend(&self, id: Uuid, req: &ExtendRequest) -> Result<VisitView> {
        self.post(&format!("/api/v1/visits/{id}/extend"), req).await
    }

    /// # Errors
    /// See the API.
    pub async fn check_out(&self, id: Uuid, req: &CheckOutRequest) -> Result<VisitView> {
        self.post(&format!("/api/v1/visits/{id}/check-out"), req).await
    }

    /// # Errors
    /// See the API.
    pub async fn withdraw(&self, id: Uuid, req: &EventRequest) -> Result<VisitView> {
        self.post(&format!("/api/v1/visits/{id}/withdraw"), req).await
    }
}
