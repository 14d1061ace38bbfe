//! Fault tests of issue 7 with real `makker serve` processes.
//!
//! - PostgreSQL restarted under check-in load (a private instance started for the test:
//!   the machine's own server is shared and is never restarted): both servers reconnect and
//!   catch up, every acknowledged check-in is stored, and the deadlines that fell due while
//!   the database was down fire exactly once, after it is back.
//! - The SMS provider down, or answering 500 or 429, for a long time: push still goes out,
//!   the failover provider takes over, supervisors see the failures in an alarm's deliveries,
//!   and once the provider is back what is still relevant is sent and what is stale (a
//!   reminder for a visit checked out meanwhile) is not.
//!
//! Bounded here (seconds); longer outages by environment, e.g. five minutes:
//! `MAKKER_FAULT_PG_OUTAGE_SECONDS=300` and `MAKKER_FAULT_SMS_OUTAGE_SECONDS=300`.

mod common;
#[path = "../../../tests/fakes/push_service.rs"]
#[allow(dead_code, reason = "the shared handle has more than these tests use")]
mod push_service;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use makker_domain::text::Lang;
use makker_domain::{Role, VisitId};
use makker_engine::{Engine, NewPersonInput};
use makker_fakes::elks46::{Fake46elks, PASSWORD, USERNAME};
use makker_fakes::gatewayapi::{FakeGatewayApi, Outage};
use makker_store::{Message, Person, PushSubscription};
use push_service::FakePushService;
use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;

const VAPID_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const VAPID_SUBJECT: &str = "mailto:drift@makker.dk";

fn outage_seconds(var: &str, default: u64) -> Duration {
    let seconds = std::env::var(var).ok().map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{var} is a number of seconds"))
    });
    Duration::from_secs(seconds)
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn wait_ready(base: &str, limit: Duration) {
    let client = http();
    wait_for(limit, &format!("{base}/readyz"), || async {
        let ready = client.get(format!("{base}/readyz")).send().await;
        ready.is_ok_and(|r| r.status().is_success())
    })
    .await;
}

// --- PostgreSQL restarted under load ---------------------------------------------------------

/// A PostgreSQL of this test's own, in a temporary directory on a free port.
struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = pg_bin();
        let dir = std::env::temp_dir().join(format!("makker-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if running_as_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            assert!(
                Command::new("chown")
                    .args(["postgres:postgres", &dir.to_string_lossy()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let pg = PrivatePg {
            bin,
            port: free_port(),
            dir,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.up();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// Runs one of PostgreSQL's programs, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        let data = self.data();
        let log = log.to_string_lossy();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        );
    }

    /// Stops at once, as a crash would: no checkpoint, clients cut off mid-transaction.
    fn crash(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    async fn create_database(&self, name: &str) -> String {
        let base = format!("postgres://postgres@127.0.0.1:{}", self.port);
        let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        format!("{base}/{name}")
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// PostgreSQL's programs: `MAKKER_TEST_PG_BIN`, else the newest /usr/lib/postgresql/*/bin.
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("MAKKER_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs under /usr/lib/postgresql (or set MAKKER_TEST_PG_BIN)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// What the phones got from the servers.
#[derive(Default)]
struct Acks {
    attempted: HashMap<VisitId, u64>,
    acked: HashMap<VisitId, u64>,
    /// Per server: check-ins acknowledged after PostgreSQL came back.
    acked_after_restart: [u64; 2],
}

/// A phone checking in back to back, alternating between the two servers, until `stop`.
async fn phone(
    servers: [String; 2],
    token: String,
    visit: VisitId,
    acks: Arc<Mutex<Acks>>,
    restarted: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let client = http();
    let mut turn = 0;
    while !stop.load(Ordering::SeqCst) {
        let server = turn % 2;
        turn += 1;
        let after = restarted.load(Ordering::SeqCst);
        *acks.lock().unwrap().attempted.entry(visit).or_default() += 1;
        let answer = client
            .post(format!("{}/api/v1/visits/{}/check-in", servers[server], visit.0))
            .bearer_auth(&token)
            .json(&serde_json::json!({}))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            let mut acks = acks.lock().unwrap();
            *acks.acked.entry(visit).or_default() += 1;
            if after {
                acks.acked_after_restart[server] += 1;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts per visit of `visits` from a `select visit_id, count(…) … group by visit_id`.
async fn per_visit(url: &str, sql: &str, visits: &[VisitId]) -> HashMap<VisitId, i64> {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let ids: Vec<Uuid> = visits.iter().map(|v| v.0).collect();
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&ids)
        .fetch_all(&mut db)
        .await
        .unwrap();
    rows.into_iter().map(|(v, n)| (VisitId(v), n)).collect()
}

const ALARMS_OF: &str = "select v.visit_id, count(a.alarm_id) from visit v \
     left join alarm a on a.visit_id = v.visit_id where v.visit_id = any($1) group by v.visit_id";
const CHECK_INS_OF: &str = "select visit_id, count(*) from visit_event \
     where kind = 'checked_in' and visit_id = any($1) group by visit_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_no_check_in_and_fires_what_fell_due_on_reconnection() {
    const DEADLINES: u32 = 60;
    const PHONES: usize = 12;
    let outage = outage_seconds("MAKKER_FAULT_PG_OUTAGE_SECONDS", 6);
    let pg = PrivatePg::start();
    let url = pg.create_database("makker").await;
    let scratch = Scratch::new();
    // The database goes down 15 s from now (seeding and start-up come first); the deadlines
    // fall due from 3 s before the outage until 3 s after it, evenly.
    let crash_at = Instant::now() + Duration::from_secs(15);
    let first_due = Utc::now() + chrono::Duration::seconds(12);
    let step = (outage + Duration::from_secs(6)) / DEADLINES;
    let (engine, team, place, clock) = seed_team(
        &url,
        &scratch.policy,
        (first_due - Utc::now()) - chrono::Duration::minutes(1),
    )
    .await;
    let mut due_visits = Vec::new();
    for i in 0..DEADLINES as usize {
        due_visits.push(start_visit_of(&engine, team, place, i, false, 1).await.1);
        clock.advance(chrono::Duration::from_std(step).unwrap());
    }
    // The phones' visits last two hours: their deadlines stay out of the way.
    clock.set(Utc::now());
    let mut phones = Vec::new();
    for i in 0..PHONES {
        let (person, visit) = start_visit_of(&engine, team, place, 1000 + i, false, 120).await;
        phones.push((
            engine.issue_token(person.id, "fault test").await.unwrap().0,
            visit,
        ));
    }
    let ports = [free_port(), free_port()];
    let servers = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let mut processes: Vec<Server> = ports
        .iter()
        .map(|p| {
            Server::start(
                &url,
                &scratch.policy_file(),
                None,
                &[("MAKKER_LISTEN", &format!("127.0.0.1:{p}"))],
            )
        })
        .collect();
    for base in &servers {
        wait_ready(base, Duration::from_secs(30)).await;
    }
    let (acks, restarted, stop) = (
        Arc::default(),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let load: Vec<_> = phones
        .iter()
        .map(|(token, visit)| {
            tokio::spawn(phone(
                servers.clone(),
                token.clone(),
                *visit,
                Arc::clone(&acks),
                restarted.clone(),
                stop.clone(),
            ))
        })
        .collect();
    assert!(
        Instant::now() < crash_at,
        "seeding and start-up took longer than the 15 s planned before the crash"
    );
    tokio::time::sleep_until(crash_at.into()).await;
    pg.crash();
    // Taken once the stop has returned: a deadline due while `pg_ctl` was still stopping it
    // may have fired before the database went down.
    let down_at = Utc::now();
    tokio::time::sleep(outage).await;
    let starting_at = Utc::now();
    pg.up();
    let up_at = Utc::now();
    restarted.store(true, Ordering::SeqCst);
    eprintln!("PostgreSQL was down from {down_at} to {up_at}");

    wait_for(
        Duration::from_secs(90),
        "every overdue deadline to fire",
        || async {
            per_visit(&url, ALARMS_OF, &due_visits)
                .await
                .values()
                .all(|n| *n >= 1)
        },
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "both servers to acknowledge check-ins again",
        || async { acks.lock().unwrap().acked_after_restart.iter().all(|n| *n > 0) },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for phone in load {
        phone.await.unwrap();
    }
    assert!(
        processes.iter_mut().all(Server::alive),
        "a server died with the database"
    );

    let alarms = per_visit(&url, ALARMS_OF, &due_visits).await;
    assert_eq!(alarms.len(), due_visits.len());
    assert!(
        alarms.values().all(|n| *n == 1),
        "a deadline fired twice: {alarms:?}"
    );
    let fired = fired_overdue(&url, &due_visits).await;
    let meanwhile: Vec<_> = fired
        .iter()
        .filter(|(due, _)| *due >= down_at && *due < up_at)
        .collect();
    assert!(!meanwhile.is_empty(), "deadlines fell due during the outage");
    // Nothing can commit before the database is starting again.
    assert!(
        meanwhile.iter().all(|(_, fired)| *fired >= starting_at),
        "what fell due while the database was down fired after it came back: {meanwhile:?}"
    );
    let late = meanwhile.iter().map(|(_, fired)| *fired - up_at).max().unwrap();
    eprintln!(
        "{} deadlines fell due during the outage; the last fired {} ms after PostgreSQL was up",
        meanwhile.len(),
        late.num_milliseconds()
    );

    let stored = per_visit(
        &url,
        CHECK_INS_OF,
        &phones.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
    )
    .await;
    let acks = acks.lock().unwrap();
    let acked: u64 = acks.acked.values().sum();
    eprintln!(
        "{acked} check-ins acknowledged of {} sent; after the restart {:?} by server",
        acks.attempted.values().sum::<u64>(),
        acks.acked_after_restart
    );
    for (_, visit) in &phones {
        let kept = u64::try_from(stored.get(visit).copied().unwrap_or(0)).unwrap();
        let (acked, sent) = (acks.acked[visit], acks.attempted[visit]);
        assert!(
            acked <= kept && kept <= sent,
            "visit {visit:?}: {acked} acknowledged, {kept} stored, {sent} sent"
        );
    }
}

/// (due, fired) of the overdue deadlines of `visits`; every one has fired.
async fn fired_overdue(url: &str, visits: &[VisitId]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let ids: Vec<Uuid> = visits.iter().map(|v| v.0).collect();
    let rows: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "select due_at, fired_at from deadline where kind = 'overdue' and visit_id = any($1) order by due_at",
    )
    .bind(&ids)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(rows.len(), visits.len(), "one overdue deadline per visit");
    rows.into_iter()
        .map(|(due, fired)| (due, fired.expect("every overdue deadline fired")))
        .collect()
}

// --- The SMS provider failing for a long time --------------------------------------------------

const MODES: [(&str, Outage); 3] = [
    ("down", Outage::Down),
    ("500", Outage::Status(500, None)),
    ("429", Outage::Status(429, Some(2))),
];

/// One server on its own SQLite file, a team with a supervisor, and worker 1, whose visit is
/// overdue now (an alarm at once: SMS and push to the worker).
struct Scene {
    scratch: Scratch,
    url: String,
    engine: Engine,
    base: String,
    port: u16,
    worker: Person,
    supervisor: String,
    /// Visit 2, started with worker 1's: its reminder is due now, its end 4 minutes away.
    reminded: (Person, VisitId),
}

impl Scene {
    async fn new(push: &FakePushService) -> Scene {
        let scratch = Scratch::new();
        let url = format!("sqlite://{}", scratch.dir.join("makker.db").display());
        let (engine, team, place, _) = seed_team(&url, &scratch.policy, -chrono::Duration::minutes(2)).await;
        let (worker, _) = start_visit_of(&engine, team, place, 1, true, 1).await;
        let reminded = start_visit_of(&engine, team, place, 2, true, 6).await;
        let sub = push.subscribe().await;
        let subscription = PushSubscription {
            id: Uuid::now_v7(),
            person: worker.id,
            device: None,
            endpoint: sub.endpoint,
            p256dh: sub.p256dh,
            auth: sub.auth,
        };
        engine
            .store
            .add_push_subscription(&subscription, engine.now())
            .await
            .unwrap();
        let boss = engine
            .create_person(NewPersonInput {
                username: "sup".into(),
                display_name: "Supervisor".into(),
                role: Role::Supervisor,
                teams: vec![team],
                phone: None,
                lang: Lang::Da,
                password: None,
                pin: None,
                duress_pin: None,
            })
            .await
            .unwrap();
        let supervisor = engine.issue_token(boss.id, "board").await.unwrap().0;
        let port = free_port();
        Scene {
            url,
            engine,
            base: format!("http://127.0.0.1:{port}"),
            port,
            worker,
            supervisor,
            reminded,
            scratch,
        }
    }

    fn serve(&self, gateway: &FakeGatewayApi, failover: Option<&Fake46elks>) -> Server {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut env = vec![
            ("MAKKER_LISTEN", listen.as_str()),
            ("MAKKER_VAPID_PRIVATE_KEY", VAPID_PRIVATE),
            ("MAKKER_VAPID_SUBJECT", VAPID_SUBJECT),
            ("MAKKER_PUSH_ALLOW_INSECURE", "true"),
        ];
        if let Some(elks) = failover {
            env.extend([
                ("MAKKER_SMS_FAILOVER", "46elks"),
                ("MAKKER_ELKS46_USERNAME", USERNAME),
                ("MAKKER_ELKS46_PASSWORD", PASSWORD),
                ("MAKKER_ELKS46_BASE_URL", elks.base_url.as_str()),
                ("MAKKER_SMS_WEBHOOK_SECRET", "fault-test-secret"),
            ]);
        }
        Server::start(&self.url, &self.scratch.policy_file(), Some(gateway), &env)
    }

    /// The worker's alarm, once raised.
    async fn alarm(&self) -> Option<Uuid> {
        let alarms = self.engine.store.alarms_of(self.worker.id).await.unwrap();
        alarms.first().map(|a| a.id.0)
    }

    /// The alarm's deliveries, as a supervisor sees them.
    async fn deliveries(&self, alarm: Uuid) -> Vec<Value> {
        let answer = http()
            .get(format!("{}/api/v1/alarms/{alarm}/deliveries", self.base))
            .bearer_auth(&self.supervisor)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
        answer.json().await.unwrap()
    }

    async fn messages(&self) -> Vec<Message> {
        self.engine.store.messages(None).await.unwrap()
    }
}

/// The outcomes (provider, outcome) of the alarm's SMS, as the supervisor sees them.
fn sms_trail(deliveries: &[Value]) -> (String, Vec<(String, String)>) {
    let sms = deliveries
        .iter()
        .find(|d| d["channel"] == "sms")
        .expect("the alarm has an SMS");
    let attempts = sms["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (sms["state"].as_str().unwrap().to_owned(), attempts)
}

/// Whether the push service received a push for `endpoint` and accepted it.
async fn pushed_to(push: &FakePushService, endpoint: &str) -> bool {
    let path = endpoint
        .rsplit_once("/push/")
        .map(|(_, id)| format!("/push/{id}"));
    push.requests()
        .await
        .iter()
        .any(|r| r["path"].as_str() == path.as_deref() && r["answered"] == 201)
}

async fn wait_for_push(push: &FakePushService, endpoint: &str, name: &str) {
    wait_for(
        Duration::from_secs(30),
        &format!("{name}: the alarm's push"),
        || pushed_to(push, endpoint),
    )
    .await;
}

async fn worker_endpoint(scene: &Scene) -> String {
    scene
        .engine
        .store
        .push_subscriptions(scene.worker.id)
        .await
        .unwrap()[0]
        .endpoint
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_sms_provider_fails_push_goes_out_and_the_failover_delivers_visibly() {
    let push = FakePushService::start(VAPID_SUBJECT);
    let ((), (), ()) = tokio::join!(
        failover_case(&push, MODES[0]),
        failover_case(&push, MODES[1]),
        failover_case(&push, MODES[2])
    );
}

async fn failover_case(push: &FakePushService, (name, outage): (&str, Outage)) {
    let scene = Scene::new(push).await;
    let gateway = FakeGatewayApi::start().await;
    gateway.set_outage(Some(outage));
    let elks = Fake46elks::start().await;
    let _server = scene.serve(&gateway, Some(&elks));
    wait_ready(&scene.base, Duration::from_secs(30)).await;
    let endpoint = worker_endpoint(&scene).await;
    wait_for(
        Duration::from_secs(30),
        &format!("{name}: the alarm's SMS by the failover"),
        || async {
            elks.received()
                .iter()
                .any(|m| Some(&m.to) == scene.worker.phone.as_ref())
        },
    )
    .await;
    wait_for_push(push, &endpoint, name).await;
    assert!(
        gateway.received().is_empty(),
        "{name}: the primary accepted nothing"
    );
    assert!(gateway.refused() > 0, "{name}: the primary was tried");
    let alarm = scene.alarm().await.expect("the alarm was raised");
    let (state, trail) = sms_trail(&scene.deliveries(alarm).await);
    assert_eq!(state, "sent", "{name}");
    assert_eq!(
        trail,
        [
            ("gatewayapi".to_owned(), "failed".to_owned()),
            ("46elks".to_owned(), "sent".to_owned())
        ],
        "{name}: the supervisor sees the primary's failure and the failover's delivery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_sms_outage_what_is_still_relevant_is_sent_once_and_stale_reminders_are_not() {
    let outage = outage_seconds("MAKKER_FAULT_SMS_OUTAGE_SECONDS", 4);
    let push = FakePushService::start(VAPID_SUBJECT);
    let ((), (), ()) = tokio::join!(
        outage_case(&push, MODES[0], outage),
        outage_case(&push, MODES[1], outage),
        outage_case(&push, MODES[2], outage)
    );
}

async fn outage_case(push: &FakePushService, (name, outage): (&str, Outage), length: Duration) {
    let scene = Scene::new(push).await;
    let gateway = FakeGatewayApi::start().await;
    gateway.set_outage(Some(outage));
    let began = Instant::now();
    let _server = scene.serve(&gateway, None);
    wait_ready(&scene.base, Duration::from_secs(30)).await;
    let endpoint = worker_endpoint(&scene).await;
    let (reminded, visit) = &scene.reminded;
    wait_for(
        Duration::from_secs(30),
        &format!("{name}: failed attempts"),
        || async {
            let messages = scene.messages().await;
            let tried = |kind: &str, person| {
                messages
                    .iter()
                    .any(|m| m.message.kind == kind && m.message.person == person && m.attempts > 0)
            };
            tried("alarm", scene.worker.id) && tried("reminder", reminded.id)
        },
    )
    .await;
    wait_for_push(push, &endpoint, name).await;
    let alarm = scene.alarm().await.expect("the alarm was raised");
    let (state, trail) = sms_trail(&scene.deliveries(alarm).await);
    assert_eq!(state, "pending", "{name}: the alarm's SMS waits for a retry");
    assert_eq!(
        trail.first(),
        Some(&("gatewayapi".to_owned(), "retry".to_owned())),
        "{name}: the supervisor sees the failed delivery"
    );
    // The reminded worker checks out while the provider is still failing: the reminder
    // waiting for its retry is no longer relevant.
    let token = scene.engine.issue_token(reminded.id, "phone").await.unwrap().0;
    let out = http()
        .post(format!("{}/api/v1/visits/{}/check-out", scene.base, visit.0))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "{name}: check-out {}", out.status());
    tokio::time::sleep(length.saturating_sub(began.elapsed())).await;
    gateway.set_outage(None);
    let back = Instant::now();
    let limit = length * 2 + Duration::from_secs(60);
    wait_for(
        limit,
        &format!("{name}: the alarm's SMS after the outage"),
        || async { !gateway.received().is_empty() },
    )
    .await;
    eprintln!(
        "{name}: the alarm's SMS went out {:?} after the provider came back",
        back.elapsed()
    );
    // A moment more: anything else due would go out now too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to: Vec<String> = gateway
        .received()
        .iter()
        .map(|m| format!("+{}", m["recipients"][0]["msisdn"]))
        .collect();
    assert_eq!(
        to,
        [scene.worker.phone.clone().unwrap()],
        "{name}: the alarm's SMS once, and no stale reminder"
    );
    let reminder = scene
        .messages()
        .await
        .into_iter()
        .find(|m| {
            m.message.kind == "reminder"
                && m.message.person == reminded.id
                && m.message.channel.as_str() == "sms"
        })
        .unwrap();
    assert_eq!(reminder.state, "cancelled", "{name}");
    let (state, trail) = sms_trail(&scene.deliveries(alarm).await);
    assert_eq!(state, "sent", "{name}");
    assert_eq!(
        trail.last(),
        Some(&("gatewayapi".to_owned(), "sent".to_owned())),
        "{name}"
    );
    assert!(
        trail[..trail.len() - 1].iter().all(|(_, o)| o == "retry"),
        "{name}: {trail:?}"
    );
}
