//! A `makker serve` process calls its outside watchdog while it is healthy, and says so on
//! `/readyz` and `/metrics`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::get;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_server_calls_its_watchdog_every_interval() {
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    let watchdog = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let watchdog_url = format!("http://{}/ping/secret-check", watchdog.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/ping/secret-check",
        get(move || async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "OK"
        }),
    );
    tokio::spawn(async move { axum::serve(watchdog, app).await.unwrap() });

    let scratch = Scratch::new();
    let url = format!("sqlite://{}", scratch.dir.join("makker.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server::start(
        &url,
        &scratch.policy_file(),
        None,
        &[
            ("MAKKER_LISTEN", &listen),
            ("MAKKER_WATCHDOG_URL", &watchdog_url),
            ("MAKKER_WATCHDOG_INTERVAL_SECONDS", "1"),
        ],
    );
    wait_for(Duration::from_secs(20), "three watchdog calls", || async {
        pings.load(Ordering::SeqCst) >= 3
    })
    .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let ready = http.get(format!("http://{listen}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let page = http
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.lines()
            .any(|l| l.starts_with(r#"makker_watchdog_pings_total{outcome="ok"}"#)),
        "{page}"
    );
}

/// The audit log refuses changes at the database itself, not only in our code.
#[tokio::test]
async fn the_audit_log_is_append_only_in_both_databases() {
    let scratch = Scratch::new();
    let mut urls = vec![format!("sqlite://{}", scratch.dir.join("audit.db").display())];
    urls.extend(fresh_pg().await);
    for url in urls {
        let store = makker::open_store(&url).await.unwrap();
        let line = makker_store::AuditEntry {
            at: chrono::Utc::now(),
            actor: None,
            action: "admin.create_team".into(),
            subject: None,
            object: Some("Gadeteam".into()),
        };
        store.append_audit(&[line]).await.unwrap();
        sqlx::any::install_default_drivers();
        let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        for sql in ["update audit_log set action = 'x'", "delete from audit_log"] {
            let refused = sqlx::query(sql).execute(&mut db).await;
            assert!(
                refused.is_err_and(|e| e.to_string().contains("append-only")),
                "{sql} on {}",
                &url[..8]
            );
        }
    }
}

/// The retention job's one exception: a line older than a year (by the database's own clock)
/// may be deleted. A younger one may not, no line may be changed, and PostgreSQL refuses
/// `truncate` (which skips row triggers).
#[tokio::test]
async fn only_audit_lines_older_than_a_year_can_be_deleted() {
    let scratch = Scratch::new();
    let mut urls = vec![format!("sqlite://{}", scratch.dir.join("audit.db").display())];
    urls.extend(fresh_pg().await);
    for url in urls {
        let store = makker::open_store(&url).await.unwrap();
        let line = |days: i64, object: &str| makker_store::AuditEntry {
            at: chrono::Utc::now() - chrono::Duration::days(days),
            actor: None,
            action: "admin.create_team".into(),
            subject: None,
            object: Some(object.into()),
        };
        store
            .append_audit(&[line(400, "old"), line(300, "young")])
            .await
            .unwrap();
        sqlx::any::install_default_drivers();
        let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let on = &url[..8];
        for sql in [
            "update audit_log set action = 'x' where object = 'old'",
            "delete from audit_log where object = 'young'",
            "delete from audit_log",
        ] {
            let refused = sqlx::query(sql).execute(&mut db).await;
            assert!(
                refused.is_err_and(|e| e.to_string().contains("append-only")),
                "{sql} on {on}"
            );
        }
        if url.starts_with("postgres") {
            let refused = sqlx::query("truncate audit_log").execute(&mut db).await;
            assert!(refused.is_err_and(|e| e.to_string().contains("append-only")));
        }
        let deleted = sqlx::query("delete from audit_log where object = 'old'")
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(deleted.rows_affected(), 1, "on {on}");
        let (left,): (i64,) = sqlx::query_as("select count(*) from audit_log")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(left, 1, "the young line stays, on {on}");
    }
}
