//! `makker serve` processes on one database, killed with SIGKILL: at random moments, and at
//! the two moments that matter (deadlines claimed but not fired; messages committed but not
//! sent). Afterwards every due deadline has fired exactly once — each overdue visit has one
//! alarm — and every SMS reached the (fake) provider. Also: two processes share 10,000
//! deadlines due at once, and a restart with thousands of overdue deadlines catches up.

mod common;

use std::time::{Duration, Instant};

use common::*;
use makker_fakes::gatewayapi::FakeGatewayApi;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_claiming_deadlines_and_firing_them_loses_nothing_and_sends_nothing_twice() {
    let Some(url) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    let fake = FakeGatewayApi::start().await;
    seed(&url, &scratch.policy, 40, true).await;
    let mut victim = Server::start(
        &url,
        &scratch.policy_file(),
        Some(&fake),
        &[("FAILPOINTS", "scheduler-claimed=return")],
    );
    wait_for(
        Duration::from_secs(30),
        "the victim to claim deadlines",
        || async { count(&url, LEASED_DEADLINES).await > 0 },
    )
    .await;
    assert_eq!(counts(&url, ALARMS_PER_VISIT).await.iter().sum::<i64>(), 0);
    victim.kill();
    let _heir = Server::start(&url, &scratch.policy_file(), Some(&fake), &[]);
    wait_for(Duration::from_secs(60), "the heir to fire and send", || async {
        every_visit_has_an_alarm(&url).await && sms_all_sent(&url).await
    })
    .await;
    assert_each_fired_once(&url, 40).await;
    assert_each_sms_sent_once(&url, &fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_committing_messages_and_sending_them_loses_none_and_sends_none_twice() {
    let Some(url) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    let fake = FakeGatewayApi::start().await;
    seed(&url, &scratch.policy, 40, true).await;
    let mut victim = Server::start(
        &url,
        &scratch.policy_file(),
        Some(&fake),
        &[("FAILPOINTS", "dispatcher-claimed=return")],
    );
    wait_for(
        Duration::from_secs(30),
        "alarms committed and SMS claimed",
        || async { every_visit_has_an_alarm(&url).await && count(&url, SMS_CLAIMED).await > 0 },
    )
    .await;
    assert!(fake.received().is_empty(), "the victim sent nothing");
    victim.kill();
    let _heir = Server::start(&url, &scratch.policy_file(), Some(&fake), &[]);
    wait_for(Duration::from_secs(60), "the heir to send", || sms_all_sent(&url)).await;
    assert_each_fired_once(&url, 40).await;
    assert_each_sms_sent_once(&url, &fake).await;
}

/// Killed at random moments. A kill between a provider's answer and its record may send that
/// message again (at least once, by design: a lost alarm is worse than a repeated one), so
/// here every SMS must arrive and repeats are only counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_again_and_again_loses_no_deadline_and_fires_none_twice() {
    const VISITS: usize = 400;
    let Some(url) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    let fake = FakeGatewayApi::start().await;
    seed(&url, &scratch.policy, VISITS, true).await;
    // First the victim alone, killed mid-way again and again; then a steady replica joins.
    let mut victim = Server::start(&url, &scratch.policy_file(), Some(&fake), &[]);
    let mut progress = Vec::new();
    for round in 0..6u64 {
        tokio::time::sleep(Duration::from_millis(300 + 97 * round)).await;
        victim.kill();
        progress.push(
            counts(&url, ALARMS_PER_VISIT)
                .await
                .iter()
                .filter(|c| **c > 0)
                .count(),
        );
        victim = Server::start(&url, &scratch.policy_file(), Some(&fake), &[]);
    }
    eprintln!("visits with their alarm after each kill: {progress:?} of {VISITS}");
    let _steady = Server::start(&url, &scratch.policy_file(), Some(&fake), &[]);
    wait_for(Duration::from_secs(90), "every alarm and SMS", || async {
        every_visit_has_an_alarm(&url).await && sms_all_sent(&url).await
    })
    .await;
    assert_each_fired_once(&url, VISITS).await;
    let received = fake.received();
    let mut refs: Vec<&str> = received.iter().map(|m| m["userref"].as_str().unwrap()).collect();
    refs.sort_unstable();
    refs.dedup();
    assert_eq!(i64::try_from(refs.len()).unwrap(), count(&url, SMS_ROWS).await);
    eprintln!("SMS repeated after a kill: {}", received.len() - refs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_ten_thousand_deadlines_due_at_once_exactly_once() {
    const VISITS: usize = 10_000;
    let Some(url) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    seed(&url, &scratch.policy, VISITS, false).await;
    let started = Instant::now();
    let _a = Server::start(&url, &scratch.policy_file(), None, &[]);
    let _b = Server::start(&url, &scratch.policy_file(), None, &[]);
    wait_for(Duration::from_secs(240), "every alarm", || {
        every_visit_has_an_alarm(&url)
    })
    .await;
    eprintln!(
        "{VISITS} visits × 2 deadlines fired by two processes in {:?} (including start-up)",
        started.elapsed()
    );
    assert_each_fired_once(&url, VISITS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_thousands_of_overdue_deadlines_fires_them_all_at_once_on_sqlite() {
    const VISITS: usize = 3_000;
    let scratch = Scratch::new();
    let url = format!("sqlite://{}", scratch.dir.join("makker.db").display());
    // Seeded while no server runs: as if it had been down while the deadlines fell due.
    seed(&url, &scratch.policy, VISITS, false).await;
    let started = Instant::now();
    let _server = Server::start(&url, &scratch.policy_file(), None, &[]);
    wait_for(Duration::from_secs(120), "every alarm", || {
        every_visit_has_an_alarm(&url)
    })
    .await;
    eprintln!(
        "{VISITS} overdue visits caught up {:?} after the start",
        started.elapsed()
    );
    assert_each_fired_once(&url, VISITS).await;
}

/// A rolling upgrade on PostgreSQL: the database already carries a migration from a newer
/// version (an added column, as every migration is additive), and two replicas are replaced
/// one at a time — stopped gracefully, started again — while deadlines keep falling due.
/// Every one of them fires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_replaced_one_at_a_time_on_a_newer_schema_lose_no_deadline() {
    const VISITS: usize = 300;
    let Some(url) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    let started = Instant::now();
    seed_spread(
        &url,
        &scratch.policy,
        VISITS,
        Duration::from_secs(8),
        Duration::from_millis(30),
    )
    .await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    for sql in [
        "alter table visit add column from_a_newer_version text",
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values (99990101000000, 'from a newer version', true, '\\x00', 0)",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
    let policy = scratch.policy_file();
    let mut a = Server::start(&url, &policy, None, &[]);
    let mut b = Server::start(&url, &policy, None, &[]);
    eprintln!(
        "seeded in {:?}; deadlines fall due from 8 s to 17 s",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(9).saturating_sub(started.elapsed())).await;
    a.terminate();
    a = Server::start(&url, &policy, None, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.terminate();
    b = Server::start(&url, &policy, None, &[]);
    wait_for(Duration::from_secs(60), "every alarm", || {
        every_visit_has_an_alarm(&url)
    })
    .await;
    assert_each_fired_once(&url, VISITS).await;
    drop((a, b));
}
