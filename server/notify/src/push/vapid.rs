//! VAPID (RFC 8292): how we identify ourselves to push services.
//!
//! Invariants:
//! - The subject is a contact a push service's operator can reach: a `mailto:` address or an
//!   `https:` URL on a public domain name, never `localhost`, an IP address or a reserved
//!   name. Push services (Apple's in particular) refuse every message whose subject is not,
//!   so a bad subject fails when the configuration is read, not at the first alarm.
//! - The private key never appears in `Debug` output; only the public key is shown.
//! - Each token is made for one endpoint: `aud` is the endpoint's origin (with its port),
//!   `sub` our subject, `exp` twelve hours ahead (RFC 8292 allows at most 24).

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use web_push::{PartialVapidSignatureBuilder, SubscriptionInfo, VapidSignature, VapidSignatureBuilder};

/// Why a VAPID setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    #[error(
        "the VAPID subject {subject:?} is not usable: {why}; give a contact push services can \
         reach, e.g. mailto:drift@your-organisation.dk or https://your-organisation.dk/contact"
    )]
    Subject { subject: String, why: &'static str },
    #[error(
        "the VAPID private key is not a P-256 private key, neither 32 bytes in base64url nor PEM \
         (SEC1 or PKCS#8)"
    )]
    Key,
}

/// Names no push service can reach (RFC 2606, RFC 6761, mDNS, home networks), matched as the
/// whole domain or its suffix.
const UNREACHABLE_NAMES: &[&str] = &[
    "localhost",
    "localdomain",
    "local",
    "internal",
    "lan",
    "home.arpa",
    "test",
    "invalid",
    "example",
    "example.com",
    "example.net",
    "example.org",
];

/// The VAPID `sub` claim: a `mailto:` address or an `https:` URL on a public domain name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapidSubject(String);

impl VapidSubject {
    /// Checks a subject from configuration.
    ///
    /// # Errors
    /// [`VapidError::Subject`] for anything but `mailto:local@domain` or `https://domain/…`
    /// where the domain is a fully qualified public name (not `localhost`, an IP address,
    /// or a reserved name such as `*.test` or `example.com`).
    pub fn parse(text: &str) -> Result<VapidSubject, VapidError> {
        let subject = text.trim();
        let refuse = |why| VapidError::Subject {
            subject: subject.to_owned(),
            why,
        };
        let scheme_end = subject
            .find(':')
            .ok_or_else(|| refuse("it has no mailto: or https:"))?;
        let (scheme, rest) = (&subject[..scheme_end], &subject[scheme_end + 1..]);
        let host = if scheme.eq_ignore_ascii_case("mailto") {
            let not_bare = |c: char| c.is_whitespace() || ",;?#<>/:[]".contains(c);
            if rest.contains(not_bare) {
                return Err(refuse("a mailto: subject is one bare address"));
            }
            let (_, domain) = rest
                .rsplit_once('@')
                .filter(|(local, domain)| !local.is_empty() && !domain.is_empty())
                .ok_or_else(|| refuse("a mailto: subject needs an address like name@domain"))?;
            // Through a URL parser, so an internationalised domain is checked in its
            // ASCII (punycode) form, the same way as an https: subject.
            Url::parse(&format!("https://{domain}/"))
                .map_err(|_| refuse("its mail domain is not a valid domain name"))?
        } else if scheme.eq_ignore_ascii_case("https") {
            Url::parse(subject).map_err(|_| refuse("it is not a valid https: URL"))?
        } else {
            return Err(refuse("it must start with mailto: or https:"));
        };
        check_public_name(host.host_str().unwrap_or_default()).map_err(refuse)?;
        Ok(VapidSubject(subject.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VapidSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_public_name(host: &str) -> Result<(), &'static str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Err("it names an IP address, not a domain");
    }
    if !host.contains('.') {
        return Err("its domain is not a fully qualified public name");
    }
    let unreachable = UNREACHABLE_NAMES
        .iter()
        .any(|name| host == *name || host.ends_with(&format!(".{name}")));
    if unreachable {
        return Err("its domain is a local or reserved name that no push service can reach");
    }
    Ok(())
}

/// The VAPID key pair (P-256). Read from the private key; the public key is derived.
#[derive(Clone)]
pub struct VapidKey {
    signer: PartialVapidSignatureBuilder,
    public_key: String,
}

impl VapidKey {
    /// Reads a private key: 32 bytes in base64url (the form `web-push generate-vapid-keys`
    /// and most libraries print), or PEM (`EC PRIVATE KEY` or `PRIVATE KEY`).
    ///
    /// # Errors
    /// [`VapidError::Key`] when the text is neither, or not a valid P-256 scalar.
    pub fn parse(text: &str) -> Result<VapidKey, VapidError> {
        let text = text.trim();
        let signer = if text.starts_with("-----BEGIN") {
            VapidSignatureBuilder::from_pem_no_sub(text.as_bytes())
        } else {
            let raw = text.trim_end_matches('=');
            // jwt-simple panics on a scalar of any other length, so it is checked here.
            match URL_SAFE_NO_PAD.decode(raw) {
                Ok(bytes) if bytes.len() == 32 => VapidSignatureBuilder::from_base64_no_sub(raw),
                _ => return Err(VapidError::Key),
            }
        }
        .map_err(|_| VapidError::Key)?;
        let public_key = URL_SAFE_NO_PAD.encode(signer.get_public_key());
        Ok(VapidKey { signer, public_key })
    }

    /// The public key (uncompressed point, base64url): the `applicationServerKey` a browser
    /// subscribes with.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Everything VAPID needs: our key pair and our contact.
#[derive(Debug, Clone)]
pub struct VapidConfig {
    pub key: VapidKey,
    pub subject: VapidSubject,
}

impl VapidConfig {
    /// Reads both settings.
    ///
    /// # Errors
    /// As [`VapidKey::parse`] and [`VapidSubject::parse`].
    pub fn parse(private_key: &str, subject: &str) -> Result<VapidConfig, VapidError> {
        Ok(VapidConfig {
            key: VapidKey::parse(private_key)?,
            subject: VapidSubject::parse(subject)?,
        })
    }

    /// A token for one subscription; `audience` is its endpoint's origin.
    pub(crate) fn sign(
        &self,
        subscription: &SubscriptionInfo,
        audience: &str,
    ) -> Result<VapidSignature, web_push::WebPushError> {
        let mut builder = self.key.signer.clone().add_sub_info(subscription);
        // web-push would default `aud` to scheme://host without the port, and `sub` to a
        // placeholder address; both are set here.
        builder.add_claim("aud", audience);
        builder.add_claim("sub", self.subject.as_str());
        builder.build()
    }
}
