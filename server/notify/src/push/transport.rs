//! How a built push request reaches the push service: one HTTP POST behind
//! [`PushTransport`], so the sender can be tested without a network.
//!
//! Invariants:
//! - [`ReqwestTransport`] resolves names only through the [`EndpointPolicy`], at connect
//!   time, so the address checked is the address connected to; it follows no redirect and
//!   uses no proxy, either of which would lead somewhere the policy never saw.
//! - TLS is rustls with the `ring` provider (installed as the process default, as the SMS
//!   client does) and the platform's root certificates.
//! - A request that may not have arrived (connection error, timeout) is a
//!   [`SendError::Retry`]; one the policy refused is a [`SendError::Permanent`]. Reasons
//!   never contain the URL.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{LOCATION, RETRY_AFTER};

use super::PushError;
use super::endpoint::{EndpointError, EndpointPolicy};
use crate::SendError;

/// How long one push may take, from connect to the answer's status line.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// How much of a push service's error body is kept for the failure reason.
const REASON_BODY_CHARS: usize = 300;

/// What the push service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResponse {
    pub status: u16,
    /// The raw `Retry-After` header.
    pub retry_after: Option<String>,
    /// The `Location` header: the push message resource (RFC 8030 §5).
    pub location: Option<String>,
    /// The start of the body, for the reason of a failure.
    pub body: String,
}

/// Posts one push request.
#[async_trait]
pub trait PushTransport: Send + Sync {
    /// POSTs `body` with `headers` to `endpoint` and returns the answer, whatever its status.
    ///
    /// # Errors
    /// [`SendError::Retry`] when no answer came (connection error, timeout);
    /// [`SendError::Permanent`] when the request must not be sent at all.
    async fn post(
        &self,
        endpoint: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<PushResponse, SendError>;
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the push HTTP client could not be built: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// [`PushTransport`] over reqwest.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A client that connects only where `policy` allows, with [`PUSH_TIMEOUT`].
    ///
    /// # Errors
    /// When the TLS configuration cannot be built (no usable root certificates).
    pub fn new(policy: EndpointPolicy) -> Result<ReqwestTransport, ClientError> {
        // Err only means a provider is installed already (ours, or one the binary chose).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .dns_resolver(PolicyResolver(policy))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(PUSH_TIMEOUT)
            .user_agent(concat!("makker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ReqwestTransport { client })
    }
}

#[async_trait]
impl PushTransport for ReqwestTransport {
    async fn post(
        &self,
        endpoint: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<PushResponse, SendError> {
        let mut request = self.client.post(endpoint).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let header = |name| {
            let value = response.headers().get(name)?.to_str().ok()?;
            Some(value.to_owned())
        };
        let (retry_after, location) = (header(RETRY_AFTER), header(LOCATION));
        let status = response.status().as_u16();
        // The body only explains a failure; an unreadable one explains nothing.
        let body = response.text().await.unwrap_or_default();
        let body = body.trim().chars().take(REASON_BODY_CHARS).collect();
        Ok(PushResponse {
            status,
            retry_after,
            location,
            body,
        })
    }
}

/// Resolves through the policy, so a connection only goes to an address it allows.
struct PolicyResolver(EndpointPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts in the URL's port.
            let addrs = policy.resolve_host(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// What a failure to get an answer means for the send.
fn transport_error(error: &reqwest::Error) -> SendError {
    let mut cause = error.source();
    let mut chain = Vec::new();
    while let Some(inner) = cause {
        if let Some(refused) = inner.downcast_ref::<EndpointError>() {
            return PushError::from(refused.clone()).into();
        }
        chain.push(inner.to_string());
        cause = inner.source();
    }
    if error.is_builder() {
        return SendError::Permanent {
            reason: format!("push request not built: {}", chain.join(": ")),
        };
    }
    let kind = if error.is_timeout() {
        "push service timed out"
    } else if error.is_connect() {
        "could not connect to the push service"
    } else {
        "push request failed"
    };
    chain.insert(0, kind.to_owned());
    SendError::Retry {
        after: None,
        reason: chain.join(": "),
    }
}
