//! Twilio: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, with
//! HTTP basic auth `AccountSid:AuthToken`; webhooks signed in `X-Twilio-Signature`.
//!
//! Protocol: the form carries `To`, `From`, `Body` and, when configured, `StatusCallback`: our
//! status URL with our reference added to its query. A 2xx answer is JSON with the message
//! `sid`. Twilio POSTs status callbacks (`MessageSid`, `MessageStatus`, …) to that URL and
//! received messages (`MessageSid`, `From`, `Body`, …) to our number's messaging URL. Each
//! carries `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the auth token, over the full
//! URL Twilio called followed by every POST parameter, sorted by name, as name then value.
//!
//! Invariants:
//! - A webhook is believed only if its signature matches in constant time; the URL it covers
//!   must be the public one Twilio called (scheme, host, port, path and query), not the one a
//!   proxy forwarded to us. An empty auth token believes nothing.
//! - The reference in a status callback is read from the signed URL.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde::Serialize;
use sha1::Sha1;

use super::http;
use super::webhook::{
    DeliveryOutcome, DeliveryReport, REFERENCE_PARAM, WebhookError, param, query_pairs, required, with_query,
};
use super::{InboundSms, Secret, Sms, SmsProvider};
use crate::{Receipt, SendError};

/// The header Twilio signs its webhooks in.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// How to reach Twilio.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// [`TwilioConfig::DEFAULT_BASE_URL`] in production.
    pub base_url: Url,
    /// `AC…`: the account, and the basic-auth user.
    pub account_sid: String,
    /// The basic-auth password, and the key of webhook signatures.
    pub auth_token: Secret,
    /// A Twilio number or an alphanumeric sender id.
    pub from: String,
    /// Our status-callback webhook; without it, Twilio sends no status callbacks.
    pub status_callback: Option<Url>,
}

impl TwilioConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.twilio.com";
}

/// Sends through Twilio's Messages API.
#[derive(Debug, Clone)]
pub struct Twilio {
    config: TwilioConfig,
    client: reqwest::Client,
}

impl Twilio {
    pub const NAME: &'static str = "twilio";

    /// A provider sending with `client` (see [`super::http_client`]).
    pub fn new(config: TwilioConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Form<'a> {
    to: &'a str,
    from: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_callback: Option<&'a str>,
}

#[async_trait]
impl SmsProvider for Twilio {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn send(&self, sms: &Sms) -> Result<Receipt, SendError> {
        let status_callback = self
            .config
            .status_callback
            .as_ref()
            .map(|url| with_query(url, &[(REFERENCE_PARAM, &sms.reference)]));
        let fields = Form {
            to: &sms.to,
            from: &self.config.from,
            body: &sms.text,
            status_callback: status_callback.as_ref().map(Url::as_str),
        };
        let url = http::endpoint(
            &self.config.base_url,
            &[
                "2010-04-01",
                "Accounts",
                &self.config.account_sid,
                "Messages.json",
            ],
        );
        let request = self
            .client
            .post(url)
            .basic_auth(&self.config.account_sid, Some(self.config.auth_token.expose()));
        http::send(Self::NAME, sms, http::form(request, &fields), "/sid").await
    }
}

fn signing_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("BUG: HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` Twilio sends for a POST of `params` to `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(signing_mac(auth_token, url, params).finalize().into_bytes())
}

/// Checks an `X-Twilio-Signature` for a POST of `params` (the decoded form) to `url` (the full
/// public URL Twilio called, with its query).
///
/// # Errors
///
/// [`WebhookError::Unauthenticated`] when the signature is not base64, does not match, or
/// `auth_token` is empty.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> Result<(), WebhookError> {
    if auth_token.is_empty() {
        return Err(WebhookError::Unauthenticated);
    }
    let presented = STANDARD
        .decode(signature.trim())
        .map_err(|_| WebhookError::Unauthenticated)?;
    // INVARIANT: constant-time comparison of the whole tag.
    signing_mac(auth_token, url, params)
        .verify_slice(&presented)
        .map_err(|_| WebhookError::Unauthenticated)
}

/// Reads Twilio webhooks, verifying each first.
#[derive(Debug, Clone)]
pub struct TwilioWebhook {
    auth_token: Secret,
}

impl TwilioWebhook {
    /// A reader for webhooks signed with the account's `auth_token`.
    pub fn new(auth_token: Secret) -> Self {
        Self { auth_token }
    }

    /// A status callback: `url` is the full URL Twilio called (our status URL with the
    /// reference), `form` the decoded body, `signature` the [`SIGNATURE_HEADER`].
    ///
    /// # Errors
    ///
    /// As [`verify_signature`]; then [`WebhookError::Missing`] without our reference in the URL
    /// or `MessageStatus` in the form.
    pub fn delivery_report(
        &self,
        url: &str,
        form: &[(String, String)],
        signature: &str,
    ) -> Result<DeliveryReport, WebhookError> {
        verify_signature(self.auth_token.expose(), url, form, signature)?;
        let query = query_pairs(url)?;
        let reference = required(&query, REFERENCE_PARAM)?;
        let status = required(form, "MessageStatus")?;
        let outcome = match status {
            "delivered" | "read" => DeliveryOutcome::Delivered,
            "undelivered" | "failed" | "canceled" => DeliveryOutcome::Failed,
            _ => DeliveryOutcome::Pending,
        };
        Ok(DeliveryReport {
            reference: reference.to_owned(),
            outcome,
            provider_status: status.to_owned(),
            provider_id: param(form, "MessageSid").map(str::to_owned),
        })
    }

    /// A received message POSTed to our number's messaging URL.
    ///
    /// # Errors
    ///
    /// As [`verify_signature`]; then [`WebhookError::Missing`] without `From` or `Body`.
    pub fn inbound(
        &self,
        url: &str,
        form: &[(String, String)],
        signature: &str,
    ) -> Result<InboundSms, WebhookError> {
        verify_signature(self.auth_token.expose(), url, form, signature)?;
        Ok(InboundSms {
            from: required(form, "From")?.to_owned(),
            text: required(form, "Body")?.to_owned(),
            provider_id: param(form, "MessageSid").map(str::to_owned),
        })
    }
}
