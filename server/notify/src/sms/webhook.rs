//! What providers tell us by webhook about the messages we sent, and how reading it can fail.
//!
//! Invariants:
//! - Every delivery report names our reference (the outbox row id); one that does not is an
//!   error, never a guess.
//! - A provider's own status word is kept as it came ([`DeliveryReport::provider_status`]);
//!   [`DeliveryOutcome`] is only our reading of it.

use reqwest::Url;

/// The query parameter that carries our reference in the callback URLs we hand providers.
pub const REFERENCE_PARAM: &str = "ref";

/// A provider's word on one message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Our reference (the outbox row id) the message was sent with.
    pub reference: String,
    pub outcome: DeliveryOutcome,
    /// The provider's status as it sent it (`"DELIVERED"`, `"undelivered"`).
    pub provider_status: String,
    /// The provider's id for the message, when the report carries it.
    pub provider_id: Option<String>,
}

/// What a delivery report means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The phone (or the network, on its behalf) has the message.
    Delivered,
    /// The message will not arrive.
    Failed,
    /// On its way; a later report will say more.
    Pending,
}

/// Why a webhook was not believed or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature or shared secret is missing or wrong: answer 403 and read nothing.
    #[error("webhook signature or secret missing or wrong")]
    Unauthenticated,
    /// A field we need is not there.
    #[error("webhook lacks `{0}`")]
    Missing(&'static str),
    /// The request is not in the shape the provider documents.
    #[error("webhook malformed: {0}")]
    Malformed(String),
}

/// The first value of `name` in form or query pairs.
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// [`param`], required.
pub(crate) fn required<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, WebhookError> {
    param(params, name).ok_or(WebhookError::Missing(name))
}

/// The decoded query pairs of the URL a webhook was called on.
pub(crate) fn query_pairs(url: &str) -> Result<Vec<(String, String)>, WebhookError> {
    let url = Url::parse(url).map_err(|e| WebhookError::Malformed(format!("url: {e}")))?;
    Ok(url.query_pairs().into_owned().collect())
}

/// `url` with `pairs` added to its query.
pub(crate) fn with_query(url: &Url, pairs: &[(&str, &str)]) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut().extend_pairs(pairs);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_keep_their_own_query() {
        let base = Url::parse("https://makker.example/hooks/sms?team=7").unwrap();
        let url = with_query(&base, &[(REFERENCE_PARAM, "a b&c")]);
        assert_eq!(
            url.as_str(),
            "https://makker.example/hooks/sms?team=7&ref=a+b%26c"
        );
        let pairs = query_pairs(url.as_str()).unwrap();
        assert_eq!(param(&pairs, REFERENCE_PARAM), Some("a b&c"));
        assert_eq!(param(&pairs, "team"), Some("7"));
        assert_eq!(required(&pairs, "secret"), Err(WebhookError::Missing("secret")));
    }
}
