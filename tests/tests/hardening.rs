//! What every answer carries and refuses: security headers, closed CORS, bounded bodies.

use std::sync::Arc;

use makker_store::Store;
use makker_tests::app::{TestApp, ready};
use makker_tests::both;

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn assert_hardened(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(
            h.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on {what}"
        );
    }
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "no CORS on {what}"
    );
}

async fn answers_carry_security_headers_and_no_cors(store: Arc<dyn Store>) {
    let (app, _f): (TestApp, _) = ready(store).await;
    let ok = http().get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_hardened(&ok, "a success");
    let problem = http()
        .get(format!("{}/api/v1/me", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(problem.status(), 401);
    assert_hardened(&problem, "a problem");
    let preflight = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/auth/login", app.base),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!preflight.status().is_success(), "{}", preflight.status());
    assert_hardened(&preflight, "a preflight");
}

async fn a_body_over_the_limit_is_refused_before_it_is_read(store: Arc<dyn Store>) {
    let (app, _f) = ready(store).await;
    let big = format!(
        r#"{{"username": "{}", "password": "x", "device_name": "x"}}"#,
        "a".repeat(70_000)
    );
    let r = http()
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

both! {
    headers => answers_carry_security_headers_and_no_cors,
    body_limit => a_body_over_the_limit_is_refused_before_it_is_read,
}
