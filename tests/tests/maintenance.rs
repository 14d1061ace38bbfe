//! Periodic maintenance: positions older than the retention time are forgotten; the rest of
//! the record stays. On PostgreSQL one replica at a time does it.

use std::sync::Arc;

use chrono::Duration;
use makker_domain::VisitId;
use makker_engine::maintenance::Maintenance;
use makker_mobile_api::{CheckOutRequest, EventRequest, LatLon};
use makker_store::Store;
use makker_tests::app::{PIN, ready};
use makker_tests::both;
use sqlx::Connection;

fn here() -> Option<LatLon> {
    Some(LatLon {
        lat: 56.1478,
        lon: 10.2045,
    })
}

async fn positions_older_than_the_retention_time_are_forgotten(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = f.anna_at_the_drop_in().await;
    f.anna
        .phone
        .check_in(
            v.id,
            &EventRequest {
                client_time: None,
                position: here(),
            },
        )
        .await
        .unwrap();
    // Carl's SOS: its alarm and its SMS text carry his position.
    f.carl
        .phone
        .sos(&EventRequest {
            client_time: None,
            position: here(),
        })
        .await
        .unwrap();
    app.scheduler().run_due().await.unwrap();
    let texts = |m: Vec<makker_store::Message>| {
        m.into_iter()
            .filter(|m| m.message.channel == makker_domain::policy::Channel::Sms)
            .map(|m| m.message.body)
            .collect::<Vec<_>>()
    };
    let sms = texts(app.engine.store.messages(None).await.unwrap());
    assert!(
        !sms.is_empty() && sms.iter().all(|b| b.contains("56.")),
        "{sms:?}"
    );
    app.clock.advance(Duration::days(31));
    let out = CheckOutRequest {
        pin: Some(PIN.into()),
        client_time: None,
        position: here(),
    };
    f.anna.phone.check_out(v.id, &out).await.unwrap();
    let purged = Maintenance::new(app.engine.clone(), 30).run_once().await.unwrap();
    let expected = 2 + sms.len() as u64;
    assert_eq!(
        purged.map(|p| p.positions),
        Some(expected),
        "the old check-in's position, the SOS alarm's, and the SOS texts"
    );
    let after = texts(app.engine.store.messages(None).await.unwrap());
    assert!(after.iter().all(String::is_empty), "{after:?}");
    let log = app.engine.store.visit_events(VisitId(v.id)).await.unwrap();
    let kept: Vec<(&str, bool)> = log
        .iter()
        .map(|e| (e.effect.kind(), e.position.is_some()))
        .collect();
    assert!(kept.contains(&("checked_in", false)), "{kept:?}");
    assert!(
        kept.contains(&("checked_out", true)),
        "a recent position stays: {kept:?}"
    );
    assert_eq!(log.len(), 4, "only positions go; the events stay");
}

both! {
    retention => positions_older_than_the_retention_time_are_forgotten,
}

/// While another replica holds the maintenance lock, this one leaves the work to it.
#[tokio::test]
async fn one_replica_at_a_time_purges() {
    if makker_tests::pg_skipped() {
        return;
    }
    let url = makker_tests::pg_database_url().await;
    let store = makker_store_pg::PgStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let (app, _f) = ready(Arc::new(store)).await;
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    let (held,): (bool,) = sqlx::query_as("select pg_try_advisory_xact_lock(724137)")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(held);
    assert_eq!(
        Maintenance::new(app.engine.clone(), 30).run_once().await.unwrap(),
        None
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        Maintenance::new(app.engine.clone(), 30).run_once().await.unwrap(),
        Some(makker_engine::maintenance::Purged::default())
    );
}
