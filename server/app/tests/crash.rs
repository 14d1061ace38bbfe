//! `makker serve` processes on one database, killed with SIGKILL: at random moments, and at
//! the two moments that matter (deadlines claimed but not fired; messages committed but not
//! sent). Afterwards every due deadline has fired exactly once — each overdue visit has one
//! alarm — and every SMS reached the (fake) provider. Also: two processes share 10,000
//! deadlines due at once, and a restart with thousands of overdue deadlines catches up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use makker::admin;
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind};
use makker_domain::policy::{DEFAULT_POLICY_TOML, Policy};
use makker_domain::text::Lang;
use makker_domain::visit::{ParticipantRole, VisitKind};
use makker_domain::{PersonId, PlaceId, Role, ShiftId, TeamId};
use makker_engine::clock::ManualClock;
use makker_engine::{Engine, StartCommand};
use makker_fakes::gatewayapi::{FakeGatewayApi, TOKEN};
use makker_store::{Person, Shift};
use sqlx::{AnyConnection, Connection};
use tokio::task::JoinSet;
use uuid::Uuid;

const ALARMS_PER_VISIT: &str =
    "select count(a.alarm_id) from visit v left join alarm a on a.visit_id = v.visit_id group by v.visit_id";
const LEASED_DEADLINES: &str =
    "select count(*) from deadline where state = 'armed' and claimed_by is not null";
const SMS_ROWS: &str = "select count(*) from outbox where channel = 'sms'";
const SMS_PENDING: &str = "select count(*) from outbox where channel = 'sms' and state = 'pending'";
const SMS_CLAIMED: &str =
    "select count(*) from outbox where channel = 'sms' and state = 'pending' and claimed_by is not null";

/// A scratch database: PostgreSQL when `MAKKER_TEST_DATABASE_URL` is set, else `None`
/// (allowed only with `MAKKER_TEST_SKIP_PG=1`).
async fn fresh_pg() -> Option<String> {
    let Ok(base) = std::env::var("MAKKER_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("MAKKER_TEST_SKIP_PG").is_ok_and(|v| v == "1"),
            "MAKKER_TEST_DATABASE_URL is not set"
        );
        return None;
    };
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("PostgreSQL at MAKKER_TEST_DATABASE_URL");
    let name = format!("makker_crash_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let cut = base.rfind('/').unwrap();
    Some(format!("{}/{name}", &base[..cut]))
}

/// A directory for the policy file (and a SQLite database), removed on drop.
struct Scratch {
    dir: PathBuf,
    policy: Policy,
}

impl Scratch {
    /// The default policy without grace, so visits are overdue the moment they are seeded.
    fn new() -> Scratch {
        let text = DEFAULT_POLICY_TOML
            .replace("grace_minutes = 10", "grace_minutes = 0")
            .replace("grace_minutes = 5", "grace_minutes = 0")
            .replace("grace_minutes = 3", "grace_minutes = 0");
        let dir = std::env::temp_dir().join(format!("makker-crash-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("policy.toml"), &text).unwrap();
        Scratch {
            dir,
            policy: Policy::from_toml(&text).unwrap(),
        }
    }

    fn policy_file(&self) -> PathBuf {
        self.dir.join("policy.toml")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `visits` lone drop-in visits that started two minutes ago for one minute: their reminder
/// and their overdue deadline are due now. With `phones`, each worker gets SMS.
async fn seed(url: &str, policy: &Policy, visits: usize, phones: bool) {
    let store = makker::open_store(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::minutes(2)));
    let engine = Engine::new(store.clone(), Arc::new(policy.clone()), clock);
    let team = admin::create_team(&engine, "Gadeteam", "Europe/Copenhagen")
        .await
        .unwrap();
    let place = Place {
        id: PlaceId(Uuid::now_v7()),
        team: team.id,
        name: "Værestedet".into(),
        kind: PlaceKind::DropIn,
        shape: Shape::Circle {
            center: Position::parse(56.1478, 10.2045).unwrap(),
            radius_m: 40.0,
        },
    };
    store.create_place(&place, engine.now()).await.unwrap();
    // A few writers at once: seeding thousands one by one would take longer than the test.
    let mut writers = JoinSet::new();
    for w in 0..4 {
        let engine = engine.clone();
        let (team, place) = (team.id, place.id);
        writers.spawn(async move {
            for i in (w..visits).step_by(4) {
                start_one(&engine, team, place, i, phones).await;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
}

async fn start_one(engine: &Engine, team: TeamId, place: PlaceId, i: usize, phone: bool) {
    let person = Person {
        id: PersonId(Uuid::now_v7()),
        username: format!("w{i}"),
        display_name: format!("Worker {i}"),
        role: Role::Worker,
        phone: phone.then(|| format!("+4520{i:06}")),
        lang: Lang::Da,
        teams: vec![team],
        password_hash: None,
        pin_hash: None,
        duress_pin_hash: None,
        created_at: engine.now(),
    };
    engine.store.create_person(&person).await.unwrap();
    let shift = Shift {
        id: ShiftId(Uuid::now_v7()),
        person: person.id,
        team,
        started_at: engine.now(),
        ended_at: None,
    };
    engine.store.start_shift(&shift).await.unwrap();
    let answers: BTreeMap<String, bool> = engine
        .policy
        .assessment
        .questions
        .iter()
        .map(|q| (q.id.clone(), false))
        .collect();
    let cmd = StartCommand {
        kind: VisitKind::DropIn,
        place,
        planned_minutes: 1,
        role: ParticipantRole::Talker,
        partners: vec![],
        answers: Some(answers),
        lone_reason: None,
        lone_approval: None,
        tell_colleague: None,
    };
    engine
        .start_visit(&person, cmd, engine.stamp(None, None).unwrap())
        .await
        .unwrap();
}

/// A `makker serve` process, SIGKILLed on drop.
struct Server(Child);

impl Server {
    fn start(url: &str, policy: &Path, sms: Option<&FakeGatewayApi>, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_makker"));
        cmd.arg("serve")
            .env_remove("MAKKER_CONFIG")
            .env_remove("FAILPOINTS")
            .env("MAKKER_DATABASE_URL", url)
            .env("MAKKER_LISTEN", "127.0.0.1:0")
            .env("MAKKER_POLICY", policy)
            .env("MAKKER_LOG", "error")
            // Short leases: a killed process's work passes on within seconds.
            .env("MAKKER_DEADLINE_LEASE_SECONDS", "2")
            .env("MAKKER_OUTBOX_LEASE_SECONDS", "2")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(fake) = sms {
            cmd.env("MAKKER_SMS_PRIMARY", "gatewayapi")
                .env("MAKKER_GATEWAYAPI_TOKEN", TOKEN)
                .env("MAKKER_GATEWAYAPI_BASE_URL", &fake.base_url);
        }
        Server(cmd.spawn().expect("start makker serve"))
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn counts(url: &str, sql: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.unwrap();
    let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

async fn count(url: &str, sql: &str) -> i64 {
    counts(url, sql).await[0]
}

/// Polls `done` every 100 ms until it holds; panics with `what` after `limit`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_visit_has_an_alarm(url: &str) -> bool {
    counts(url, ALARMS_PER_VISIT).await.iter().all(|c| *c >= 1)
}

/// Every visit has exactly one alarm: each overdue deadline fired once.
async fn assert_each_fired_once(url: &str, visits: usize) {
    let alarms = counts(url, ALARMS_PER_VISIT).await;
    assert_eq!(alarms.len(), visits);
    assert!(
        alarms.iter().all(|c| *c == 1),
        "a deadline fired twice: {alarms:?}"
    );
}

/// Every SMS in the outbox was sent, and the provider received each exactly once (its
/// reference is the outbox row's id).
async fn assert_each_sms_sent_once(url: &str, fake: &FakeGatewayApi) {
    let rows = count(url, SMS_ROWS).await;
    assert!(rows > 0, "the scenario queues SMS");
    let mut refs: Vec<String> = fake
        .received()
        .iter()
        .map(|m| m["userref"].as_str().unwrap().to_owned())
        .collect();
    let received = refs.len();
    refs.sort();
    refs.dedup();
    assert_eq!(received, refs.len(), "a message reached the provider twice");
    assert_eq!(
        i64::try_from(received).unwrap(),
        rows,
        "every queued SMS was sent"
    );
}

async fn sms_all_sent(url: &str) -> bool {
    count(url, SMS_ROWS).await > 0 && count(url, SMS_PENDING).await == 0
}

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
