//! Web Push: a notification to a browser or installed web app through its push service
//! (RFC 8030), end-to-end encrypted with aes128gcm (RFC 8291) and signed with VAPID
//! (RFC 8292).
//!
//! [`WebPush::send`] checks the subscription's endpoint against the [`EndpointPolicy`],
//! encrypts the [`PushPayload`] for the browser's keys and signs a VAPID token for the
//! endpoint's origin (both with the `web-push` crate), then POSTs the result through a
//! [`PushTransport`] ([`ReqwestTransport`] in production) and classifies the answer.
//!
//! Invariants:
//! - No position is ever pushed: the payload type has no field for one.
//! - An endpoint is used only if it is `https` and every address it resolves to is public,
//!   checked again at connect time.
//! - Answers are classified in one place (`classify`): 2xx (201 and 202 in practice) → a
//!   [`Receipt`] whose id is the push message's `Location`; 404 and 410 →
//!   [`PushError::Gone`] (the caller deletes the subscription); 429 and 5xx → a
//!   [`SendError::Retry`] honouring `Retry-After` (read by [`crate::sms::retry_after`], at
//!   most an hour); any other answer → [`SendError::Permanent`].
//! - A push is sent at least once: a timeout after the request left may send it again. A
//!   [`Topic`] makes the later copy replace an undelivered earlier one.
//! - Endpoints appear in logs and reasons only as their origin ([`mask_endpoint`]).

mod endpoint;
mod message;
mod transport;
mod vapid;

use std::sync::Arc;
use std::time::SystemTime;

use web_push::{ContentEncoding, SubscriptionInfo, WebPushError, WebPushMessageBuilder};

pub use endpoint::{AddressClass, EndpointError, EndpointPolicy, mask_endpoint};
pub use message::{PushKind, PushMessage, PushPayload, Subscription, Topic, TopicError, Urgency};
pub use transport::{ClientError, PUSH_TIMEOUT, PushResponse, PushTransport, ReqwestTransport};
pub use vapid::{VapidConfig, VapidError, VapidKey, VapidSubject};

use crate::{Receipt, SendError};

/// The provider name in a push [`Receipt`].
pub const PROVIDER: &str = "web_push";

/// Why a push was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The subscription will never work: the push service answered 404 or 410 (expired or
    /// unsubscribed), or its endpoint or keys are unusable. Delete it; as a [`SendError`]
    /// this is [`SendError::Permanent`].
    #[error("push subscription gone: {reason}")]
    Gone { reason: String },
    /// Anything else, for the dispatcher to retry or fail over.
    #[error(transparent)]
    Send(#[from] SendError),
}

impl From<PushError> for SendError {
    fn from(error: PushError) -> SendError {
        match error {
            PushError::Gone { .. } => SendError::Permanent {
                reason: error.to_string(),
            },
            PushError::Send(inner) => inner,
        }
    }
}

impl From<EndpointError> for PushError {
    fn from(error: EndpointError) -> PushError {
        match error {
            EndpointError::Unresolved { .. } => PushError::Send(SendError::Retry {
                after: None,
                reason: error.to_string(),
            }),
            refused => PushError::Gone {
                reason: refused.to_string(),
            },
        }
    }
}

/// Sends Web Push messages.
#[derive(Clone)]
pub struct WebPush {
    vapid: VapidConfig,
    policy: EndpointPolicy,
    transport: Arc<dyn PushTransport>,
}

impl WebPush {
    /// A sender over HTTPS that connects only where `policy` allows.
    ///
    /// # Errors
    /// When the HTTP client cannot be built ([`ReqwestTransport::new`]).
    pub fn new(vapid: VapidConfig, policy: EndpointPolicy) -> Result<WebPush, ClientError> {
        let transport = ReqwestTransport::new(policy)?;
        Ok(WebPush::with_transport(vapid, policy, Arc::new(transport)))
    }

    /// A sender over another transport (a fake in tests).
    pub fn with_transport(
        vapid: VapidConfig,
        policy: EndpointPolicy,
        transport: Arc<dyn PushTransport>,
    ) -> WebPush {
        WebPush {
            vapid,
            policy,
            transport,
        }
    }

    /// Our VAPID public key, base64url: the `applicationServerKey` browsers subscribe with.
    pub fn public_key(&self) -> &str {
        self.vapid.key.public_key()
    }

    /// Encrypts `message` for `subscription`, signs it and posts it to the push service.
    ///
    /// # Errors
    /// [`PushError::Gone`] when the subscription should be deleted, otherwise a
    /// [`SendError`] as classified in the module docs.
    pub async fn send(
        &self,
        subscription: &Subscription,
        message: &PushMessage,
    ) -> Result<Receipt, PushError> {
        let endpoint = mask_endpoint(&subscription.endpoint);
        let kind = message.payload.kind;
        let result = self.try_send(subscription, message).await;
        match &result {
            Ok(receipt) => {
                tracing::info!(%endpoint, ?kind, provider_id = receipt.provider_id, "push accepted")
            }
            Err(error) => tracing::warn!(%endpoint, ?kind, %error, "push not accepted"),
        }
        result
    }

    async fn try_send(
        &self,
        subscription: &Subscription,
        message: &PushMessage,
    ) -> Result<Receipt, PushError> {
        let url = self.policy.check_url(&subscription.endpoint)?;
        self.policy.resolve(&url).await?;
        let request = self.build(subscription, message, &endpoint::origin(&url))?;
        let response = self
            .transport
            .post(url.as_str(), request.headers, request.body)
            .await?;
        classify(response, SystemTime::now())
    }

    /// The request web-push builds: encrypted body and its headers (`TTL`, `Urgency`,
    /// `Topic`, `Content-Encoding`, `Authorization: vapid t=…, k=…`).
    fn build(
        &self,
        subscription: &Subscription,
        message: &PushMessage,
        audience: &str,
    ) -> Result<BuiltRequest, PushError> {
        let info = SubscriptionInfo::new(
            subscription.endpoint.as_str(),
            subscription.p256dh.as_str(),
            subscription.auth.as_str(),
        );
        let signature = self
            .vapid
            .sign(&info, audience)
            .map_err(|e| SendError::Permanent {
                reason: format!("VAPID signing failed: {e:?}"),
            })?;
        let payload = serde_json::to_vec(&message.payload).expect("BUG: a push payload always serializes");
        let mut builder = WebPushMessageBuilder::new(&info);
        builder.set_ttl(u32::try_from(message.ttl.as_secs()).unwrap_or(u32::MAX));
        builder.set_urgency(message.urgency());
        if let Some(topic) = &message.topic {
            builder.set_topic(topic.as_str().to_owned());
        }
        builder.set_payload(ContentEncoding::Aes128Gcm, &payload);
        builder.set_vapid_signature(signature);
        let built = builder.build().map_err(|e| match e {
            WebPushError::InvalidCryptoKeys | WebPushError::MissingCryptoKeys => PushError::Gone {
                reason: "the subscription's p256dh or auth is not a P-256 key and secret".into(),
            },
            WebPushError::PayloadTooLarge => SendError::Permanent {
                reason: format!("push payload of {} bytes is too large", payload.len()),
            }
            .into(),
            other => SendError::Permanent {
                reason: format!("push not built: {other:?}"),
            }
            .into(),
        })?;
        let request = web_push::request_builder::build_request::<Vec<u8>>(built);
        let headers = request
            .headers()
            .iter()
            // The transport frames the body and sets its length itself.
            .filter(|(name, _)| name.as_str() != "content-length")
            .map(|(name, value)| {
                let value = value.to_str().expect("BUG: web-push builds ASCII header values");
                (name.as_str().to_owned(), value.to_owned())
            })
            .collect();
        Ok(BuiltRequest {
            headers,
            body: request.into_body(),
        })
    }
}

/// An encrypted, signed push request, ready for the transport.
struct BuiltRequest {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What the push service's answer means, seen at `now` (for a `Retry-After` date).
///
/// # Errors
/// Every answer but a 2xx, as listed in the module docs.
fn classify(response: PushResponse, now: SystemTime) -> Result<Receipt, PushError> {
    let status = response.status;
    let reason = if response.body.is_empty() {
        format!("push service answered {status}")
    } else {
        format!("push service answered {status}: {}", response.body)
    };
    match status {
        200..=299 => Ok(Receipt {
            provider: PROVIDER,
            provider_id: response.location,
        }),
        404 | 410 => Err(PushError::Gone { reason }),
        429 | 500..=599 => {
            let after = response
                .retry_after
                .as_deref()
                .and_then(|v| crate::sms::retry_after(v, now));
            Err(SendError::Retry { after, reason }.into())
        }
        _ => Err(SendError::Permanent { reason }.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> PushResponse {
        PushResponse {
            status,
            retry_after: retry_after.map(str::to_owned),
            location: Some("https://push.example.net/m/1".into()),
            body: String::new(),
        }
    }

    #[test]
    fn answers_are_classified_by_status() {
        let now = SystemTime::UNIX_EPOCH;
        for status in [201, 202] {
            let receipt = classify(answer(status, None), now).expect("accepted");
            assert_eq!(
                receipt.provider_id.as_deref(),
                Some("https://push.example.net/m/1")
            );
        }
        for status in [404, 410] {
            assert!(matches!(
                classify(answer(status, None), now),
                Err(PushError::Gone { .. })
            ));
        }
        for status in [429, 500, 502, 503] {
            let error = classify(answer(status, Some("7")), now).unwrap_err();
            let expected = Some(Duration::from_secs(7));
            assert!(
                matches!(error, PushError::Send(SendError::Retry { after, .. }) if after == expected),
                "{status}"
            );
        }
        for status in [400, 401, 403, 413, 301] {
            let error = classify(answer(status, Some("7")), now).unwrap_err();
            assert!(
                matches!(error, PushError::Send(SendError::Permanent { .. })),
                "{status}"
            );
        }
    }

    #[test]
    fn a_gone_subscription_is_a_permanent_send_error() {
        let gone = PushError::Gone {
            reason: "push service answered 410".into(),
        };
        assert!(matches!(SendError::from(gone), SendError::Permanent { .. }));
    }
}
