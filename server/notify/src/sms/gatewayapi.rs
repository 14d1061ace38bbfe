//! GatewayAPI (Denmark): `POST {base}/rest/mtsms` with a JSON body, and webhooks signed as a
//! JWT in `X-Gwapi-Signature`.
//!
//! Protocol: the body is `{sender, message, recipients: [{msisdn}], userref}` (plus
//! `callback_url` when configured), authenticated with `Authorization: Token <token>`; a 2xx
//! answer carries `{"ids": [<id>]}`. Status notifications and received messages come to our
//! webhook with the whole event as the claims of an HS256 JWT signed with the webhook secret
//! we chose in GatewayAPI's dashboard; the request body repeats the claims unsigned, so only
//! the claims are read.
//!
//! Invariants:
//! - Our reference goes out as `userref` and comes back in the status claims; a status without
//!   it is an error.
//! - A token is believed only if its header says `HS256` and its HMAC-SHA256 matches in
//!   constant time; an empty webhook secret believes nothing.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::http::{self, json_text};
use super::webhook::{DeliveryOutcome, DeliveryReport, WebhookError};
use super::{InboundSms, Secret, Sms, SmsProvider};
use crate::{Receipt, SendError};

/// The header GatewayAPI puts the signed JWT in.
pub const SIGNATURE_HEADER: &str = "X-Gwapi-Signature";

/// How to reach GatewayAPI.
#[derive(Debug, Clone)]
pub struct GatewayApiConfig {
    /// [`GatewayApiConfig::DEFAULT_BASE_URL`], or `https://gatewayapi.eu` for the EU platform.
    pub base_url: Url,
    /// The API token from the dashboard.
    pub token: Secret,
    /// Up to 11 letters and digits, or 15 digits.
    pub sender: String,
    /// Where status notifications go; without it, the account's default webhook.
    pub callback_url: Option<Url>,
}

impl GatewayApiConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://gatewayapi.com";
}

/// Sends through GatewayAPI's REST API.
#[derive(Debug, Clone)]
pub struct GatewayApi {
    config: GatewayApiConfig,
    client: reqwest::Client,
}

impl GatewayApi {
    pub const NAME: &'static str = "gatewayapi";

    /// A provider sending with `client` (see [`super::http_client`]).
    pub fn new(config: GatewayApiConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }
}

#[derive(Serialize)]
struct MtSms<'a> {
    sender: &'a str,
    message: &'a str,
    recipients: [Recipient; 1],
    userref: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Recipient {
    msisdn: u64,
}

/// `+4520123456` → `4520123456`, the integer MSISDN GatewayAPI documents.
fn msisdn(e164: &str) -> Option<u64> {
    let digits = e164.strip_prefix('+')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[async_trait]
impl SmsProvider for GatewayApi {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn send(&self, sms: &Sms) -> Result<Receipt, SendError> {
        let msisdn = msisdn(&sms.to).ok_or_else(|| SendError::Permanent {
            reason: "recipient is not an E.164 number".into(),
        })?;
        let mut auth =
            HeaderValue::try_from(format!("Token {}", self.config.token.expose())).map_err(|_| {
                SendError::Permanent {
                    reason: "the GatewayAPI token cannot be sent in a header".into(),
                }
            })?;
        auth.set_sensitive(true);
        let body = MtSms {
            sender: &self.config.sender,
            message: &sms.text,
            recipients: [Recipient { msisdn }],
            userref: &sms.reference,
            callback_url: self.config.callback_url.as_ref().map(Url::as_str),
        };
        let request = self
            .client
            .post(http::endpoint(&self.config.base_url, &["rest", "mtsms"]))
            .header(AUTHORIZATION, auth)
            .json(&body);
        http::send(Self::NAME, sms, request, "/ids/0").await
    }
}

/// Verifies a GatewayAPI webhook JWT against our webhook `secret` and returns its claims.
///
/// # Errors
///
/// [`WebhookError::Unauthenticated`] when the token is not three parts, its header does not
/// say HS256, its signature does not match, or `secret` is empty;
/// [`WebhookError::Malformed`] when a correctly signed token does not hold JSON objects.
pub fn verify_jwt(secret: &str, token: &str) -> Result<Map<String, Value>, WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::Unauthenticated);
    }
    let mut parts = token.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WebhookError::Unauthenticated);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| WebhookError::Unauthenticated)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("BUG: HMAC accepts keys of any length");
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    // INVARIANT: constant-time comparison of the whole tag.
    mac.verify_slice(&signature)
        .map_err(|_| WebhookError::Unauthenticated)?;
    // Only HS256 is ours; a header naming another algorithm was not signed the way we check.
    if json_object(header)?.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(WebhookError::Unauthenticated);
    }
    json_object(claims)
}

fn json_object(part: &str) -> Result<Map<String, Value>, WebhookError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| WebhookError::Malformed(format!("jwt part is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| WebhookError::Malformed(format!("jwt part is not a JSON object: {e}")))
}

/// What a GatewayAPI webhook told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayApiEvent {
    /// A status notification for a message we sent.
    Status(DeliveryReport),
    /// A message a phone sent to our number or keyword.
    Inbound(InboundSms),
}

/// Reads GatewayAPI webhooks, verifying each first.
#[derive(Debug, Clone)]
pub struct GatewayApiWebhook {
    secret: Secret,
}

/// The claims we read; GatewayAPI sends more.
#[derive(Deserialize)]
struct Claims {
    id: Option<Value>,
    msisdn: Option<Value>,
    status: Option<String>,
    userref: Option<String>,
    message: Option<String>,
}

impl GatewayApiWebhook {
    /// A reader for webhooks signed with `secret` (the webhook's token in the dashboard).
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// Verifies the token from [`SIGNATURE_HEADER`] and reads the event it carries.
    ///
    /// # Errors
    ///
    /// As [`verify_jwt`]; then [`WebhookError::Missing`] for a status without `userref` or a
    /// message without `msisdn`, and [`WebhookError::Malformed`] for claims that are neither.
    pub fn event(&self, token: &str) -> Result<GatewayApiEvent, WebhookError> {
        let claims = verify_jwt(self.secret.expose(), token)?;
        let claims: Claims = serde_json::from_value(Value::Object(claims))
            .map_err(|e| WebhookError::Malformed(format!("claims: {e}")))?;
        let provider_id = claims.id.as_ref().and_then(json_text);
        if let Some(status) = claims.status {
            let reference = claims.userref.ok_or(WebhookError::Missing("userref"))?;
            return Ok(GatewayApiEvent::Status(DeliveryReport {
                reference,
                outcome: outcome(&status),
                provider_status: status,
                provider_id,
            }));
        }
        if let Some(text) = claims.message {
            let msisdn = claims
                .msisdn
                .as_ref()
                .and_then(json_text)
                .ok_or(WebhookError::Missing("msisdn"))?;
            return Ok(GatewayApiEvent::Inbound(InboundSms {
                from: format!("+{}", msisdn.trim_start_matches('+')),
                text,
                provider_id,
            }));
        }
        Err(WebhookError::Malformed(
            "claims are neither a status nor a message".into(),
        ))
    }
}

/// GatewayAPI's states: DELIVERED and ACCEPTED (by the network on the phone's behalf) are
/// final successes; EXPIRED, DELETED, UNDELIVERABLE, REJECTED and SKIPPED final failures;
/// UNKNOWN, SCHEDULED, BUFFERED, ENROUTE and anything new are on the way.
fn outcome(status: &str) -> DeliveryOutcome {
    match status.to_ascii_uppercase().as_str() {
        "DELIVERED" | "ACCEPTED" => DeliveryOutcome::Delivered,
        "EXPIRED" | "DELETED" | "UNDELIVERABLE" | "REJECTED" | "SKIPPED" => DeliveryOutcome::Failed,
        _ => DeliveryOutcome::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_e164_numbers_become_msisdns() {
        assert_eq!(msisdn("+4520123456"), Some(4_520_123_456));
        assert_eq!(msisdn("4520123456"), None);
        assert_eq!(msisdn("+45 20 12 34 56"), None);
        assert_eq!(msisdn("+"), None);
    }

    #[test]
    fn final_and_transient_states_are_told_apart() {
        assert_eq!(outcome("DELIVERED"), DeliveryOutcome::Delivered);
        assert_eq!(outcome("UNDELIVERABLE"), DeliveryOutcome::Failed);
        assert_eq!(outcome("EXPIRED"), DeliveryOutcome::Failed);
        assert_eq!(outcome("ENROUTE"), DeliveryOutcome::Pending);
        assert_eq!(outcome("SOMETHING_NEW"), DeliveryOutcome::Pending);
    }
}
