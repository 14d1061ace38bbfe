//! Inbound SMS: the command parser ("OK", "OUT 1234", "TAG") and the provider webhooks'
//! verifiers, which read what anyone on the internet may send. None may panic, and the
//! parser keeps its documented invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use makker_notify::sms::{InboundCommand, elks, gatewayapi, twilio};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let command = InboundCommand::parse(&text);

    // Letter case and surrounding whitespace do not matter.
    assert_eq!(InboundCommand::parse(&text.to_ascii_uppercase()), command);
    assert_eq!(InboundCommand::parse(&text.to_ascii_lowercase()), command);
    assert_eq!(InboundCommand::parse(&format!(" \t{text}\r\n ")), command);
    // A PIN is 4 to 8 ASCII digits, typed in the text.
    if let InboundCommand::CheckOut { pin } = &command {
        let digits = pin.expose();
        assert!((4..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
        assert!(text.contains(digits));
    }

    // The webhooks: the input as a URL, a token, a form and a signature.
    let mut parts = text.splitn(3, '\n');
    let (first, second, rest) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if let Ok(query) = elks::verify_secret("s3cret", first) {
        assert!(query.iter().any(|(k, v)| k == "secret" && v == "s3cret"));
    }
    let _ = gatewayapi::verify_jwt("s3cret", first);
    let form: Vec<(String, String)> = rest
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let _ = twilio::verify_signature("token", first, &form, second);
});
