//! Secrets: argon2id for passwords and PINs, random bearer tokens stored as SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password or PIN into an argon2id PHC string.
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("BUG: 16 bytes is a valid salt");
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("BUG: argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// Whether `secret` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

/// A fresh bearer token for a phone: 256 random bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "mk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub use makker_domain::is_valid_pin;

/// Failed sign-ins counted within this window...
pub const LOCKOUT_WINDOW_MINUTES: i64 = 15;
/// ...this many times lock the username...
pub const LOCKOUT_FAILURES: u32 = 5;
/// ...for this long. Short: a worker's phone keeps its token meanwhile, and an attacker can
/// only ever delay a sign-in, never guess on.
pub const LOCKOUT_MINUTES: i64 = 15;

/// The failure record after one more failed sign-in at `now`.
pub fn one_more_failure(
    before: Option<makker_store::LoginFailures>,
    now: chrono::DateTime<chrono::Utc>,
) -> makker_store::LoginFailures {
    let window = chrono::Duration::minutes(LOCKOUT_WINDOW_MINUTES);
    let mut f = match before {
        Some(f) if now - f.first_failed_at <= window => f,
        _ => makker_store::LoginFailures {
            failures: 0,
            first_failed_at: now,
            locked_until: None,
        },
    };
    f.failures += 1;
    if f.failures >= LOCKOUT_FAILURES {
        f.locked_until = Some(now + chrono::Duration::minutes(LOCKOUT_MINUTES));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_secret_verifies_and_others_do_not() {
        let h = hash_secret("1234");
        assert!(verify_secret("1234", &h));
        assert!(!verify_secret("4321", &h));
        assert!(!verify_secret("1234", "not a hash"));
    }

    #[test]
    fn tokens_are_unique_and_hashed_to_hex() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn pins_are_four_to_eight_digits() {
        assert!(is_valid_pin("1234") && is_valid_pin("12345678"));
        assert!(!is_valid_pin("123") && !is_valid_pin("12a4") && !is_valid_pin("123456789"));
    }
}
