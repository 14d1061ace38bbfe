//! Web sessions: an HttpOnly cookie for browsers, and a CSRF token on every change.

use std::sync::Arc;

use makker_domain::Role;
use makker_mobile_api::SessionView;
use makker_store::Store;
use makker_tests::app::{TestApp, ready};
use makker_tests::both;
use reqwest::{Response, StatusCode};

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A browser's session: the cookie as the browser would send it back, and the page's view.
struct Browser {
    cookie: String,
    view: SessionView,
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> Response {
    http()
        .post(format!("{}/api/v1/auth/session", app.base))
        .header("user-agent", "Mozilla/5.0 Chrome/156.0 Safari/537.36")
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn browser(app: &TestApp, username: &str) -> Browser {
    let r = sign_in(app, username, "pw").await;
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    Browser {
        cookie,
        view: r.json().await.unwrap(),
    }
}

impl Browser {
    fn request(&self, method: reqwest::Method, app: &TestApp, path: &str) -> reqwest::RequestBuilder {
        http()
            .request(method, format!("{}{path}", app.base))
            .header("cookie", &self.cookie)
    }
}

async fn problem_type(r: Response) -> String {
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    body["type"].as_str().unwrap().to_owned()
}

async fn sign_in_sets_a_locked_down_cookie_that_authenticates(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let r = sign_in(&app, "anna", "pw").await;
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("makker_session=mk_"), "{set}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let view: SessionView = r.json().await.unwrap();
    assert_eq!(view.person.id, f.anna.id());
    assert!(
        !set.contains(&view.csrf_token),
        "the CSRF token is not the session token"
    );

    let anna = browser(&app, "anna").await;
    let me = anna
        .request(reqwest::Method::GET, &app, "/api/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["username"], "anna");
    // A reloaded page gets its session, with the same CSRF token, back.
    let again: SessionView = anna
        .request(reqwest::Method::GET, &app, "/api/v1/auth/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again.csrf_token, anna.view.csrf_token);
    assert_eq!(again.device_id, anna.view.device_id);
    // The session is one of my devices, named after the browser.
    let devices = app.engine.store.devices(f.anna.person.id).await.unwrap();
    let device = devices.iter().find(|d| d.id == anna.view.device_id).unwrap();
    assert_eq!(device.name, "Web session (Chrome)");
    // A phone's bearer token has no web session to show.
    let r = http()
        .get(format!("{}/api/v1/auth/session", app.base))
        .bearer_auth(f.anna.phone.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn a_change_by_cookie_without_its_csrf_token_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let dora = app.member("dora", Role::Worker, &f.team).await;
    let tab = browser(&app, "dora").await;
    let other = browser(&app, "anna").await;
    let start = |csrf: Option<&str>, key: &str| {
        let mut r = tab
            .request(reqwest::Method::POST, &app, "/api/v1/shift/start")
            .header("idempotency-key", key)
            .json(&serde_json::json!({}));
        if let Some(csrf) = csrf {
            r = r.header("x-csrf-token", csrf);
        }
        r.send()
    };
    for csrf in [None, Some(""), Some(other.view.csrf_token.as_str())] {
        let r = start(csrf, "k1").await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{csrf:?}");
        assert_eq!(problem_type(r).await, "urn:makker:problem:csrf");
    }
    let on_shift = || async {
        app.engine
            .store
            .open_shift(dora.person.id)
            .await
            .unwrap()
            .is_some()
    };
    assert!(!on_shift().await);
    // The refusals kept nothing under the key: the same key with the token does the work.
    let r = start(Some(&tab.view.csrf_token), "k1").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert!(on_shift().await);
    // Reading needs no token; a phone's bearer token needs none either.
    let r = tab
        .request(reqwest::Method::GET, &app, "/api/v1/colleagues")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    dora.phone
        .end_shift()
        .await
        .expect("a bearer token changes without a CSRF token");
}

async fn signing_out_revokes_the_session_and_clears_the_cookie(store: Arc<dyn Store>) {
    let (app, _f) = ready(store).await;
    let tab = browser(&app, "sofie").await;
    let sign_out = |csrf: Option<&str>| {
        let mut r = tab.request(reqwest::Method::DELETE, &app, "/api/v1/auth/session");
        if let Some(csrf) = csrf {
            r = r.header("x-csrf-token", csrf);
        }
        r.send()
    };
    // Another site cannot sign me out (nor do anything else) without the token.
    let r = sign_out(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let me = tab
        .request(reqwest::Method::GET, &app, "/api/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let r = sign_out(Some(&tab.view.csrf_token)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("makker_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    let me = tab
        .request(reqwest::Method::GET, &app, "/api/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "the old cookie no longer works");
}

async fn a_wrong_password_sets_no_cookie_and_counts_towards_the_lockout(store: Arc<dyn Store>) {
    let (app, _f) = ready(store).await;
    for _ in 0..4 {
        let r = sign_in(&app, "anna", "wrong").await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
    }
    // The fifth failure locks the username; then even the right password is refused.
    assert_eq!(sign_in(&app, "anna", "wrong").await.status(), 429);
    let r = sign_in(&app, "anna", "pw").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(problem_type(r).await, "urn:makker:problem:locked-out");
    let r = sign_in(&app, "", "pw").await;
    assert_eq!(r.status(), 422);
}

async fn the_live_stream_takes_the_session_cookie(store: Arc<dyn Store>) {
    let (app, _f) = ready(store).await;
    let board = browser(&app, "sofie").await;
    let mut r = board
        .request(reqwest::Method::GET, &app, "/api/v1/live")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: snapshot"));
    // Workers have no board, by cookie as by token; managers see aggregates, not positions.
    for who in ["anna", "lars"] {
        let tab = browser(&app, who).await;
        let r = tab
            .request(reqwest::Method::GET, &app, "/api/v1/live")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{who}");
    }
}

both! {
    cookie => sign_in_sets_a_locked_down_cookie_that_authenticates,
    csrf => a_change_by_cookie_without_its_csrf_token_is_refused_and_changes_nothing,
    sign_out => signing_out_revokes_the_session_and_clears_the_cookie,
    wrong_password => a_wrong_password_sets_no_cookie_and_counts_towards_the_lockout,
    live => the_live_stream_takes_the_session_cookie,
}
