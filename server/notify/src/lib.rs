//! Makker's delivery channels: SMS through providers used in Denmark and Sweden, and Web Push.
//!
//! Invariants:
//! - A send is identified by its outbox row id, which travels as the provider's reference, so
//!   a provider's receipt can be matched and a retry never becomes a second message.
//! - Providers only speak HTTP; the outbox dispatcher (engine) decides retries and failover
//!   from the [`SendError`] a provider returns.
//! - Phone numbers and push endpoints are masked in logs.

pub mod push;
pub mod sms;

use std::time::Duration;

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (5xx, 429, timeouts, connection errors); `after` is the provider's
    /// `Retry-After` when it gave one.
    #[error("temporary failure: {reason}")]
    Retry { after: Option<Duration>, reason: String },
    /// Trying again will not help (bad credentials, invalid number, gone subscription).
    #[error("permanent failure: {reason}")]
    Permanent { reason: String },
}

/// What the provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider: &'static str,
    /// The provider's own id for the message, when it returns one.
    pub provider_id: Option<String>,
}

/// `+4520123456` → `+45****3456`: enough to tell numbers apart in a log, not to call them.
pub fn mask_phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 7 {
        return "****".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn phone_numbers_are_masked() {
        assert_eq!(super::mask_phone("+4520123456"), "+45****3456");
        assert_eq!(super::mask_phone("112"), "****");
    }
}
