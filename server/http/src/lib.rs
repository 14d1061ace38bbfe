//! Makker's HTTP API: the mobile API v1 under `/api/v1`, problem+json errors, the OpenAPI
//! document (served at `/api/v1/openapi.json` and kept in `schemas/openapi.json`).
//!
//! Invariants: every error is `application/problem+json` with a stable type; bodies are
//! bounded; a 5xx is logged once (in `ApiError`) and never explained to the client.

pub mod api;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod live;
pub mod oidc;
pub mod ops;
pub mod views;
pub mod web;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::IntoResponse;
use axum::routing::get;
use makker_engine::Engine;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;

/// The largest request body we read.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler shares. Axum clones it for each extractor of each request, so it is
/// one reference count, not one for each of its parts.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<App>);

#[derive(Clone)]
pub struct App {
    pub engine: Engine,
    pub webhooks: std::sync::Arc<webhooks::Webhooks>,
    pub hub: std::sync::Arc<live::Hub>,
    /// The web pages' settings (the map).
    pub web: std::sync::Arc<web::WebConfig>,
    /// Single sign-on, when an identity provider is configured.
    pub oidc: Option<std::sync::Arc<oidc::Oidc>>,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    pub fn new(engine: Engine, webhooks: webhooks::Webhooks) -> Self {
        AppState(std::sync::Arc::new(App {
            engine,
            webhooks: std::sync::Arc::new(webhooks),
            hub: live::Hub::new(),
            web: std::sync::Arc::default(),
            oidc: None,
        }))
    }

    /// With single sign-on through an OpenID Connect provider.
    pub fn with_oidc(mut self, oidc: oidc::Oidc) -> Self {
        std::sync::Arc::make_mut(&mut self.0).oidc = Some(std::sync::Arc::new(oidc));
        self
    }

    /// With the web pages' settings from the configuration.
    pub fn with_web(mut self, web: web::WebConfig) -> Self {
        std::sync::Arc::make_mut(&mut self.0).web = std::sync::Arc::new(web);
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Makker mobile API", version = "1", description = "The API that outreach workers' phones use. Errors are RFC 9457 problems."),
    modifiers(&DeviceToken),
    components(schemas(makker_mobile_api::Problem))
)]
struct ApiDoc;

struct DeviceToken;

impl Modify for DeviceToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // Browsers: the same token in an HttpOnly cookie, plus `X-CSRF-Token` on changes.
        components.add_security_scheme(
            "web_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::SESSION_COOKIE))),
        );
    }
}

/// Error answers are RFC 9457 problems: documented as `application/problem+json`, which is
/// what they carry (the handlers' annotations name only the body type).
struct ProblemJson;

impl Modify for ProblemJson {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for (status, response) in &mut op.responses.responses {
                    let (true, RefOr::T(response)) = (status.starts_with(['4', '5']), response) else {
                        continue;
                    };
                    if let Some(body) = response.content.shift_remove("application/json") {
                        response.content.insert("application/problem+json".into(), body);
                    }
                }
            }
        }
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(api::router())
}

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    ProblemJson.modify(&mut doc);
    doc
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    ops::prometheus();
    let (api, _) = api().split_for_parts();
    let doc = serde_json::to_string_pretty(&openapi()).expect("BUG: the OpenAPI document serializes");
    let request_id = HeaderName::from_static("x-request-id");
    api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::layer,
    ))
    .route(
        "/api/v1/openapi.json",
        get(move || async move { ([("content-type", "application/json")], doc) }),
    )
    .merge(ops::router())
    .merge(webhooks::router())
    .merge(web::router())
    .merge(oidc::router())
    .fallback(|| async { ApiError::NotFound })
    .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
    .with_state(state)
    .layer(axum::middleware::from_fn(ops::track))
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    .layer(CatchPanicLayer::custom(|_| {
        ApiError::Internal("panic".into()).into_response()
    }))
    .layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(30),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-store"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    ))
    // Our own pages and scripts only; never framed. CORS is closed: no layer answers another
    // origin, so browsers keep other sites from reading our answers.
    .layer(SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ))
    .layer(PropagateRequestIdLayer::new(request_id.clone()))
    .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let path = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("unmatched", axum::extract::MatchedPath::as_str);
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("request", method = %req.method(), path, request_id = id)
    }))
    .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Serves `router` on `listener`, with the live hub, until `shutdown` completes (graceful:
/// live streams end, in-flight requests finish).
///
/// # Errors
/// The listener fails.
pub async fn launch(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = state.hub.clone();
    let store = state.engine.store.clone();
    let (hinted, watcher_store) = (hub.clone(), store.clone());
    let watcher =
        tokio::spawn(async move { watcher_store.watch_live(Box::new(move || hinted.hint())).await });
    let hub_loop = tokio::spawn(hub.clone().run(store));
    let watcher_state = state.clone();
    let watching = tokio::spawn(async move {
        let mut every = tokio::time::interval(live::WATCH_EVERY);
        loop {
            every.tick().await;
            if let Err(e) = live::watch_once(&watcher_state).await {
                tracing::warn!(error = %e, "could not check that every team's board is watched");
            }
        }
    });
    let stopping = async move {
        shutdown.await;
        hub.stop();
    };
    // Each connection gets a clone of one shared router: served as it is, axum would rebuild
    // the whole route table (with the OpenAPI document) for every connection, ~350 KiB each.
    // Responses go out at once, not held back for the acknowledgement of the one before.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, router(state).into_make_service())
        .with_graceful_shutdown(stopping)
        .await;
    watcher.abort();
    watching.abort();
    let _ = hub_loop.await;
    served
}
