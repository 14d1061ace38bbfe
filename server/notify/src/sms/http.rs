//! The HTTP side shared by every SMS provider: one client, one way to read an answer.
//!
//! Invariants:
//! - TLS is rustls with the `ring` provider, installed here before the client is built; the
//!   client never follows redirects (a provider API that redirects a POST is misconfigured,
//!   and following it could turn the send into a GET or leak credentials to another host).
//! - Every request has a deadline ([`SEND_TIMEOUT`] unless a test asks for less).
//! - The answer is classified only in [`send`]: 2xx → [`Receipt`] (even when its body cannot
//!   be read, because the provider has the message); 408, 429 and 5xx → [`SendError::Retry`]
//!   with `Retry-After` bounded by [`MAX_RETRY_AFTER`]; other statuses →
//!   [`SendError::Permanent`]; timeouts and connection errors → [`SendError::Retry`].
//! - A provider's error text goes into the reason with the recipient's number masked, cut to
//!   a few hundred characters.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;

use super::Sms;
use crate::{Receipt, SendError, mask_phone};

/// How long one send may take, from connect to the last byte of the answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `Retry-After` we honour; a provider asking for more gets retried after this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// How much of a provider's error body goes into a [`SendError`] reason.
const REASON_BODY_CHARS: usize = 300;

/// The HTTP client the SMS providers share, with a [`SEND_TIMEOUT`] per request.
///
/// # Errors
///
/// When the TLS configuration cannot be built (no usable root certificates on this system).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    http_client_with_timeout(SEND_TIMEOUT)
}

/// [`http_client`] with another deadline per request (tests use a short one).
///
/// # Errors
///
/// When the TLS configuration cannot be built (no usable root certificates on this system).
pub fn http_client_with_timeout(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // Err only means a provider is installed already (ours, or one the binary chose).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("makker/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How long a `Retry-After` value asks us to wait, seen at `now`: delay-seconds or an
/// HTTP-date (RFC 9110 §10.2.3), capped at one hour; a date in the past means "now".
/// `None` when the value is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// `base` with `segments` appended as path segments (each one escaped).
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// `request` with `fields` as an `application/x-www-form-urlencoded` body.
pub(crate) fn form(request: RequestBuilder, fields: &impl Serialize) -> RequestBuilder {
    let body = serde_urlencoded::to_string(fields).expect("BUG: form fields are flat name/value pairs");
    request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
}

/// Sends `request` for `sms` through `provider`, classifies the answer, and reads the
/// provider's message id from a 2xx JSON body at `id_pointer` (a JSON pointer, `/sid`).
///
/// # Errors
///
/// As classified in the module docs.
pub(crate) async fn send(
    provider: &'static str,
    sms: &Sms,
    request: RequestBuilder,
    id_pointer: &str,
) -> Result<Receipt, SendError> {
    let to = mask_phone(&sms.to);
    let reference = sms.reference.as_str();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let error = transport_error(&error);
            tracing::warn!(provider, reference, %to, %error, "sms not sent");
            return Err(error);
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    // INVARIANT: from here on a 2xx is a receipt, whatever happens to the body.
    let body = response.bytes().await;
    if status.is_success() {
        let provider_id = body
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.pointer(id_pointer).and_then(json_text));
        if provider_id.is_none() {
            tracing::warn!(provider, reference, %to, %status, "sms accepted without a readable id");
        }
        tracing::info!(provider, reference, %to, provider_id, "sms accepted");
        return Ok(Receipt {
            provider,
            provider_id,
        });
    }
    let body = body.map(|b| String::from_utf8_lossy(&b).into_owned());
    let error = classify(
        status,
        &headers,
        body.as_deref().unwrap_or(""),
        &sms.to,
        SystemTime::now(),
    );
    tracing::warn!(provider, reference, %to, %status, %error, "sms not sent");
    Err(error)
}

/// A JSON string or number as text (providers send ids as either).
pub(crate) fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// What a non-2xx answer means for the send.
fn classify(status: StatusCode, headers: &HeaderMap, body: &str, to: &str, now: SystemTime) -> SendError {
    let reason = reason(status, body, to);
    let temporary = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error();
    if temporary {
        let after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        SendError::Retry { after, reason }
    } else {
        SendError::Permanent { reason }
    }
}

/// `"HTTP 400: <the provider's words>"`, with the recipient's number masked.
fn reason(status: StatusCode, body: &str, to: &str) -> String {
    let mut text: String = body.trim().chars().take(REASON_BODY_CHARS).collect();
    let masked = mask_phone(to);
    // Providers echo the number with or without its `+`; mask the longer form first.
    for form in [to, to.trim_start_matches('+')] {
        if form.len() >= 4 {
            text = text.replace(form, &masked);
        }
    }
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// What a failure to get any answer means: always worth another try.
fn transport_error(error: &reqwest::Error) -> SendError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    // The chain of causes says why (refused, reset, DNS); the URL is left out.
    let mut reason = kind.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        cause = inner.source();
    }
    SendError::Retry { after: None, reason }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn at(http_date: &str) -> SystemTime {
        httpdate::parse_http_date(http_date).expect("a valid HTTP-date")
    }

    #[test]
    fn retry_after_reads_delay_seconds() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_reads_an_http_date_relative_to_now() {
        let now = at("Wed, 21 Oct 2015 07:27:30 GMT");
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        // The two obsolete forms a recipient must also accept.
        assert_eq!(
            retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_in_the_past_means_now() {
        let now = at("Wed, 21 Oct 2015 08:00:00 GMT");
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_capped_at_one_hour() {
        let now = at("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Thu, 22 Oct 2015 07:28:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_that_is_neither_seconds_nor_a_date_is_ignored() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("", now), None);
    }

    #[test]
    fn answers_are_classified_by_status() {
        let now = SystemTime::UNIX_EPOCH;
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let seven = Some(Duration::from_secs(7));
        for (status, expect_retry) in [
            (429, true),
            (408, true),
            (500, true),
            (502, true),
            (503, true),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (422, false),
            (302, false),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            let error = classify(status, &headers, "", "+4520123456", now);
            match error {
                SendError::Retry { after, .. } => {
                    assert!(expect_retry, "{status} must be permanent");
                    assert_eq!(after, seven, "{status} keeps Retry-After");
                }
                SendError::Permanent { .. } => assert!(!expect_retry, "{status} must be retried"),
            }
        }
    }

    #[test]
    fn a_reason_masks_the_number_the_provider_echoes() {
        let body = r#"{"message":"The 'To' number +4520123456 is not valid (4520123456)"}"#;
        let reason = reason(StatusCode::BAD_REQUEST, body, "+4520123456");
        assert!(!reason.contains("20123456"), "{reason}");
        assert!(reason.contains("+45****3456"), "{reason}");
        assert!(reason.starts_with("HTTP 400 Bad Request: "), "{reason}");
    }

    #[test]
    fn endpoints_are_appended_to_the_base_path() {
        let base = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, &["rest", "mtsms"]).as_str(),
            "http://127.0.0.1:9/prefix/rest/mtsms"
        );
        let bare = Url::parse("https://api.example").unwrap();
        assert_eq!(
            endpoint(&bare, &["a1", "sms"]).as_str(),
            "https://api.example/a1/sms"
        );
    }
}
