//! Endpoints for operators, outside the mobile API: `/healthz` (the process serves HTTP),
//! `/readyz` (the database answers and the deadline loop ticks: send traffic here) and
//! `/metrics` (Prometheus text). The reverse proxy keeps `/metrics` internal.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use makker_engine::EngineError;
use makker_store::StoreError;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::error::ApiError;

/// A deadline loop that has not ticked for this long is stuck (it ticks at least every second).
pub const LOOP_STALE: Duration = Duration::from_secs(15);

const LAG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("makker_deadline_lag_seconds".into()), LAG_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("makker_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
            })
            .expect("BUG: the bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be global (a test process with several apps): then
        // this one renders only what it is given, which is still a valid page.
        let _ = metrics::set_global_recorder(recorder);
        // Histograms hold every sample until upkeep folds them into buckets: without it a
        // server nobody scrapes grows by each request it serves.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("BUG: a thread starts");
        handle
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render))
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.engine.store.db_now().await.map_err(EngineError::from)?;
    if !state.engine.health.loop_alive(LOOP_STALE) {
        return Err(
            EngineError::Store(StoreError::Transient("the deadline loop is not ticking".into())).into(),
        );
    }
    Ok("ready")
}

async fn render(State(state): State<AppState>) -> Result<Response, ApiError> {
    let handle = prometheus();
    let now = state.engine.now();
    let f = state
        .engine
        .store
        .ops_figures(now)
        .await
        .map_err(EngineError::from)?;
    metrics::gauge!("makker_deadlines_due").set(f.deadlines_due as f64);
    metrics::gauge!("makker_deadlines_overdue").set(f.deadlines_overdue as f64);
    metrics::gauge!("makker_outbox_depth").set(f.outbox_depth as f64);
    let oldest = f
        .outbox_oldest
        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
    metrics::gauge!("makker_outbox_oldest_age_seconds").set(oldest);
    Ok(([("content-type", "text/plain; version=0.0.4")], handle.render()).into_response())
}

/// Records `makker_http_request_duration_seconds{method, route, status}`; the route is the
/// matched pattern, never the raw path (ids would explode the label set).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    metrics::histogram!(
        "makker_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status.as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}
