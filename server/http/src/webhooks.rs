//! Provider webhooks: delivery reports and inbound SMS ("OK", "OUT 1234").
//!
//! Invariant: nothing is read before the provider's signature (Twilio: HMAC-SHA1 of our public
//! URL and the form; GatewayAPI: an HS256 JWT) or shared secret (46elks: in the callback URL)
//! is verified. Refusals are logged with the sender's number masked.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use makker_notify::mask_phone;
use makker_notify::sms::{
    DeliveryReport, Elks46Webhook, GatewayApiEvent, GatewayApiWebhook, InboundSms, Secret, TwilioWebhook,
    WebhookError,
};

use crate::AppState;
use crate::error::ApiError;

/// The verifiers for the configured providers, and the public address providers call.
#[derive(Clone, Default)]
pub struct Webhooks {
    /// e.g. `https://makker.aarhus.dk`: Twilio signs the URL it called.
    pub public_url: String,
    pub gatewayapi: Option<GatewayApiWebhook>,
    pub elks46: Option<Elks46Webhook>,
    pub twilio: Option<TwilioWebhook>,
}

impl Webhooks {
    pub fn new(public_url: &str, webhook_secret: Option<&str>, twilio_auth_token: Option<&str>) -> Self {
        Webhooks {
            public_url: public_url.trim_end_matches('/').to_owned(),
            gatewayapi: webhook_secret.map(|s| GatewayApiWebhook::new(Secret::new(s))),
            elks46: webhook_secret.map(|s| Elks46Webhook::new(Secret::new(s))),
            twilio: twilio_auth_token.map(|t| TwilioWebhook::new(Secret::new(t))),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/sms/{provider}/{kind}", post(receive))
}

enum Event {
    Delivery(DeliveryReport),
    Inbound(InboundSms),
}

fn form(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|e| ApiError::InvalidBody(e.to_string()))
}

fn refused(e: WebhookError) -> ApiError {
    tracing::warn!(error = %e, "a webhook was refused");
    match e {
        WebhookError::Unauthenticated => ApiError::WebhookUnauthenticated,
        e => ApiError::InvalidBody(e.to_string()),
    }
}

async fn receive(
    State(state): State<AppState>,
    Path((provider, kind)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let hooks = &state.webhooks;
    let url = format!(
        "{}{}",
        hooks.public_url,
        uri.path_and_query().map_or("", |p| p.as_str())
    );
    let inbound = match kind.as_str() {
        "inbound" => true,
        "delivery" => false,
        _ => return Err(ApiError::NotFound),
    };
    let event = match provider.as_str() {
        "twilio" => {
            let hook = hooks.twilio.as_ref().ok_or(ApiError::NotFound)?;
            let signature = headers
                .get(makker_notify::sms::twilio::SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok());
            let signature = signature.ok_or(ApiError::WebhookUnauthenticated)?;
            let form = form(&body)?;
            if inbound {
                Event::Inbound(hook.inbound(&url, &form, signature).map_err(refused)?)
            } else {
                Event::Delivery(hook.delivery_report(&url, &form, signature).map_err(refused)?)
            }
        }
        "46elks" => {
            let hook = hooks.elks46.as_ref().ok_or(ApiError::NotFound)?;
            let form = form(&body)?;
            if inbound {
                Event::Inbound(hook.inbound(&url, &form).map_err(refused)?)
            } else {
                Event::Delivery(hook.delivery_report(&url, &form).map_err(refused)?)
            }
        }
        "gatewayapi" => {
            let hook = hooks.gatewayapi.as_ref().ok_or(ApiError::NotFound)?;
            let token = headers
                .get(makker_notify::sms::gatewayapi::SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok());
            match hook
                .event(token.ok_or(ApiError::WebhookUnauthenticated)?)
                .map_err(refused)?
            {
                GatewayApiEvent::Status(report) => Event::Delivery(report),
                GatewayApiEvent::Inbound(sms) => Event::Inbound(sms),
            }
        }
        _ => return Err(ApiError::NotFound),
    };
    match event {
        Event::Delivery(report) => {
            let Ok(id) = report.reference.parse::<uuid::Uuid>() else {
                return Ok(StatusCode::NO_CONTENT);
            };
            let status = format!("{:?}: {}", report.outcome, report.provider_status).to_lowercase();
            match state
                .engine
                .store
                .record_receipt(id, &status, state.engine.now())
                .await
            {
                Ok(()) | Err(makker_store::StoreError::NotFound) => Ok(StatusCode::NO_CONTENT),
                Err(e) => Err(ApiError::from(makker_engine::EngineError::Store(e))),
            }
        }
        Event::Inbound(sms) => match state.engine.sms_command(&sms.from, sms.command()).await {
            Ok(_) => Ok(StatusCode::NO_CONTENT),
            Err(makker_engine::EngineError::Unauthorized) => {
                tracing::warn!(from = %mask_phone(&sms.from), "an SMS from an unknown sender was refused");
                Err(ApiError::UnknownSender)
            }
            Err(e) => Err(ApiError::from(e)),
        },
    }
}
