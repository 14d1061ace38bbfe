//! A local OpenID Connect provider (what a municipality's Entra ID or Keycloak is to Makker):
//! discovery (`/.well-known/openid-configuration`), its signing keys (`/jwks`), an
//! authorization endpoint that signs in the user the test chose at once (no login page), and a
//! token endpoint that checks the client's secret (HTTP Basic), the redirect URI and the PKCE
//! verifier (S256), and answers a real RS256-signed ID token carrying the nonce.
//!
//! A test can make the next ID token bad in one way ([`Tamper`]) to see the client refuse it.
//! Times in tokens come from the clock the fake is given (the app's manual clock in tests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserUsername, IssuerUrl, JsonWebKeyId, Nonce, PrivateSigningKey,
    StandardClaims, SubjectIdentifier,
};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "makker";
pub const CLIENT_SECRET: &str = "fake-oidc-client-secret";
const KEY_ID: &str = "fake-key-1";

/// One way to spoil the next ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Signed by another key that claims the provider's key id.
    ForeignKey,
    /// For another client.
    WrongAudience,
    /// Issued by someone else.
    WrongIssuer,
    /// Not the nonce of this sign-in (a token replayed from another one).
    WrongNonce,
    /// Expired an hour ago.
    Expired,
}

/// What the authorization endpoint granted, until the code is redeemed (once).
struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: String,
    challenge: String,
    username: String,
}

struct Inner {
    key: CoreRsaPrivateSigningKey,
    foreign: CoreRsaPrivateSigningKey,
    /// Who signs in at the authorization endpoint.
    username: String,
    grants: HashMap<String, Grant>,
    tamper: Option<Tamper>,
    tokens_issued: usize,
    discoveries: usize,
}

#[derive(Clone)]
pub struct FakeOidc {
    inner: Arc<Mutex<Inner>>,
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// The issuer: `http://127.0.0.1:<port>`.
    pub issuer: String,
}

impl FakeOidc {
    /// Starts on 127.0.0.1:0, signing in `username`, with times from `now`.
    pub async fn start(username: &str, now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> FakeOidc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeOidc {
            inner: Arc::new(Mutex::new(Inner {
                key: signing_key(),
                foreign: signing_key(),
                username: username.into(),
                grants: HashMap::new(),
                tamper: None,
                tokens_issued: 0,
                discoveries: 0,
            })),
            now: Arc::new(now),
            issuer,
        };
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// Who signs in from now on.
    pub fn sign_in_as(&self, username: &str) {
        self.inner.lock().unwrap().username = username.into();
    }

    /// Spoils the next ID token (only the next).
    pub fn tamper_next(&self, how: Tamper) {
        self.inner.lock().unwrap().tamper = Some(how);
    }

    /// How many times the discovery document was fetched.
    pub fn discoveries(&self) -> usize {
        self.inner.lock().unwrap().discoveries
    }

    /// How many ID tokens the token endpoint handed out.
    pub fn tokens_issued(&self) -> usize {
        self.inner.lock().unwrap().tokens_issued
    }
}

/// A fresh 2048-bit RSA key, as a provider would have.
fn signing_key() -> CoreRsaPrivateSigningKey {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate an RSA key");
    let pem = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .expect("encode the key");
    CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new(KEY_ID.into()))).expect("load the key")
}

async fn discovery(State(fake): State<FakeOidc>) -> Json<Value> {
    fake.inner.lock().unwrap().discoveries += 1;
    let at = |path: &str| format!("{}{path}", fake.issuer);
    Json(json!({
        "issuer": fake.issuer,
        "authorization_endpoint": at("/authorize"),
        "token_endpoint": at("/token"),
        "jwks_uri": at("/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username"]
    }))
}

async fn jwks(State(fake): State<FakeOidc>) -> Json<Value> {
    let key = fake.inner.lock().unwrap().key.as_verification_key();
    Json(json!({ "keys": [key] }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
}

/// Signs the chosen user in at once and sends the browser back with a code.
async fn authorize(State(fake): State<FakeOidc>, Query(q): Query<AuthorizeQuery>) -> Response {
    let ok = q.response_type == "code"
        && q.scope.split(' ').any(|s| s == "openid")
        && q.code_challenge_method == "S256";
    if !ok {
        return (StatusCode::BAD_REQUEST, "unsupported authorization request").into_response();
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    let mut inner = fake.inner.lock().unwrap();
    let grant = Grant {
        client_id: q.client_id,
        redirect_uri: q.redirect_uri.clone(),
        nonce: q.nonce,
        challenge: q.code_challenge,
        username: inner.username.clone(),
    };
    inner.grants.insert(code.clone(), grant);
    let query =
        serde_urlencoded::to_string([("code", code.as_str()), ("state", q.state.as_str())]).expect("a query");
    (
        StatusCode::FOUND,
        [(LOCATION, format!("{}?{query}", q.redirect_uri))],
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// Redeems a code (once) for an ID token, as RFC 6749 §4.1.3, RFC 7636 §4.6 and OpenID
/// Connect Core §3.1.3 describe.
async fn token(State(fake): State<FakeOidc>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    if basic_auth(&headers).as_ref() != Some(&(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut inner = fake.inner.lock().unwrap();
    let Some(grant) = inner.grants.remove(&form.code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier = form.code_verifier.unwrap_or_default();
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let valid = form.grant_type == "authorization_code"
        && grant.client_id == CLIENT_ID
        && grant.redirect_uri == form.redirect_uri
        && grant.challenge == challenge;
    if !valid {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let tamper = inner.tamper.take();
    let id_token = id_token(&fake, &inner, &grant, tamper);
    inner.tokens_issued += 1;
    Json(json!({
        "access_token": uuid::Uuid::new_v4().simple().to_string(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    // RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()?
            .pop()
            .map(|p| p.1)
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn id_token(fake: &FakeOidc, inner: &Inner, grant: &Grant, tamper: Option<Tamper>) -> CoreIdToken {
    let now = (fake.now)();
    let issuer = match tamper {
        Some(Tamper::WrongIssuer) => "http://impostor.invalid".to_owned(),
        _ => fake.issuer.clone(),
    };
    let audience = match tamper {
        Some(Tamper::WrongAudience) => "another-client".to_owned(),
        _ => grant.client_id.clone(),
    };
    let nonce = match tamper {
        Some(Tamper::WrongNonce) => "a-nonce-from-another-sign-in".to_owned(),
        _ => grant.nonce.clone(),
    };
    let (issued, expires) = match tamper {
        Some(Tamper::Expired) => (now - Duration::hours(2), now - Duration::hours(1)),
        _ => (now, now + Duration::minutes(5)),
    };
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(issuer).expect("an issuer URL"),
        vec![Audience::new(audience)],
        expires,
        issued,
        StandardClaims::new(SubjectIdentifier::new(format!("sub-{}", grant.username)))
            .set_preferred_username(Some(EndUserUsername::new(grant.username.clone()))),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let key = match tamper {
        Some(Tamper::ForeignKey) => &inner.foreign,
        _ => &inner.key,
    };
    CoreIdToken::new(
        claims,
        key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .expect("sign an ID token")
}
