//! Areas, routes and coverage for managers (supervisors read their teams' too; workers are
//! refused). Figures are aggregates: nothing here names a worker or shows a position trail.
//! Maps are GeoJSON (RFC 7946, `application/geo+json`), tables CSV.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use makker_domain::coverage::DEFAULT_LATE_MINUTES;
use makker_domain::coverage_export::{self, Table};
use makker_domain::route::{Route, Stop};
use makker_domain::{AreaId, RouteId, TeamId};
use makker_engine::coverage::{ReportQuery, RouteInput};
use makker_mobile_api::Problem;
use makker_mobile_api::coverage::{CoverageComparison, CoverageReport, RouteRequest, RouteView, StopView};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::UtoipaMethodRouter;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Caller};

/// The largest GeoJSON import we read (district outlines are detailed).
pub const IMPORT_LIMIT: usize = 4 * 1024 * 1024;

/// Lets a route read bodies up to [`IMPORT_LIMIT`] (the rest of the API keeps the small limit).
pub fn large_body(r: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method) = r;
    (
        schemas,
        paths,
        method.layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)),
    )
}

/// Path ids; one that is not a UUID is simply not found.
pub struct Ids<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Ids(p.0))
            .map_err(|_| ApiError::NotFound)
    }
}

#[derive(Deserialize)]
pub struct TeamPath {
    pub team_id: Uuid,
}

#[derive(Deserialize)]
pub struct AreaPath {
    team_id: Uuid,
    area_id: Uuid,
}

#[derive(Deserialize)]
pub struct RoutePath {
    team_id: Uuid,
    route_id: Uuid,
}

/// A GeoJSON document.
pub struct GeoJson(pub String);

impl IntoResponse for GeoJson {
    fn into_response(self) -> Response {
        ([(CONTENT_TYPE, "application/geo+json")], self.0).into_response()
    }
}

// --- areas ------------------------------------------------------------------------------

fn areas_geojson(areas: &[makker_domain::area::Area]) -> GeoJson {
    GeoJson(makker_domain::area::areas_geojson(areas, |_| serde_json::Map::new()).to_string())
}

/// The team's areas (districts) as a GeoJSON FeatureCollection with `id` and `name`.
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/areas", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    responses((status = 200, content_type = "application/geo+json", body = serde_json::Value),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn areas(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
) -> Result<GeoJson, ApiError> {
    let areas = state
        .engine
        .areas(&me.person, TeamId(p.team_id))
        .await
        .map_err(me.err())?;
    Ok(areas_geojson(&areas))
}

/// Imports areas from a GeoJSON FeatureCollection of Polygon or MultiPolygon features, each
/// with a `name`: a known name is redrawn, a new one added; all or nothing. Answers the team's
/// areas. Managers and admins.
#[utoipa::path(post, path = "/api/v1/teams/{team_id}/areas/import", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    request_body(content = serde_json::Value, content_type = "application/geo+json"),
    responses((status = 200, content_type = "application/geo+json", body = serde_json::Value),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn import_areas(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<GeoJson, ApiError> {
    let areas = state
        .engine
        .import_areas(&me.person, TeamId(p.team_id), &body.to_string())
        .await
        .map_err(me.err())?;
    Ok(areas_geojson(&areas))
}

/// Removes an area. Managers and admins.
#[utoipa::path(delete, path = "/api/v1/teams/{team_id}/areas/{area_id}", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), ("area_id" = Uuid, Path, description = "The area")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_area(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<AreaPath>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .delete_area(&me.person, TeamId(p.team_id), AreaId(p.area_id))
        .await
        .map_err(me.err())?;
    Ok(StatusCode::NO_CONTENT)
}

// --- routes -----------------------------------------------------------------------------

fn route_input(r: RouteRequest) -> Result<RouteInput, ApiError> {
    let stops = r
        .stops
        .into_iter()
        .map(|s| {
            let weekday = s
                .weekday
                .checked_sub(1)
                .and_then(|d| chrono::Weekday::try_from(d).ok())
                .ok_or_else(|| ApiError::Invalid("weekday is 1 (Monday) to 7 (Sunday)".into()))?;
            Ok(Stop {
                place: makker_domain::PlaceId(s.place_id),
                weekday,
                opens: s.opens,
                closes: s.closes,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(RouteInput {
        name: r.name,
        valid_from: r.valid_from,
        valid_until: r.valid_until,
        stops,
    })
}

async fn route_views(state: &AppState, routes: &[Route]) -> Result<Vec<RouteView>, ApiError> {
    let teams: Vec<TeamId> = routes.iter().map(|r| r.team).collect();
    let places = state
        .engine
        .store
        .places(&teams)
        .await
        .map_err(|e| ApiError::Engine(e.into(), makker_domain::text::Lang::Da))?;
    let name = |id| {
        places
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    Ok(routes
        .iter()
        .map(|r| RouteView {
            id: r.id.0,
            team_id: r.team.0,
            name: r.name.clone(),
            valid_from: r.valid_from,
            valid_until: r.valid_until,
            stops: r
                .stops
                .iter()
                .map(|s| StopView {
                    place_id: s.place.0,
                    place_name: name(s.place),
                    weekday: u8::try_from(s.weekday.number_from_monday()).expect("BUG: 1..=7 fits"),
                    opens: s.opens,
                    closes: s.closes,
                })
                .collect(),
        })
        .collect())
}

/// The team's routes with their stops (a manager's leave out the stops at homes).
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/routes", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    responses((status = 200, body = Vec<RouteView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn routes(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
) -> Result<Json<Vec<RouteView>>, ApiError> {
    let routes = state
        .engine
        .routes(&me.person, TeamId(p.team_id))
        .await
        .map_err(me.err())?;
    Ok(Json(route_views(&state, &routes).await?))
}

/// Plans a new route. Managers and admins.
#[utoipa::path(post, path = "/api/v1/teams/{team_id}/routes", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    request_body = RouteRequest,
    responses((status = 201, body = RouteView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_route(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiJson(req): ApiJson<RouteRequest>,
) -> Result<(StatusCode, Json<RouteView>), ApiError> {
    let input = route_input(req)?;
    let route = state
        .engine
        .save_route(&me.person, TeamId(p.team_id), None, input)
        .await
        .map_err(me.err())?;
    let view = route_views(&state, std::slice::from_ref(&route)).await?.remove(0);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Replaces a route: its name, its validity and all its stops (a manager's edit keeps the
/// home stops it does not see). Managers and admins.
#[utoipa::path(put, path = "/api/v1/teams/{team_id}/routes/{route_id}", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), ("route_id" = Uuid, Path, description = "The route")),
    request_body = RouteRequest,
    responses((status = 200, body = RouteView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn update_route(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<RoutePath>,
    ApiJson(req): ApiJson<RouteRequest>,
) -> Result<Json<RouteView>, ApiError> {
    let input = route_input(req)?;
    let route = state
        .engine
        .save_route(&me.person, TeamId(p.team_id), Some(RouteId(p.route_id)), input)
        .await
        .map_err(me.err())?;
    Ok(Json(
        route_views(&state, std::slice::from_ref(&route)).await?.remove(0),
    ))
}

/// The team's routes as GeoJSON: a Point per stop at its place, with `route`, `valid_from`,
/// `valid_until`, `position`, `place_id`, `place`, `weekday` (1 = Monday), `opens`, `closes`.
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/routes/export", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    responses((status = 200, content_type = "application/geo+json", body = serde_json::Value),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn export_routes(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
) -> Result<GeoJson, ApiError> {
    let fc = state
        .engine
        .routes_geojson(&me.person, TeamId(p.team_id))
        .await
        .map_err(me.err())?;
    Ok(GeoJson(fc.to_string()))
}

/// Imports routes from GeoJSON as the export writes them (a place by `place_id`, or by its
/// exact `place` name): a route the team has by name is replaced, a new one added; all or
/// nothing. Managers and admins.
#[utoipa::path(post, path = "/api/v1/teams/{team_id}/routes/import", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    request_body(content = serde_json::Value, content_type = "application/geo+json"),
    responses((status = 200, body = Vec<RouteView>), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn import_routes(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<Vec<RouteView>>, ApiError> {
    let routes = state
        .engine
        .import_routes(&me.person, TeamId(p.team_id), &body.to_string())
        .await
        .map_err(me.err())?;
    Ok(Json(route_views(&state, &routes).await?))
}

// --- coverage ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    /// First local date; four weeks before `to` when left out.
    pub from: Option<NaiveDate>,
    /// Last local date; today when left out.
    pub to: Option<NaiveDate>,
    /// Minutes after a window opens before a visit counts as late; 15 when left out.
    pub late_after_minutes: Option<u32>,
}

impl CoverageQuery {
    fn resolve(&self, state: &AppState) -> ReportQuery {
        let to = self.to.unwrap_or_else(|| state.engine.now().date_naive());
        ReportQuery {
            from: self
                .from
                .unwrap_or_else(|| to.checked_sub_signed(Duration::days(27)).unwrap_or(to)),
            to,
            late_after_minutes: self.late_after_minutes.unwrap_or(DEFAULT_LATE_MINUTES),
        }
    }
}

/// The coverage report: planned windows covered, late and missed — in total, by ISO week, area,
/// route, weekday × hour and stop — visits per place, two-person compliance, alarm
/// acknowledgement times (median, 90th percentile, within 10 s and 40 s), incidents by place
/// and kind, and gaps (stops missed in most windows of the last four weeks). Aggregates only.
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/coverage", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), CoverageQuery),
    responses((status = 200, body = CoverageReport), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn coverage(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> Result<Json<CoverageReport>, ApiError> {
    let report = state
        .engine
        .coverage(&me.person, TeamId(p.team_id), q.resolve(&state))
        .await
        .map_err(me.err())?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The period to compare with.
    pub vs_from: NaiveDate,
    pub vs_to: NaiveDate,
    pub late_after_minutes: Option<u32>,
}

/// Two periods' reports side by side (`a` = from..to, `b` = vs_from..vs_to).
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/coverage/compare", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), CompareQuery),
    responses((status = 200, body = CoverageComparison), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn compare(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiQuery(q): ApiQuery<CompareQuery>,
) -> Result<Json<CoverageComparison>, ApiError> {
    let late_after_minutes = q.late_after_minutes.unwrap_or(DEFAULT_LATE_MINUTES);
    let report = |from, to| {
        let query = ReportQuery {
            from,
            to,
            late_after_minutes,
        };
        state.engine.coverage(&me.person, TeamId(p.team_id), query)
    };
    let a = report(q.from, q.to).await.map_err(me.err())?;
    let b = report(q.vs_from, q.vs_to).await.map_err(me.err())?;
    Ok(Json(CoverageComparison { a, b }))
}

/// The report's stops as GeoJSON points for a map, each with its figures and
/// `reached_share` (windows covered or late, of those planned) to colour it by.
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/coverage/map", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), CoverageQuery),
    responses((status = 200, content_type = "application/geo+json", body = serde_json::Value),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn map(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> Result<GeoJson, ApiError> {
    let report = state
        .engine
        .coverage(&me.person, TeamId(p.team_id), q.resolve(&state))
        .await
        .map_err(me.err())?;
    Ok(GeoJson(coverage_export::stops_geojson(&report).to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CsvQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub late_after_minutes: Option<u32>,
    /// stops (default), weeks, routes, areas, heat, places, gaps or incidents.
    #[param(inline)]
    pub table: Option<Table>,
}

/// One table of the report as CSV (RFC 4180), for a spreadsheet.
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/coverage/csv", tag = "coverage", security(("device_token" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), CsvQuery),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn csv(
    State(state): State<AppState>,
    me: Caller,
    Ids(p): Ids<TeamPath>,
    ApiQuery(q): ApiQuery<CsvQuery>,
) -> Result<Response, ApiError> {
    let period = CoverageQuery {
        from: q.from,
        to: q.to,
        late_after_minutes: q.late_after_minutes,
    };
    let query = period.resolve(&state);
    let report = state
        .engine
        .coverage(&me.person, TeamId(p.team_id), query)
        .await
        .map_err(me.err())?;
    let table = q.table.unwrap_or_default();
    let name = serde_json::to_value(table)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let disposition = format!(
        "attachment; filename=\"coverage-{name}-{}-{}.csv\"",
        query.from, query.to
    );
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        coverage_export::csv(&report, table),
    )
        .into_response())
}
