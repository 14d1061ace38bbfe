//! Text messages workers send us, and what they ask for.
//!
//! The protocol is two words long: `OK` checks in, `OUT <pin>` checks out with a PIN. Anything
//! else is [`InboundCommand::Unknown`], and the caller answers with help, never with a guess.
//!
//! Invariants:
//! - Letter case and surrounding whitespace do not matter; everything else does: no trailing
//!   punctuation, no other words, a PIN of 4 to 8 ASCII digits.
//! - A PIN never appears in `Debug` output, nor does the text that carries it; the sender's
//!   number is masked.

use std::fmt;

use crate::mask_phone;

/// A text message a phone sent us, after its webhook was verified.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The sender in E.164 form (`+4520123456`).
    pub from: String,
    pub text: String,
    /// The provider's id for the message, when it gave one.
    pub provider_id: Option<String>,
}

impl InboundSms {
    /// What the sender asks for.
    pub fn command(&self) -> InboundCommand {
        InboundCommand::parse(&self.text)
    }
}

impl fmt::Debug for InboundSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSms")
            .field("from", &mask_phone(&self.from))
            .field("text", &format_args!("<{} chars>", self.text.chars().count()))
            .field("provider_id", &self.provider_id)
            .finish()
    }
}

/// What an inbound text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundCommand {
    /// `OK`: the sender is fine.
    CheckIn,
    /// `OUT 1234`: the sender leaves, with the PIN they typed (normal or duress: the caller
    /// decides, by comparing hashes).
    CheckOut { pin: CheckOutPin },
    /// `TAG` (Danish), `TAR` (Swedish) or `TAKE`: "I'm on it" for the alarm the sender was told of.
    Acknowledge,
    /// Anything else.
    Unknown,
}

impl InboundCommand {
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if text.eq_ignore_ascii_case("ok") {
            return Self::CheckIn;
        }
        if ["tag", "tar", "take"]
            .iter()
            .any(|w| text.eq_ignore_ascii_case(w))
        {
            return Self::Acknowledge;
        }
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(verb), Some(pin), None) if verb.eq_ignore_ascii_case("out") => {
                CheckOutPin::parse(pin).map_or(Self::Unknown, |pin| Self::CheckOut { pin })
            }
            _ => Self::Unknown,
        }
    }
}

/// A PIN typed into a check-out text: 4 to 8 ASCII digits.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckOutPin(String);

impl CheckOutPin {
    /// `Some` when `pin` is 4 to 8 ASCII digits.
    pub fn parse(pin: &str) -> Option<Self> {
        makker_domain::is_valid_pin(pin).then(|| Self(pin.to_owned()))
    }

    /// The digits, to hash and compare with the stored PINs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CheckOutPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckOutPin(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_the_pin_nor_the_number_shows_in_debug() {
        let sms = InboundSms {
            from: "+4520123456".into(),
            text: "OUT 4711".into(),
            provider_id: None,
        };
        let shown = format!("{sms:?} {:?}", sms.command());
        assert!(!shown.contains("4711"), "{shown}");
        assert!(!shown.contains("20123456"), "{shown}");
        assert!(shown.contains("CheckOutPin(***)"), "{shown}");
    }
}
