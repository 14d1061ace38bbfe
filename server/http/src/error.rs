//! `ApiError`: every failure as an RFC 9457 problem with a stable `type`.
//! A 5xx is logged once here and never explained to the client.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use makker_domain::Refusal;
use makker_domain::text::Lang;
use makker_engine::EngineError;
use makker_mobile_api::Problem;
use makker_store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_PREFIX: &str = "urn:makker:problem:";

#[derive(Debug)]
pub enum ApiError {
    /// A service call failed; the language is the caller's, for refusal texts.
    Engine(EngineError, Lang),
    MalformedJson(String),
    InvalidBody(String),
    InvalidQuery(String),
    Invalid(String),
    UnsupportedMediaType,
    BodyTooLarge,
    Unauthorized,
    /// A state-changing request by session cookie without its CSRF token.
    Csrf,
    NotFound,
    MethodNotAllowed,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    IdempotencyInProgress,
    WebhookUnauthenticated,
    UnknownSender,
    /// Single sign-on: the provider's answer or ID token was not good enough (why, for the log
    /// and the administrator).
    SsoRefused(String),
    /// Single sign-on: a valid identity that no Makker person has.
    SsoUnknownPerson,
    /// Single sign-on: the flow is unknown, used, expired, or from another browser.
    SsoState,
    /// Single sign-on: the identity provider cannot be reached or answers nonsense.
    SsoUnavailable(String),
    Internal(String),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e, Lang::Da)
    }
}

fn refusal_status(r: &Refusal) -> StatusCode {
    use Refusal::*;
    match r {
        NotParticipant | OnlyObserverWithdraws => StatusCode::FORBIDDEN,
        AlreadyInVisit | AlreadyOnShift | NotOnShift | VisitEnded | AlreadyCheckedOut
        | AlreadyParticipant => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl ApiError {
    /// Status, type slug, title, detail and (for refusals) the reason code.
    fn parts(
        &self,
    ) -> (
        StatusCode,
        &'static str,
        &'static str,
        Option<String>,
        Option<&'static str>,
    ) {
        use StatusCode as S;
        match self {
            ApiError::Engine(EngineError::Refused(r), lang) => (
                refusal_status(r),
                r.code(),
                "Refused",
                Some(r.message(*lang)),
                Some(r.code()),
            ),
            ApiError::Engine(EngineError::NotFound(what), _) => (
                S::NOT_FOUND,
                "not-found",
                "Not found",
                Some(format!("{what} not found")),
                None,
            ),
            ApiError::Engine(EngineError::Unauthorized, _) | ApiError::Unauthorized => (
                S::UNAUTHORIZED,
                "unauthorized",
                "Not signed in",
                Some("Sign in again: the token is missing, expired or revoked.".into()),
                None,
            ),
            ApiError::Engine(EngineError::LockedOut { until }, _) => (
                S::TOO_MANY_REQUESTS,
                "locked-out",
                "Too many failed sign-ins",
                Some(format!(
                    "This username is locked until {} UTC after too many wrong passwords. \
                     Phones already signed in keep working.",
                    until.format("%H:%M")
                )),
                None,
            ),
            ApiError::Engine(EngineError::Forbidden, _) => (
                S::FORBIDDEN,
                "forbidden",
                "Forbidden",
                Some("Your role may not do this.".into()),
                None,
            ),
            ApiError::Engine(EngineError::Invalid(m), _) | ApiError::Invalid(m) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid-input",
                "Invalid input",
                Some(m.clone()),
                None,
            ),
            ApiError::Engine(EngineError::ClockSkew, _) => (
                S::UNPROCESSABLE_ENTITY,
                "clock-skew",
                "Time out of range",
                Some("The phone's time is too far from the server's.".into()),
                None,
            ),
            ApiError::Engine(EngineError::Busy, _) => (
                S::CONFLICT,
                "busy",
                "Busy",
                Some("Someone changed this at the same moment; try again.".into()),
                None,
            ),
            ApiError::Engine(EngineError::Store(StoreError::Transient(_)), _) => (
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
                None,
                None,
            ),
            ApiError::Engine(EngineError::Store(_), _) | ApiError::Internal(_) => {
                (S::INTERNAL_SERVER_ERROR, "internal", "Internal error", None, None)
            }
            ApiError::MalformedJson(m) => (
                S::BAD_REQUEST,
                "malformed-json",
                "Malformed JSON",
                Some(m.clone()),
                None,
            ),
            ApiError::InvalidBody(m) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid body",
                Some(m.clone()),
                None,
            ),
            ApiError::InvalidQuery(m) => (
                S::BAD_REQUEST,
                "invalid-query",
                "Invalid query",
                Some(m.clone()),
                None,
            ),
            ApiError::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                Some("Send JSON with Content-Type: application/json.".into()),
                None,
            ),
            ApiError::BodyTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                None,
                None,
            ),
            ApiError::NotFound => (S::NOT_FOUND, "not-found", "Not found", None, None),
            ApiError::Csrf => (
                S::FORBIDDEN,
                "csrf",
                "Missing CSRF token",
                Some(format!(
                    "Send the session's CSRF token in {}.",
                    crate::extract::CSRF_HEADER
                )),
                None,
            ),
            ApiError::WebhookUnauthenticated => (
                S::FORBIDDEN,
                "webhook-unauthenticated",
                "Webhook not verified",
                Some("The signature or shared secret is missing or wrong.".into()),
                None,
            ),
            ApiError::UnknownSender => (
                S::FORBIDDEN,
                "unknown-sender",
                "Unknown sender",
                Some("This number belongs to nobody here.".into()),
                None,
            ),
            ApiError::SsoRefused(why) => (
                S::UNAUTHORIZED,
                "sso-refused",
                "Single sign-on refused",
                Some(format!("The sign-in was not accepted: {why}.")),
                None,
            ),
            ApiError::SsoUnknownPerson => (
                S::FORBIDDEN,
                "sso-unknown-person",
                "No Makker account",
                Some("You signed in, but no one in Makker has this username. Ask an administrator.".into()),
                None,
            ),
            ApiError::SsoState => (
                S::BAD_REQUEST,
                "sso-state",
                "Sign-in expired or already used",
                Some("Start the sign-in again from this browser.".into()),
                None,
            ),
            ApiError::SsoUnavailable(_) => (
                S::BAD_GATEWAY,
                "sso-unavailable",
                "Identity provider unavailable",
                None,
                None,
            ),
            ApiError::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                None,
                None,
            ),
            ApiError::IdempotencyKeyInvalid => (
                S::BAD_REQUEST,
                "idempotency-key-invalid",
                "Invalid Idempotency-Key",
                Some("An Idempotency-Key is 1 to 255 visible ASCII characters.".into()),
                None,
            ),
            ApiError::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                Some("This Idempotency-Key was used for a different request.".into()),
                None,
            ),
            ApiError::IdempotencyInProgress => (
                S::CONFLICT,
                "idempotency-in-progress",
                "Request in progress",
                Some("A request with this Idempotency-Key is still being handled.".into()),
                None,
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title, detail, reason) = self.parts();
        Problem {
            type_: format!("{TYPE_PREFIX}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            reason: reason.map(str::to_owned),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(error = ?self, "request failed");
        }
        let status = StatusCode::from_u16(problem.status).expect("BUG: problem statuses are valid");
        let body = serde_json::to_string(&problem).expect("BUG: a problem serializes");
        (status, [(CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}
