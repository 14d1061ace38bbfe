//! Single sign-on with OpenID Connect (municipal identity providers: Entra ID, Keycloak): the
//! authorization code flow with PKCE, `state` and `nonce`.
//!
//! - `GET /auth/oidc/start?return_to=/board/` keeps a new flow (state, nonce, PKCE verifier)
//!   in the database, binds it to this browser with a short-lived HttpOnly cookie holding the
//!   state, and redirects to the provider.
//! - `GET /auth/oidc/callback?code=…&state=…` takes the flow (once), checks that this browser
//!   started it, exchanges the code with the PKCE verifier and verifies the ID token: its
//!   RS256 signature against the provider's published keys (JWKS), issuer, audience, nonce and
//!   expiry, the time read from the engine's clock. The configured claim names a Makker
//!   username; its person gets a web session exactly as a password sign-in does.
//!
//! Invariants:
//! - Nobody is created: an unknown username is refused, and no session starts on any failure.
//! - A flow finishes at most once and only in the browser that started it (a link that carries
//!   someone else's state cannot sign a victim in as the attacker).
//! - What the provider says of itself (endpoints, signing keys) is fetched again after
//!   [`DISCOVERY_TTL`], so rotated keys are picked up, while a flood of sign-in starts cannot
//!   turn into a flood of requests to the provider. Its HTTP client follows no redirects.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use makker_engine::sso::{SSO_FLOW_MINUTES, SsoStart};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AsyncHttpClient, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, HttpRequest,
    HttpResponse, IdTokenClaims, IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::account::session_cookie;
use crate::error::ApiError;
use crate::extract::{ApiQuery, cookie};

/// The cookie that binds a flow to the browser that started it. `Lax`, not `Strict`: it must
/// come back on the provider's redirect, a top-level navigation from another site.
const FLOW_COOKIE: &str = "makker_sso";
const FLOW_COOKIE_ATTRIBUTES: &str = "Path=/auth/oidc; HttpOnly; Secure; SameSite=Lax";
/// How long the provider's discovery document and keys are trusted before they are fetched
/// again. Providers publish a new key well before they sign with it.
pub const DISCOVERY_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// The name a web session started by single sign-on gets in the person's list of devices.
const DEVICE_NAME: &str = "Web session (single sign-on)";

/// The identity provider and how Makker is registered with it.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer; its discovery document is at `{issuer}/.well-known/openid-configuration`.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Our callback as registered at the provider (`…/auth/oidc/callback`).
    pub redirect_url: String,
    /// The ID token claim that holds the Makker username (`preferred_username` by default).
    pub username_claim: String,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("username_claim", &self.username_claim)
            .finish_non_exhaustive()
    }
}

/// Single sign-on, ready to serve.
pub struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    username_claim: String,
    http: ProviderHttp,
    /// The last discovery, and when it was fetched.
    discovered: std::sync::Mutex<Option<(std::time::Instant, CoreProviderMetadata)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    #[error("{name} is not a URL: {value:?}")]
    Url { name: &'static str, value: String },
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Oidc {
    /// # Errors
    /// A URL that does not parse, or no TLS roots for the HTTP client.
    pub fn new(config: OidcConfig) -> Result<Self, OidcConfigError> {
        let url_error = |name, value: &str| OidcConfigError::Url {
            name,
            value: value.to_owned(),
        };
        Ok(Oidc {
            issuer: IssuerUrl::new(config.issuer_url.clone())
                .map_err(|_| url_error("oidc_issuer_url", &config.issuer_url))?,
            redirect: RedirectUrl::new(config.redirect_url.clone())
                .map_err(|_| url_error("oidc_redirect_url", &config.redirect_url))?,
            client_id: ClientId::new(config.client_id),
            client_secret: ClientSecret::new(config.client_secret),
            username_claim: config.username_claim,
            http: ProviderHttp(makker_notify::sms::http_client()?),
            discovered: std::sync::Mutex::default(),
        })
    }

    /// The provider as it describes itself (endpoints and signing keys), at most
    /// [`DISCOVERY_TTL`] old.
    async fn metadata(&self) -> Result<CoreProviderMetadata, ApiError> {
        let fresh = |(at, _): &(std::time::Instant, _)| at.elapsed() < DISCOVERY_TTL;
        if let Some((_, metadata)) = self.cached().filter(fresh) {
            return Ok(metadata);
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| ApiError::SsoUnavailable(format!("discovery: {e}")))?;
        *self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn cached(&self) -> Option<(std::time::Instant, CoreProviderMetadata)> {
        self.discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The client for the provider.
    async fn client(&self) -> Result<SsoClient, ApiError> {
        let metadata = self.metadata().await?;
        Ok(
            Client::from_provider_metadata(
                metadata,
                self.client_id.clone(),
                Some(self.client_secret.clone()),
            )
            .set_redirect_uri(self.redirect.clone()),
        )
    }

    /// Exchanges the code and verifies the ID token; answers the username it vouches for.
    async fn username(&self, code: String, flow: &SsoStart, state: &AppState) -> Result<String, ApiError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ApiError::SsoUnavailable(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    refused(format!("the provider refused the code: {r}"))
                }
                RequestTokenError::Parse(e, _) => refused(format!("unreadable token response: {e}")),
                e => ApiError::SsoUnavailable(format!("token request: {e}")),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| refused("the answer has no ID token"))?;
        let clock = state.engine.clock.clone();
        let verifier = client.id_token_verifier().set_time_fn(move || clock.now());
        let claims = id_token
            .claims(&verifier, &Nonce::new(flow.nonce.clone()))
            .map_err(|e| refused(format!("ID token: {e}")))?;
        claim(claims, &self.username_claim)
            .ok_or_else(|| refused(format!("the ID token has no {} claim", self.username_claim)))
    }
}

fn refused(why: impl Into<String>) -> ApiError {
    let why = why.into();
    tracing::warn!(reason = %why, "single sign-on refused");
    ApiError::SsoRefused(why)
}

/// Claims beyond the standard ones (Entra ID's `upn`, a Keycloak attribute, …).
#[derive(Debug, Clone, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type Claims = IdTokenClaims<OtherClaims, CoreGenderClaim>;
type SsoTokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
/// A discovered provider: authorization endpoint set, token and userinfo endpoints maybe.
type SsoClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    SsoTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The value of the claim `name` as text.
fn claim(claims: &Claims, name: &str) -> Option<String> {
    let standard = match name {
        "sub" => Some(claims.subject().as_str().to_owned()),
        "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
        "email" => claims.email().map(|e| e.as_str().to_owned()),
        _ => None,
    };
    standard
        .or_else(|| {
            claims
                .additional_claims()
                .rest
                .get(name)?
                .as_str()
                .map(str::to_owned)
        })
        .filter(|v| !v.trim().is_empty())
}

/// oauth2's HTTP client trait over the workspace's reqwest (rustls with ring, no redirects).
struct ProviderHttp(reqwest::Client);

type HttpFuture<'c> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, HttpClientError<reqwest::Error>>> + Send + 'c>>;

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future = HttpFuture<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let response = self.0.execute(request).await.map_err(Box::new)?;
            let mut answer = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response.bytes().await.map_err(Box::new)?;
            answer.body(body.to_vec()).map_err(HttpClientError::Http)
        })
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/start", get(start))
        .route("/auth/oidc/callback", get(callback))
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    /// Our page to open once signed in.
    return_to: Option<String>,
}

/// Redirects to the identity provider with a new flow.
async fn start(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let return_to = local_path(q.return_to.as_deref())?;
    let client = oidc.client().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let flow = SsoStart {
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        return_to,
    };
    state.engine.begin_sso(&flow).await?;
    let cookie = format!(
        "{FLOW_COOKIE}={}; {FLOW_COOKIE_ATTRIBUTES}; Max-Age={}",
        flow.state,
        SSO_FLOW_MINUTES * 60
    );
    Ok(redirect(url.as_str(), [cookie]))
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The provider's refusal (RFC 6749 §4.1.2.1), e.g. `access_denied`.
    error: Option<String>,
}

/// Finishes a flow: a web session and a redirect to the page it was started for.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or(ApiError::NotFound)?;
    let sent = q.state.as_deref().ok_or(ApiError::SsoState)?;
    if !cookie(&headers, FLOW_COOKIE).is_some_and(|mine| same_secret(mine, sent)) {
        return Err(ApiError::SsoState);
    }
    // Taken before anything else: whatever follows, this state cannot be used again.
    let flow = state.engine.finish_sso(sent).await?.ok_or(ApiError::SsoState)?;
    if let Some(error) = q.error {
        return Err(refused(format!("the identity provider answered {error:?}")));
    }
    let code = q.code.ok_or_else(|| refused("no authorization code"))?;
    let username = oidc.username(code, &flow, &state).await?;
    let (_, token, device) = state
        .engine
        .sso_sign_in(&username, DEVICE_NAME)
        .await?
        .ok_or(ApiError::SsoUnknownPerson)?;
    let forget_flow = format!("{FLOW_COOKIE}=; {FLOW_COOKIE_ATTRIBUTES}; Max-Age=0");
    let session = session_cookie(&state, &token, &device);
    Ok(redirect(&flow.return_to, [session, forget_flow]))
}

fn redirect<const N: usize>(to: &str, cookies: [String; N]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(to) = HeaderValue::from_str(to) {
        headers.insert(LOCATION, to);
    }
    for cookie in cookies {
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, cookie);
        }
    }
    response
}

/// Compares hashes, so the time taken tells nothing about the expected value.
fn same_secret(a: &str, b: &str) -> bool {
    let hash = makker_engine::auth::token_hash;
    hash(a) == hash(b)
}

/// Where to go after signing in: a path on this server only (never `//host`, which browsers
/// read as another site), `/` when not given.
fn local_path(given: Option<&str>) -> Result<String, ApiError> {
    let path = given.unwrap_or("/");
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 200
        && path.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    if local {
        Ok(path.to_owned())
    } else {
        Err(ApiError::Invalid(
            "return_to must be a path on this server, such as /board/".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_returned_to() {
        assert_eq!(local_path(None).unwrap(), "/");
        assert_eq!(local_path(Some("/board/")).unwrap(), "/board/");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "board",
            "/a b",
        ] {
            assert!(local_path(Some(bad)).is_err(), "{bad}");
        }
    }
}
