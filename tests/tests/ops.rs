//! The operators' endpoints through the real router and database: `/healthz`, `/readyz`
//! (database and deadline loop) and `/metrics` with the figures the alert rules watch.

use std::sync::Arc;

use chrono::Duration;
use makker_store::Store;
use makker_tests::app::{TestApp, ready};
use makker_tests::both;

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of an unlabelled metric on a Prometheus page.
fn value(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn ready_only_while_the_deadline_loop_ticks(store: Arc<dyn Store>) {
    let (app, _f) = ready(store).await;
    assert_eq!(get(&app, "/healthz").await, (200, "ok".into()));
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, 503, "no deadline loop has ticked yet: {body}");
    assert!(body.contains("urn:makker:problem:unavailable"), "{body}");
    app.scheduler().tick().await.unwrap();
    assert_eq!(get(&app, "/readyz").await, (200, "ready".into()));
}

async fn metrics_show_overdue_deadlines_and_the_outbox(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    f.anna_at_the_drop_in().await;
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(value(&page, "makker_deadlines_overdue"), Some(0.0), "{page}");
    assert_eq!(value(&page, "makker_outbox_depth"), Some(0.0), "{page}");
    // Hours pass and no loop runs: the reminder and the overdue deadline are both late.
    app.clock.advance(Duration::hours(3));
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(value(&page, "makker_deadlines_overdue"), Some(2.0), "{page}");
    // The loop catches up: both fire (the reminder silently: its check-in is long missed, the
    // alarm says more) and queue messages the dispatcher has not sent yet.
    app.clock.advance(Duration::seconds(40));
    app.scheduler().run_due().await.unwrap();
    app.clock.advance(Duration::seconds(90));
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(value(&page, "makker_deadlines_overdue"), Some(0.0), "{page}");
    let depth = value(&page, "makker_outbox_depth").unwrap();
    assert!(depth >= 1.0, "the alarm waits to be sent: {page}");
    assert_eq!(
        value(&page, "makker_outbox_oldest_age_seconds"),
        Some(90.0),
        "{page}"
    );
    assert!(
        page.lines()
            .any(|l| l.starts_with("makker_http_request_duration_seconds_count{")
                && l.contains(r#"route="/api/v1/visits""#)
                && l.contains(r#"status="201""#)),
        "requests are timed by route pattern: {page}"
    );
    assert!(page.contains("makker_deadline_lag_seconds_bucket"), "{page}");
}

both! {
    readyz => ready_only_while_the_deadline_loop_ticks,
    metrics => metrics_show_overdue_deadlines_and_the_outbox,
}
