//! SMS: the channel that must always work.
//!
//! An [`SmsProvider`] sends one [`Sms`] and says what happened as a [`Receipt`] or a
//! [`SendError`]; the outbox dispatcher decides retries and failover from that. Real providers
//! ([`GatewayApi`], [`Elks46`], [`Twilio`]) speak their documented HTTP APIs through one shared
//! client ([`http_client`]); [`LogProvider`] is for the demo and keeps what it "sent" in memory.
//! Delivery receipts and inbound messages arrive by webhooks, verified here by pure functions
//! and turned into typed values ([`DeliveryReport`], [`InboundSms`], [`InboundCommand`]).
//!
//! Invariants:
//! - [`Sms::reference`] (our outbox row id) travels with every send as the provider's own
//!   reference field or in the delivery-report URL we hand it, so a receipt always names the
//!   outbox row it belongs to.
//! - A message the provider accepted (2xx) is never reported as failed, even if its answer
//!   cannot be read: a retry would send it twice.
//! - Answers are classified in one place (`sms::http`): 2xx → receipt; 429, 5xx, 408, timeouts
//!   and connection errors → [`SendError::Retry`] (with `Retry-After`, at most an hour); any
//!   other answer → [`SendError::Permanent`].
//! - Full phone numbers, secrets and PINs appear in no log line, error reason or `Debug`
//!   output: numbers go through [`mask_phone`], secrets are [`Secret`]s.
//! - A webhook is believed only after its signature or shared secret was checked in constant
//!   time; the `*Webhook` types verify before they parse, so there is no unverified path.

pub mod elks;
pub mod gatewayapi;
mod http;
mod inbound;
mod log;
mod secret;
pub mod twilio;
mod webhook;

use std::fmt;

use async_trait::async_trait;

pub use elks::{Elks46, Elks46Config, Elks46Webhook};
pub use gatewayapi::{GatewayApi, GatewayApiConfig, GatewayApiEvent, GatewayApiWebhook};
pub use http::{SEND_TIMEOUT, http_client, http_client_with_timeout, retry_after};
pub use inbound::{CheckOutPin, InboundCommand, InboundSms};
pub use log::LogProvider;
pub use secret::Secret;
pub use twilio::{Twilio, TwilioConfig, TwilioWebhook};
pub use webhook::{DeliveryOutcome, DeliveryReport, REFERENCE_PARAM, WebhookError};

use crate::{Receipt, SendError, mask_phone};

/// One text message to one phone.
#[derive(Clone, PartialEq, Eq)]
pub struct Sms {
    /// The recipient in E.164 form (`+4520123456`).
    pub to: String,
    pub text: String,
    /// Our outbox row id; it travels as the provider's reference so receipts can be matched.
    pub reference: String,
}

impl fmt::Debug for Sms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sms")
            .field("to", &mask_phone(&self.to))
            .field("text", &self.text)
            .field("reference", &self.reference)
            .finish()
    }
}

/// Something that can deliver an [`Sms`].
#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// A short stable name, used in receipts and logs (`"twilio"`).
    fn name(&self) -> &'static str;

    /// Hands the message to the provider.
    ///
    /// # Errors
    ///
    /// [`SendError::Retry`] when trying again later can help (rate limits, provider outages,
    /// timeouts, lost connections); [`SendError::Permanent`] when it cannot (bad credentials,
    /// a refused number or request).
    async fn send(&self, sms: &Sms) -> Result<Receipt, SendError>;
}
