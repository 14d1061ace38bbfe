//! Which push endpoints we send to, and how an endpoint appears in logs.
//!
//! Invariants:
//! - An endpoint comes from a browser, so it is untrusted input: it must be `https` (plain
//!   `http` only when the policy allows it, for tests), carry no credentials, and every
//!   address its host resolves to must be public. Loopback is refused unless the policy
//!   allows it (tests); private, shared (CGNAT), link-local, unique-local, multicast,
//!   documentation and unspecified addresses are always refused.
//! - One rule, applied twice: before a message is built ([`EndpointPolicy::resolve`]) and
//!   again in the HTTP client's resolver at connect time, so a name that re-resolves to a
//!   private address between the two (DNS rebinding) is still refused.
//! - Logs show an endpoint as its origin only (`https://fcm.googleapis.com/…`): the path is
//!   the subscription's capability, and anyone holding it can push to the device.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// What a push endpoint may be. The default is the production rule: `https` only, public
/// addresses only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Accept `http://` endpoints (tests against a local fake).
    pub allow_http: bool,
    /// Accept endpoints that resolve to loopback addresses (tests against a local fake).
    pub allow_loopback: bool,
}

/// The kind of address a push endpoint resolved to, when it is not a public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    /// RFC 1918 private networks and the RFC 6598 shared (carrier-grade NAT) range.
    Private,
    LinkLocal,
    /// IPv6 unique-local (`fc00::/7`) and the deprecated site-local range.
    UniqueLocal,
    /// Unspecified, multicast, broadcast, documentation, benchmarking and other reserved ranges.
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Reserved => "reserved",
        })
    }
}

/// Why a push endpoint was not used. The messages name the host at most, never the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the push endpoint is not an absolute URL")]
    NotAUrl,
    #[error("the push endpoint's scheme is {0:?}; only https is allowed")]
    Scheme(String),
    #[error("the push endpoint carries a user name or password")]
    Credentials,
    #[error("the push endpoint has no host")]
    NoHost,
    #[error("the push endpoint's host {host} is at {addr}, a {class} address")]
    Refused {
        host: String,
        addr: IpAddr,
        class: AddressClass,
    },
    /// The name did not resolve now; it may later, so this one is worth a retry.
    #[error("the push endpoint's host {host} did not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

impl EndpointPolicy {
    /// Parses an endpoint and checks what can be checked without the network.
    ///
    /// # Errors
    /// Not a URL, a scheme other than `https` (or `http` when allowed), credentials in the
    /// URL, or no host.
    pub fn check_url(&self, endpoint: &str) -> Result<Url, EndpointError> {
        let url = Url::parse(endpoint).map_err(|_| EndpointError::NotAUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(EndpointError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::Credentials);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError::NoHost);
        }
        Ok(url)
    }

    /// Resolves the endpoint's host and checks every address it resolves to.
    ///
    /// # Errors
    /// [`EndpointError::Refused`] when any address is not allowed, and
    /// [`EndpointError::Unresolved`] when the name does not resolve.
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, EndpointError> {
        let host = url.host_str().ok_or(EndpointError::NoHost)?;
        let port = url.port_or_known_default().unwrap_or(443);
        self.resolve_host(host, port).await
    }

    /// The one place a host becomes addresses: the sender's check and the HTTP client's
    /// resolver both come here.
    pub(crate) async fn resolve_host(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EndpointError> {
        // A URL writes an IPv6 literal in brackets; the resolver hands it over bare.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| EndpointError::Unresolved {
                    host: bare.to_owned(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(EndpointError::Unresolved {
                host: bare.to_owned(),
                reason: "no addresses".into(),
            });
        }
        for addr in &addrs {
            self.check_ip(addr.ip()).map_err(|class| EndpointError::Refused {
                host: bare.to_owned(),
                addr: addr.ip(),
                class,
            })?;
        }
        Ok(addrs)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), AddressClass> {
        match classify(ip) {
            None => Ok(()),
            Some(AddressClass::Loopback) if self.allow_loopback => Ok(()),
            Some(class) => Err(class),
        }
    }
}

/// `None` for a public address, otherwise what it is.
pub(crate) fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    let shared = a == 100 && (b & 0xc0) == 64;
    let this_network = a == 0;
    let multicast_reserved_or_broadcast = a >= 224;
    let protocol_assignments = a == 192 && b == 0 && c == 0;
    let benchmarking = a == 198 && (b & 0xfe) == 18;
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_private() || shared {
        Some(AddressClass::Private)
    } else if ip.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if this_network
        || multicast_reserved_or_broadcast
        || protocol_assignments
        || benchmarking
        || ip.is_documentation()
    {
        Some(AddressClass::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let s = ip.segments();
    let site_local = (s[0] & 0xffc0) == 0xfec0;
    let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
    let discard_only = s[0] == 0x0100 && s[1..4] == [0, 0, 0];
    // Teredo hides its IPv4 side, so it is refused rather than guessed at.
    let teredo = s[0] == 0x2001 && s[1] == 0;
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if let Some(v4) = embedded_v4(ip) {
        classify_v4(v4)
    } else if ip.is_unique_local() || site_local {
        Some(AddressClass::UniqueLocal)
    } else if ip.is_unicast_link_local() {
        Some(AddressClass::LinkLocal)
    } else if ip.is_unspecified() || ip.is_multicast() || documentation || discard_only || teredo {
        Some(AddressClass::Reserved)
    } else {
        None
    }
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 (`64:ff9b::/96`) or 6to4
/// (`2002::/16`) address: those reach the IPv4 address, so it is what must be checked.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let compatible = s[..6] == [0; 6] && !ip.is_unspecified();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if compatible || nat64 {
        Some(from(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(from(s[1], s[2]))
    } else {
        None
    }
}

/// The endpoint's origin (`https://host[:port]`): VAPID's `aud`, and what logs may show.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `https://fcm.googleapis.com/fcm/send/abc…` → `https://fcm.googleapis.com/…`: enough to
/// tell push services apart in a log, not to push to the device.
pub fn mask_endpoint(endpoint: &str) -> String {
    match Url::parse(endpoint) {
        Ok(url) if url.has_host() => format!("{}/…", origin(&url)),
        _ => "<not a URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_count_as_public() {
        let cases: &[(&str, Option<AddressClass>)] = &[
            ("142.250.74.42", None),
            ("2a00:1450:400f:80c::200a", None),
            ("127.0.0.1", Some(AddressClass::Loopback)),
            ("127.8.9.10", Some(AddressClass::Loopback)),
            ("::1", Some(AddressClass::Loopback)),
            ("::ffff:127.0.0.1", Some(AddressClass::Loopback)),
            ("10.1.2.3", Some(AddressClass::Private)),
            ("172.16.0.1", Some(AddressClass::Private)),
            ("192.168.1.1", Some(AddressClass::Private)),
            ("100.64.0.1", Some(AddressClass::Private)),
            ("::ffff:10.0.0.1", Some(AddressClass::Private)),
            ("64:ff9b::a00:1", Some(AddressClass::Private)),
            ("2002:c0a8:101::1", Some(AddressClass::Private)),
            ("169.254.169.254", Some(AddressClass::LinkLocal)),
            ("fe80::1", Some(AddressClass::LinkLocal)),
            ("fd00::1", Some(AddressClass::UniqueLocal)),
            ("fc12::1", Some(AddressClass::UniqueLocal)),
            ("fec0::1", Some(AddressClass::UniqueLocal)),
            ("0.0.0.0", Some(AddressClass::Reserved)),
            ("::", Some(AddressClass::Reserved)),
            ("224.0.0.1", Some(AddressClass::Reserved)),
            ("255.255.255.255", Some(AddressClass::Reserved)),
            ("192.0.2.1", Some(AddressClass::Reserved)),
            ("198.18.0.1", Some(AddressClass::Reserved)),
            ("2001:db8::1", Some(AddressClass::Reserved)),
            ("ff02::1", Some(AddressClass::Reserved)),
        ];
        for (ip, expected) in cases {
            assert_eq!(classify(ip.parse().unwrap()), *expected, "{ip}");
        }
    }

    #[test]
    fn an_endpoint_is_masked_to_its_origin() {
        assert_eq!(
            mask_endpoint("https://fcm.googleapis.com/fcm/send/secret-token"),
            "https://fcm.googleapis.com/…"
        );
        assert_eq!(
            mask_endpoint("http://127.0.0.1:8080/push/abc"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(mask_endpoint("not a url/secret"), "<not a URL>");
    }

    #[test]
    fn an_endpoint_must_be_https_without_credentials() {
        let strict = EndpointPolicy::default();
        assert!(strict.check_url("https://push.example.net/x").is_ok());
        assert_eq!(
            strict.check_url("http://push.example.net/x"),
            Err(EndpointError::Scheme("http".into()))
        );
        assert_eq!(
            strict.check_url("https://user:pw@push.example.net/x"),
            Err(EndpointError::Credentials)
        );
        assert_eq!(strict.check_url("/relative"), Err(EndpointError::NotAUrl));
        let tests = EndpointPolicy {
            allow_http: true,
            allow_loopback: true,
        };
        assert!(tests.check_url("http://127.0.0.1:1/x").is_ok());
        assert_eq!(
            tests.check_url("ftp://h/x"),
            Err(EndpointError::Scheme("ftp".into()))
        );
    }
}
