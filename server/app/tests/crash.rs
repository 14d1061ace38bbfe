//! Two `makker serve` processes on one PostgreSQL; one is killed with SIGKILL at random
//! moments while due deadlines fire, and restarted. Afterwards every due deadline has fired
//! exactly once: each overdue visit has one alarm, no more, no fewer.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use makker::admin;
use makker::config::Config;
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind};
use makker_domain::policy::{DEFAULT_POLICY_TOML, Policy};
use makker_domain::text::Lang;
use makker_domain::visit::{ParticipantRole, VisitKind};
use makker_domain::{PersonId, PlaceId, Role, ShiftId};
use makker_engine::clock::ManualClock;
use makker_engine::{Engine, StartCommand};
use makker_store::{Person, Shift, Store};
use sqlx::Connection;
use uuid::Uuid;

const VISITS: usize = 400;

async fn fresh_database() -> Option<String> {
    let base = std::env::var("MAKKER_TEST_DATABASE_URL").ok()?;
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

/// `VISITS` lone drop-in visits that started two minutes ago with no grace: all overdue now.
async fn seed(url: &str, policy: &Policy) -> Arc<dyn Store> {
    let store = makker::open_store(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::minutes(2)));
    let engine = Engine::new(store.clone(), Arc::new(policy.clone()), clock);
    let team = admin::create_team(&engine, "Gadeteam", "Europe/Copenhagen")
        .await
        .unwrap();
    let center = Position::parse(56.1478, 10.2045).unwrap();
    let place = Place {
        id: PlaceId(Uuid::now_v7()),
        team: team.id,
        name: "Værestedet".into(),
        kind: PlaceKind::DropIn,
        shape: Shape::Circle {
            center,
            radius_m: 40.0,
        },
    };
    store.create_place(&place, engine.now()).await.unwrap();
    let answers: std::collections::BTreeMap<String, bool> = policy
        .assessment
        .questions
        .iter()
        .map(|q| (q.id.clone(), false))
        .collect();
    for i in 0..VISITS {
        let person = Person {
            id: PersonId(Uuid::now_v7()),
            username: format!("w{i}"),
            display_name: format!("Worker {i}"),
            role: Role::Worker,
            phone: None,
            lang: Lang::Da,
            teams: vec![team.id],
            password_hash: None,
            pin_hash: None,
            duress_pin_hash: None,
            created_at: engine.now(),
        };
        store.create_person(&person).await.unwrap();
        let shift = Shift {
            id: ShiftId(Uuid::now_v7()),
            person: person.id,
            team: team.id,
            started_at: engine.now(),
            ended_at: None,
        };
        store.start_shift(&shift).await.unwrap();
        let cmd = StartCommand {
            kind: VisitKind::DropIn,
            place: place.id,
            planned_minutes: 1,
            role: ParticipantRole::Talker,
            partners: vec![],
            answers: Some(answers.clone()),
            lone_reason: None,
            lone_approval: None,
            tell_colleague: None,
        };
        engine
            .start_visit(&person, cmd, engine.stamp(None, None).unwrap())
            .await
            .unwrap();
    }
    store
}

fn serve(url: &str, policy_file: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_makker"))
        .arg("serve")
        .env_remove("MAKKER_CONFIG")
        .env("MAKKER_DATABASE_URL", url)
        .env("MAKKER_LISTEN", "127.0.0.1:0")
        .env("MAKKER_POLICY", policy_file)
        .env("MAKKER_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start makker serve")
}

async fn alarms_per_visit(url: &str) -> Vec<i64> {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(i64,)> = sqlx::query_as(
        "select count(a.alarm_id) from visit v left join alarm a on a.visit_id = v.visit_id group by v.visit_id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_again_and_again_loses_no_deadline_and_fires_none_twice() {
    let Some(url) = fresh_database().await else {
        assert!(
            std::env::var("MAKKER_TEST_SKIP_PG").is_ok_and(|v| v == "1"),
            "MAKKER_TEST_DATABASE_URL is not set"
        );
        return;
    };
    // The default policy without grace, so the visits are overdue the moment they are seeded.
    let policy_text = DEFAULT_POLICY_TOML
        .replace("grace_minutes = 10", "grace_minutes = 0")
        .replace("grace_minutes = 5", "grace_minutes = 0")
        .replace("grace_minutes = 3", "grace_minutes = 0");
    let policy = Policy::from_toml(&policy_text).unwrap();
    let dir = std::env::temp_dir().join(format!("makker-crash-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy_file = dir.join("policy.toml");
    std::fs::write(&policy_file, &policy_text).unwrap();
    let _ = Config::default();
    seed(&url, &policy).await;

    // First the victim alone, killed mid-way again and again; then a steady replica joins.
    let mut victim = serve(&url, &policy_file);
    let mut progress = Vec::new();
    for round in 0..6u64 {
        tokio::time::sleep(Duration::from_millis(300 + 97 * round)).await;
        victim.kill().unwrap(); // SIGKILL on Unix
        victim.wait().unwrap();
        progress.push(alarms_per_visit(&url).await.iter().filter(|c| **c > 0).count());
        victim = serve(&url, &policy_file);
    }
    eprintln!("visits with their alarm after each kill: {progress:?} of {VISITS}");
    let kills = progress.len();
    let mut steady = serve(&url, &policy_file);
    let settled = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let counts = alarms_per_visit(&url).await;
            if counts.iter().all(|c| *c >= 1) {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    for p in [&mut steady, &mut victim] {
        let _ = p.kill();
        let _ = p.wait();
    }
    let _ = std::fs::remove_dir_all(dir);
    let counts = settled.expect("every overdue visit got its alarm");
    assert_eq!(counts.len(), VISITS);
    assert!(
        counts.iter().all(|c| *c == 1),
        "a deadline fired twice after {kills} kills: {counts:?}"
    );
}
