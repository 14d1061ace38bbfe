//! 46elks (Sweden): `POST {base}/a1/sms`, form-encoded, with HTTP basic auth; webhooks
//! authenticated by a shared secret in the URL we gave them.
//!
//! Protocol: the form carries `from`, `to`, `message` and, when a delivery URL is configured,
//! `whendelivered`: that URL with our reference and the webhook secret added to its query
//! (46elks documents extra query parameters as the way to carry an id and an auth key). A 2xx
//! answer is JSON with the message `id`. 46elks then POSTs `id`, `status` (`sent`,
//! `delivered` or `failed`) and `delivered` to that URL. Received messages are POSTed as
//! `id`, `from`, `to`, `message` to the SMS URL of our number, which we configure with the
//! same secret in its query.
//!
//! Invariants:
//! - A webhook is believed only if its URL's [`SECRET_PARAM`] equals our webhook secret,
//!   compared in constant time; an empty webhook secret believes nothing.
//! - The reference in a delivery report is read from the URL we signed with the secret, never
//!   from the form 46elks adds.

use async_trait::async_trait;
use reqwest::Url;
use serde::Serialize;

use super::http;
use super::secret::constant_time_eq;
use super::webhook::{
    DeliveryOutcome, DeliveryReport, REFERENCE_PARAM, WebhookError, param, query_pairs, required, with_query,
};
use super::{InboundSms, Secret, Sms, SmsProvider};
use crate::{Receipt, SendError};

/// The query parameter that carries the webhook secret in the URLs we give 46elks.
pub const SECRET_PARAM: &str = "secret";

/// How to reach 46elks.
#[derive(Debug, Clone)]
pub struct Elks46Config {
    /// [`Elks46Config::DEFAULT_BASE_URL`] in production.
    pub base_url: Url,
    /// The API username (`u…`).
    pub username: String,
    /// The API password.
    pub password: Secret,
    /// A number we own, or up to 11 letters and digits.
    pub from: String,
    /// Our delivery-report webhook; without it, 46elks sends no reports.
    pub delivery_url: Option<Url>,
    /// The secret our webhook URLs carry in [`SECRET_PARAM`].
    pub webhook_secret: Secret,
}

impl Elks46Config {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.46elks.com";
}

/// Sends through the 46elks API.
#[derive(Debug, Clone)]
pub struct Elks46 {
    config: Elks46Config,
    client: reqwest::Client,
}

impl Elks46 {
    pub const NAME: &'static str = "46elks";

    /// A provider sending with `client` (see [`super::http_client`]).
    pub fn new(config: Elks46Config, client: reqwest::Client) -> Self {
        Self { config, client }
    }

    /// The `whendelivered` URL for a message with `reference`.
    fn delivery_url(&self, reference: &str) -> Option<Url> {
        let url = self.config.delivery_url.as_ref()?;
        Some(with_query(
            url,
            &[
                (REFERENCE_PARAM, reference),
                (SECRET_PARAM, self.config.webhook_secret.expose()),
            ],
        ))
    }
}

#[derive(Serialize)]
struct Form<'a> {
    from: &'a str,
    to: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    whendelivered: Option<&'a str>,
}

#[async_trait]
impl SmsProvider for Elks46 {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn send(&self, sms: &Sms) -> Result<Receipt, SendError> {
        let whendelivered = self.delivery_url(&sms.reference);
        let fields = Form {
            from: &self.config.from,
            to: &sms.to,
            message: &sms.text,
            whendelivered: whendelivered.as_ref().map(Url::as_str),
        };
        let request = self
            .client
            .post(http::endpoint(&self.config.base_url, &["a1", "sms"]))
            .basic_auth(&self.config.username, Some(self.config.password.expose()));
        http::send(Self::NAME, sms, http::form(request, &fields), "/id").await
    }
}

/// Checks that the URL a 46elks webhook was called on carries our `secret`, and returns that
/// URL's query pairs.
///
/// # Errors
///
/// [`WebhookError::Unauthenticated`] when the secret is missing or wrong, or `secret` is
/// empty; [`WebhookError::Malformed`] when `url` is not a URL.
pub fn verify_secret(secret: &str, url: &str) -> Result<Vec<(String, String)>, WebhookError> {
    let query = query_pairs(url)?;
    let presented = param(&query, SECRET_PARAM).unwrap_or("");
    // INVARIANT: constant-time comparison; an empty secret would let anyone in.
    if secret.is_empty() || !constant_time_eq(presented, secret) {
        return Err(WebhookError::Unauthenticated);
    }
    Ok(query)
}

/// Reads 46elks webhooks, verifying each first.
#[derive(Debug, Clone)]
pub struct Elks46Webhook {
    secret: Secret,
}

impl Elks46Webhook {
    /// A reader for webhooks whose URLs carry `secret`.
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// A delivery report POSTed to the `whendelivered` URL: `url` is the full URL it was
    /// called on, `form` its decoded body.
    ///
    /// # Errors
    ///
    /// As [`verify_secret`]; then [`WebhookError::Missing`] without our reference in the URL
    /// or `status` in the form.
    pub fn delivery_report(
        &self,
        url: &str,
        form: &[(String, String)],
    ) -> Result<DeliveryReport, WebhookError> {
        let query = verify_secret(self.secret.expose(), url)?;
        let reference = required(&query, REFERENCE_PARAM)?;
        let status = required(form, "status")?;
        let outcome = match status {
            "delivered" => DeliveryOutcome::Delivered,
            "failed" => DeliveryOutcome::Failed,
            _ => DeliveryOutcome::Pending,
        };
        Ok(DeliveryReport {
            reference: reference.to_owned(),
            outcome,
            provider_status: status.to_owned(),
            provider_id: param(form, "id").map(str::to_owned),
        })
    }

    /// A received message POSTed to our number's SMS URL.
    ///
    /// # Errors
    ///
    /// As [`verify_secret`]; then [`WebhookError::Missing`] without `from` or `message`.
    pub fn inbound(&self, url: &str, form: &[(String, String)]) -> Result<InboundSms, WebhookError> {
        verify_secret(self.secret.expose(), url)?;
        Ok(InboundSms {
            from: required(form, "from")?.to_owned(),
            text: required(form, "message")?.to_owned(),
            provider_id: param(form, "id").map(str::to_owned),
        })
    }
}
