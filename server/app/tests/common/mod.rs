//! Helpers of the process tests: scratch databases, seeding overdue visits through the
//! engine, `makker serve` processes, and counting rows.
#![allow(dead_code, reason = "each test binary uses a part")]

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
use makker_domain::visit::VisitKind;
use makker_domain::{PersonId, PlaceId, Role, ShiftId, TeamId, VisitId};
use makker_engine::clock::ManualClock;
use makker_engine::{Engine, StartCommand};
use makker_fakes::gatewayapi::{FakeGatewayApi, TOKEN};
use makker_store::{Person, Shift};
use sqlx::{AnyConnection, Connection};
use tokio::task::JoinSet;
use uuid::Uuid;

pub const ALARMS_PER_VISIT: &str =
    "select count(a.alarm_id) from visit v left join alarm a on a.visit_id = v.visit_id group by v.visit_id";
pub const LEASED_DEADLINES: &str =
    "select count(*) from deadline where state = 'armed' and claimed_by is not null";
pub const SMS_ROWS: &str = "select count(*) from outbox where channel = 'sms'";
pub const SMS_PENDING: &str = "select count(*) from outbox where channel = 'sms' and state = 'pending'";
pub const SMS_CLAIMED: &str =
    "select count(*) from outbox where channel = 'sms' and state = 'pending' and claimed_by is not null";

/// A scratch database: PostgreSQL when `MAKKER_TEST_DATABASE_URL` is set, else `None`
/// (allowed only with `MAKKER_TEST_SKIP_PG=1`).
pub async fn fresh_pg() -> Option<String> {
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
pub struct Scratch {
    pub dir: PathBuf,
    pub policy: Policy,
}

impl Scratch {
    /// The default policy without grace, so visits are overdue the moment they are seeded.
    pub fn new() -> Scratch {
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

    pub fn policy_file(&self) -> PathBuf {
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
pub async fn seed(url: &str, policy: &Policy, visits: usize, phones: bool) {
    let (engine, team, place, _) = seed_team(url, policy, chrono::Duration::minutes(-2)).await;
    // A few writers at once: seeding thousands one by one would take longer than the test.
    let mut writers = JoinSet::new();
    for w in 0..4 {
        let engine = engine.clone();
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

/// `visits` one-minute visits whose overdue deadlines fall due one after another: the first
/// `first` from now, then every `step`.
pub async fn seed_spread(url: &str, policy: &Policy, visits: usize, first: Duration, step: Duration) {
    let offset = chrono::Duration::from_std(first).unwrap() - chrono::Duration::minutes(1);
    let (engine, team, place, clock) = seed_team(url, policy, offset).await;
    for i in 0..visits {
        start_one(&engine, team, place, i, false).await;
        clock.advance(chrono::Duration::from_std(step).unwrap());
    }
}

/// A team with one drop-in place, and an engine whose clock stands `offset` from now.
pub async fn seed_team(
    url: &str,
    policy: &Policy,
    offset: chrono::Duration,
) -> (Engine, TeamId, PlaceId, Arc<ManualClock>) {
    let store = makker::open_store(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now() + offset));
    let engine = Engine::new(store.clone(), Arc::new(policy.clone()), clock.clone());
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
    (engine, team.id, place.id, clock)
}

pub async fn start_one(engine: &Engine, team: TeamId, place: PlaceId, i: usize, phone: bool) {
    start_visit_of(engine, team, place, i, phone, 1).await;
}

/// Worker `i` (`w{i}`, phone `+4520{i:06}` when `phone`) on shift, on a lone visit of
/// `minutes` started at the engine's time; the worker and the visit.
pub async fn start_visit_of(
    engine: &Engine,
    team: TeamId,
    place: PlaceId,
    i: usize,
    phone: bool,
    minutes: u32,
) -> (Person, VisitId) {
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
    let cmd = StartCommand::lone(VisitKind::DropIn, place, minutes, &engine.policy);
    let visit = engine
        .start_visit(&person, cmd, engine.stamp(None, None).unwrap())
        .await
        .unwrap();
    (person, visit.value.id)
}

/// A free port on loopback, for a server that must keep its port (across a restart, or for
/// clients started before it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `makker serve` process, SIGKILLed on drop.
pub struct Server(Child);

impl Server {
    pub fn start(url: &str, policy: &Path, sms: Option<&FakeGatewayApi>, env: &[(&str, &str)]) -> Server {
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

    /// SIGTERM, and wait for the graceful stop.
    pub fn terminate(&mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let _ = self.0.wait();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.0.try_wait().is_ok_and(|status| status.is_none())
    }

    /// SIGTERM, and whether the graceful stop ended within `limit` (SIGKILL after it).
    pub fn terminate_within(&mut self, limit: Duration) -> bool {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.0.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn counts(url: &str, sql: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.unwrap();
    let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

pub async fn count(url: &str, sql: &str) -> i64 {
    counts(url, sql).await[0]
}

/// Polls `done` every 100 ms until it holds; panics with `what` after `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut done: F)
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

pub async fn every_visit_has_an_alarm(url: &str) -> bool {
    counts(url, ALARMS_PER_VISIT).await.iter().all(|c| *c >= 1)
}

/// Every visit has exactly one alarm: each overdue deadline fired once.
pub async fn assert_each_fired_once(url: &str, visits: usize) {
    let alarms = counts(url, ALARMS_PER_VISIT).await;
    assert_eq!(alarms.len(), visits);
    assert!(
        alarms.iter().all(|c| *c == 1),
        "a deadline fired twice: {alarms:?}"
    );
}

/// Every SMS in the outbox was sent, and the provider received each exactly once (its
/// reference is the outbox row's id).
pub async fn assert_each_sms_sent_once(url: &str, fake: &FakeGatewayApi) {
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

pub async fn sms_all_sent(url: &str) -> bool {
    count(url, SMS_ROWS).await > 0 && count(url, SMS_PENDING).await == 0
}
