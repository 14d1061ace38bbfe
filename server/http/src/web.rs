//! The web pages: the worker's app (`/app/`, an installable PWA) and the supervisors' board
//! (`/board/`), with their shared code and Leaflet, all embedded at compile time (build.rs),
//! so nothing is fetched from another site at run time.
//!
//! Pages get a CSP of their own: scripts, styles and connections to ourselves only, never
//! inline; images also from the configured map tile server.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// OpenStreetMap's public tiles: the default map background.
pub const OSM_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

/// What the pages need from the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct WebConfig {
    /// The map tiles' URL template (`{z}/{x}/{y}`); empty for a map without tiles.
    pub tile_url: String,
    /// Where the board's map opens, and around which it lists the teams' places.
    pub center: [f64; 2],
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            tile_url: OSM_TILES.into(),
            // Aarhus, where the demo's team works.
            center: [56.1567, 10.2039],
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { redirect("/app/") }))
        .route("/app", get(|| async { redirect("/app/") }))
        .route("/board", get(|| async { redirect("/board/") }))
        .route("/manager", get(|| async { redirect("/manager/") }))
        .route("/manager/", get(|s: State<AppState>| async move { serve(&s.web, "manager/index.html") }))
        .route("/manager/{*path}", get(|s: State<AppState>, Path(p): Path<String>| async move { serve(&s.web, &format!("manager/{p}")) }))
        .route("/web/config.json", get(config))
        .route("/app/", get(|s: State<AppState>| async move { serve(&s.web, "app/index.html") }))
        .route("/board/", get(|s: State<AppState>| async move { serve(&s.web, "board/index.html") }))
        .route("/app/{*path}", get(|s: State<AppState>, Path(p): Path<String>| async move { serve(&s.web, &format!("app/{p}")) }))
        .route("/board/{*path}", get(|s: State<AppState>, Path(p): Path<String>| async move { serve(&s.web, &format!("board/{p}")) }))
        .route("/shared/{*path}", get(|s: State<AppState>, Path(p): Path<String>| async move { serve(&s.web, &format!("shared/{p}")) }))
        .route("/vendor/{*path}", get(|s: State<AppState>, Path(p): Path<String>| async move { serve(&s.web, &format!("vendor/{p}")) }))
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// The map's settings for the pages.
async fn config(State(state): State<AppState>) -> Json<WebConfig> {
    Json((*state.web).clone())
}

fn serve(web: &WebConfig, path: &str) -> Response {
    let Some((_, bytes, kind)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return ApiError::NotFound.into_response();
    };
    let csp =
        HeaderValue::from_str(&page_csp(&web.tile_url)).unwrap_or_else(|_| HeaderValue::from_static(STRICT));
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(kind)),
            (CONTENT_SECURITY_POLICY, csp),
        ],
        *bytes,
    )
        .into_response()
}

/// The pages' CSP without a tile server.
const STRICT: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'; object-src 'none'";

/// [`STRICT`], with images also from the tile server's origin.
fn page_csp(tile_url: &str) -> String {
    match origin(tile_url) {
        Some(origin) => STRICT.replacen(
            "img-src 'self' data:",
            &format!("img-src 'self' data: {origin}"),
            1,
        ),
        None => STRICT.to_owned(),
    }
}

/// `scheme://host[:port]` of a URL template (Leaflet's `{s}` subdomains as a wildcard);
/// `None` when it has none or could smuggle in another directive.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "https" | "http") {
        return None;
    }
    let host = rest[..rest.find('/').unwrap_or(rest.len())].replacen("{s}.", "*.", 1);
    let clean = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'))
        && !host[1..].contains('*');
    clean.then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_csp_admits_images_from_the_tile_servers_origin_only() {
        let csp = page_csp("https://{s}.tile.example.org/{z}/{x}/{y}.png");
        assert!(
            csp.contains("img-src 'self' data: https://*.tile.example.org;"),
            "{csp}"
        );
        assert!(csp.contains("default-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
    }

    #[test]
    fn a_tile_url_without_a_clean_origin_adds_nothing() {
        assert_eq!(page_csp(""), STRICT);
        assert_eq!(page_csp("https://x.org; script-src *"), STRICT);
        assert_eq!(page_csp("javascript:alert(1)"), STRICT);
    }

    #[test]
    fn every_page_and_leaflet_are_embedded() {
        for path in [
            "app/index.html",
            "app/sw.js",
            "app/manifest.webmanifest",
            "board/index.html",
            "manager/index.html",
            "manager/plan.html",
            "vendor/leaflet/leaflet.js",
            "vendor/leaflet/leaflet.css",
        ] {
            assert!(ASSETS.iter().any(|(p, _, _)| *p == path), "{path} is embedded");
        }
    }
}
