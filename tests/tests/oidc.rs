//! Single sign-on through a local OpenID Connect provider that serves discovery and its keys
//! and signs real RS256 ID tokens (`makker_fakes::oidc`). The browser is played by hand: each
//! redirect is followed and each cookie carried as a browser would.

use std::sync::{Arc, OnceLock};

use chrono::{Duration, Utc};
use makker_domain::Role;
use makker_domain::policy::Policy;
use makker_engine::clock::{Clock, ManualClock};
use makker_fakes::oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, Tamper};
use makker_http::oidc::{Oidc, OidcConfig};
use makker_store::Store;
use makker_tests::app::{TestApp, spawn_app_configured};
use makker_tests::both;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

/// An app with single sign-on through a fake provider that signs Anna in; Anna is a worker.
async fn app_with_sso(store: Arc<dyn Store>) -> (TestApp, FakeOidc) {
    // The provider stamps its tokens with the app's clock, as a provider in sync with us would
    // (the app, and so its clock, exists only once the provider's address is known).
    let app_clock: Arc<OnceLock<Arc<ManualClock>>> = Arc::default();
    let reader = app_clock.clone();
    let fake = FakeOidc::start("anna", move || reader.get().map_or_else(Utc::now, |c| c.now())).await;
    let issuer = fake.issuer.clone();
    let app = spawn_app_configured(store, Policy::default(), move |base, state| {
        let config = OidcConfig {
            issuer_url: issuer,
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_url: format!("{base}/auth/oidc/callback"),
            username_claim: "preferred_username".into(),
        };
        state.with_oidc(Oidc::new(config).expect("a valid configuration"))
    })
    .await;
    let _ = app_clock.set(app.clock.clone());
    let team = app.team("Gadeteam Aarhus").await;
    app.member("anna", Role::Worker, &team).await;
    (app, fake)
}

/// A browser without redirects followed or cookies kept: the test does both.
fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the cookie `name` set by `response`, with its attributes.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| {
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            (pair.to_owned(), attributes.to_owned())
        })
}

/// The browser follows the provider's redirect back to the callback, with its cookie.
async fn finish(http: &reqwest::Client, callback: &str, flow_cookie: &str) -> reqwest::Response {
    http.get(callback)
        .header(COOKIE, flow_cookie)
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// A sign-in started at the app and approved at the provider: the callback URL the provider
/// sends the browser to, and the flow cookie this browser holds.
async fn to_the_callback(app: &TestApp, http: &reqwest::Client) -> (String, String) {
    let start = http
        .get(format!("{}/auth/oidc/start?return_to=/board/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let (flow_cookie, attributes) = set_cookie(&start, "makker_sso").expect("a flow cookie");
    assert!(
        attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"),
        "{attributes}"
    );
    let authorize = location(&start);
    assert!(
        authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="),
        "{authorize}"
    );
    let approved = http.get(authorize).send().await.unwrap();
    assert_eq!(
        approved.status(),
        StatusCode::FOUND,
        "{:?}",
        approved.text().await
    );
    (location(&approved), flow_cookie)
}

async fn problem_type(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["type"].as_str().unwrap_or_default().to_owned()
}

/// Web sessions of a person (their devices named for single sign-on).
async fn sso_sessions(app: &TestApp, username: &str) -> usize {
    let Ok(person) = app.engine.store.person_by_username(username).await else {
        return 0;
    };
    let devices = app.engine.store.devices(person.id).await.unwrap();
    devices
        .iter()
        .filter(|d| d.name.contains("single sign-on"))
        .count()
}

async fn a_full_sign_in_starts_a_working_web_session(store: Arc<dyn Store>) {
    let (app, fake) = app_with_sso(store).await;
    let http = browser();
    let (callback, flow_cookie) = to_the_callback(&app, &http).await;
    let done = finish(&http, &callback, &flow_cookie).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&done),
        "/board/",
        "back to the page the sign-in began on"
    );
    let (session, attributes) = set_cookie(&done, "makker_session").expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(attributes.contains(attribute), "{attributes}");
    }
    let (forgotten, _) = set_cookie(&done, "makker_sso").expect("the flow cookie is cleared");
    assert_eq!(forgotten, "makker_sso=");

    let me = http
        .get(format!("{}/api/v1/auth/session", app.base))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["person"]["username"], "anna");
    assert!(me["csrf_token"].as_str().is_some_and(|t| !t.is_empty()), "{me}");
    assert_eq!(sso_sessions(&app, "anna").await, 1);

    // The same callback again (a replay, or a reload): refused, and no second session.
    let again = finish(&http, &callback, &flow_cookie).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&again, "makker_session").is_none());
    assert_eq!(problem_type(again).await, "urn:makker:problem:sso-state");
    assert_eq!(sso_sessions(&app, "anna").await, 1);
    assert_eq!(fake.tokens_issued(), 1, "the replayed code was never redeemed");
    assert_eq!(
        fake.discoveries(),
        1,
        "the provider's description is reused for a while"
    );
}

async fn a_bad_id_token_starts_no_session(store: Arc<dyn Store>) {
    let (app, fake) = app_with_sso(store).await;
    let http = browser();
    for tamper in [
        Tamper::ForeignKey,
        Tamper::WrongAudience,
        Tamper::WrongIssuer,
        Tamper::WrongNonce,
        Tamper::Expired,
    ] {
        let (callback, flow_cookie) = to_the_callback(&app, &http).await;
        fake.tamper_next(tamper);
        let refused = finish(&http, &callback, &flow_cookie).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{tamper:?}");
        assert!(set_cookie(&refused, "makker_session").is_none(), "{tamper:?}");
        assert_eq!(
            problem_type(refused).await,
            "urn:makker:problem:sso-refused",
            "{tamper:?}"
        );
    }
    assert_eq!(
        fake.tokens_issued(),
        5,
        "each token was issued, and each one refused"
    );
    assert_eq!(sso_sessions(&app, "anna").await, 0);
}

async fn an_identity_without_a_makker_person_is_refused(store: Arc<dyn Store>) {
    let (app, fake) = app_with_sso(store).await;
    let http = browser();
    fake.sign_in_as("mallory");
    let (callback, flow_cookie) = to_the_callback(&app, &http).await;
    let refused = finish(&http, &callback, &flow_cookie).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&refused, "makker_session").is_none());
    assert_eq!(
        problem_type(refused).await,
        "urn:makker:problem:sso-unknown-person"
    );
    assert!(
        app.engine.store.person_by_username("mallory").await.is_err(),
        "nobody is created"
    );
}

async fn an_unknown_foreign_or_expired_state_is_refused(store: Arc<dyn Store>) {
    let (app, fake) = app_with_sso(store).await;
    let http = browser();
    // A state nobody issued, with a cookie to match.
    let made_up = format!("{}/auth/oidc/callback?code=x&state=invented", app.base);
    let refused = http
        .get(&made_up)
        .header(COOKIE, "makker_sso=invented")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem_type(refused).await, "urn:makker:problem:sso-state");

    // A real callback opened in another browser (a link sent to a victim): refused, and the
    // flow stays for the browser that started it.
    let (callback, flow_cookie) = to_the_callback(&app, &http).await;
    let elsewhere = http.get(&callback).send().await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    let mine = finish(&http, &callback, &flow_cookie).await;
    assert_eq!(mine.status(), StatusCode::SEE_OTHER);

    // A sign-in left at the provider for longer than ten minutes has expired.
    let (callback, flow_cookie) = to_the_callback(&app, &http).await;
    app.clock.advance(Duration::minutes(11));
    let late = finish(&http, &callback, &flow_cookie).await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem_type(late).await, "urn:makker:problem:sso-state");
    assert_eq!(
        fake.tokens_issued(),
        1,
        "only the one good sign-in redeemed its code"
    );
    assert_eq!(sso_sessions(&app, "anna").await, 1);
}

both! {
    full_sign_in => a_full_sign_in_starts_a_working_web_session,
    bad_tokens => a_bad_id_token_starts_no_session,
    unknown_person => an_identity_without_a_makker_person_is_refused,
    bad_state => an_unknown_foreign_or_expired_state_is_refused,
}

#[tokio::test]
async fn without_a_provider_single_sign_on_is_not_there() {
    let (store, _dir) = makker_tests::sqlite_store().await;
    let app = makker_tests::app::spawn_app(store).await;
    let answer = browser()
        .get(format!("{}/auth/oidc/start", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem_type(answer).await, "urn:makker:problem:not-found");
}

#[tokio::test]
async fn a_return_address_on_another_site_is_refused() {
    let (store, _dir) = makker_tests::sqlite_store().await;
    let (app, _fake) = app_with_sso(store).await;
    let answer = browser()
        .get(format!("{}/auth/oidc/start?return_to=//evil.example/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(set_cookie(&answer, "makker_sso").is_none());
}
