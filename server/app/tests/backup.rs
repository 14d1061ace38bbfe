//! `makker::backup`: a backup of a database with visits, alarms, visit events and messages,
//! restored into an empty database, holds every record of the original unchanged. On SQLite the
//! backup is taken while the server's lock and a pool are held and a writer keeps starting
//! visits; on PostgreSQL it goes through `pg_dump` and `pg_restore`.
//!
//! The audit log comes along too: the acknowledgement and the administrative lines.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Duration, Utc};
use makker::admin;
use makker_domain::alarm::Alarm;
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind};
use makker_domain::policy::{DEFAULT_POLICY_TOML, Policy};
use makker_domain::text::Lang;
use makker_domain::visit::{Visit, VisitKind};
use makker_domain::{PersonId, PlaceId, Role, ShiftId, TeamId, VisitId};
use makker_engine::clock::ManualClock;
use makker_engine::dispatcher::Dispatcher;
use makker_engine::scheduler::Scheduler;
use makker_engine::{Engine, StartCommand, auth};
use makker_notify::sms::{LogProvider, SmsProvider};
use makker_store::{
    AttemptRecord, AuditEntry, Deadline, Device, Message, Person, Shift, Store, StoreError, Team, Versioned,
    VisitEvent,
};
use sqlx::Connection;
use uuid::Uuid;

const PIN: &str = "2468";

/// The URL of a fresh, empty PostgreSQL database on the server of `MAKKER_TEST_DATABASE_URL`,
/// or `None` when that is unset (allowed only with `MAKKER_TEST_SKIP_PG=1`).
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
    let name = format!("makker_t_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let _ = admin.close().await;
    let cut = base.rfind('/').unwrap();
    Some(format!("{}/{name}", &base[..cut]))
}

/// A directory removed on drop. Its name has a quote, which the SQLite backup path must survive.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("makker-backup-{}", Uuid::new_v4()));
        let dir = dir.join("it's here");
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite://{}", self.0.join(name).display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// What was seeded: the ids to look records up by.
struct Seeded {
    engine: Engine,
    team: TeamId,
    place: PlaceId,
    people: Vec<Person>,
    visits: Vec<VisitId>,
}

/// The default policy without grace, so one-minute visits are overdue two minutes later.
fn policy() -> Policy {
    let text = DEFAULT_POLICY_TOML
        .replace("grace_minutes = 10", "grace_minutes = 0")
        .replace("grace_minutes = 5", "grace_minutes = 0")
        .replace("grace_minutes = 3", "grace_minutes = 0");
    Policy::from_toml(&text).unwrap()
}

async fn add_person(engine: &Engine, team: TeamId, username: &str, role: Role, i: u32) -> Person {
    let person = Person {
        id: PersonId(Uuid::now_v7()),
        username: username.to_owned(),
        display_name: format!("{username} (test)"),
        role,
        phone: Some(format!("+45201{i:05}")),
        lang: if i.is_multiple_of(2) { Lang::Da } else { Lang::Sv },
        teams: vec![team],
        password_hash: Some(auth::hash_secret(&format!("password of {username}"))),
        pin_hash: Some(auth::hash_secret(PIN)),
        duress_pin_hash: Some(auth::hash_secret("9999")),
        created_at: engine.now(),
    };
    engine.store.create_person(&person).await.unwrap();
    // As `makker admin create-person` records it.
    engine
        .audit_admin("create_person", Some(person.id), &person.username)
        .await
        .unwrap();
    engine
        .store
        .start_shift(&Shift {
            id: ShiftId(Uuid::now_v7()),
            person: person.id,
            team,
            started_at: engine.now(),
            ended_at: None,
        })
        .await
        .unwrap();
    person
}

async fn start_visit(engine: &Engine, who: &Person, place: PlaceId, at: Option<Position>) -> VisitId {
    let cmd = StartCommand::lone(VisitKind::DropIn, place, 1, &engine.policy);
    engine
        .start_visit(who, cmd, engine.stamp(None, at).unwrap())
        .await
        .unwrap()
        .value
        .id
}

/// A team with a supervisor and five workers on shift at a drop-in centre. Four workers miss
/// their one-minute check-out (one checked in on the way), one checks out in time; the
/// deadline loop runs once (reminders, alarms, first escalation step), the outbox is sent
/// through the log provider, and the supervisor acknowledges one alarm.
async fn seed(url: &str) -> Seeded {
    let store = makker::open_store(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now() - Duration::minutes(30)));
    let engine = Engine::new(store.clone(), Arc::new(policy()), clock.clone());
    let team = admin::create_team(&engine, "Gadeteam Aarhus", "Europe/Copenhagen")
        .await
        .unwrap();
    let centre = Position::parse(56.1478, 10.2045).unwrap();
    let place = Place {
        id: PlaceId(Uuid::now_v7()),
        team: team.id,
        name: "Værestedet".into(),
        kind: PlaceKind::DropIn,
        shape: Shape::Circle {
            center: centre,
            radius_m: 40.0,
        },
    };
    store.create_place(&place, engine.now()).await.unwrap();
    let sofie = add_person(&engine, team.id, "sofie", Role::Supervisor, 0).await;
    let mut people = vec![sofie.clone()];
    for i in 1..=5 {
        people.push(add_person(&engine, team.id, &format!("worker{i}"), Role::Worker, i).await);
    }
    engine.issue_token(people[1].id, "Annas telefon").await.unwrap();
    let mut visits = Vec::new();
    for (i, who) in people[1..].iter().enumerate() {
        let at = i.is_multiple_of(2).then_some(centre);
        visits.push(start_visit(&engine, who, place.id, at).await);
    }
    clock.advance(Duration::seconds(30));
    engine
        .check_in(&people[2], visits[1], engine.stamp(None, Some(centre)).unwrap())
        .await
        .unwrap();
    engine
        .check_out(
            &people[5],
            visits[4],
            Some(PIN),
            engine.stamp(None, None).unwrap(),
        )
        .await
        .unwrap();
    clock.advance(Duration::minutes(2));
    let fired = Scheduler::new(engine.clone()).run_due().await.unwrap();
    assert!(fired > 0, "the overdue deadlines fired");
    let sms: Arc<dyn SmsProvider> = Arc::new(LogProvider::new());
    Dispatcher::new(engine.clone(), vec![sms]).tick().await.unwrap();
    let alarms = store.unresolved_team_alarms(team.id).await.unwrap();
    assert_eq!(alarms.len(), 4, "one alarm per missed check-out: {alarms:?}");
    engine.acknowledge(&sofie, alarms[0].id).await.unwrap();
    Seeded {
        engine,
        team: team.id,
        place: place.id,
        people,
        visits,
    }
}

/// Every record of the seeded ids, read through the `Store` trait.
#[derive(Debug, PartialEq)]
struct Snapshot {
    schema: Vec<(String, Vec<String>)>,
    teams: Vec<Team>,
    people: Vec<Person>,
    devices: Vec<Vec<Device>>,
    places: Vec<Place>,
    visits: Vec<(Versioned<Visit>, Vec<VisitEvent>)>,
    alarms: Vec<Versioned<Alarm>>,
    open_team_alarms: Vec<Alarm>,
    messages: Vec<Message>,
    attempts: Vec<Vec<AttemptRecord>>,
    /// Armed timers of the seeded visits and alarms.
    armed: Vec<Deadline>,
    /// Each person's audit lines: created by an admin, alarms about them acknowledged.
    audit: Vec<Vec<AuditEntry>>,
}

async fn snapshot(store: &dyn Store, seeded: &Seeded) -> Snapshot {
    let mut people = Vec::new();
    let mut devices = Vec::new();
    let mut alarm_ids = Vec::new();
    let mut audit = Vec::new();
    for p in &seeded.people {
        let mut lines = store.audit_about(p.id, "admin.create_person").await.unwrap();
        lines.extend(store.audit_about(p.id, "alarm.acknowledge").await.unwrap());
        audit.push(lines);
        people.push(store.person(p.id).await.unwrap());
        devices.push(store.devices(p.id).await.unwrap());
        alarm_ids.extend(store.alarms_of(p.id).await.unwrap().into_iter().map(|a| a.id));
    }
    alarm_ids.sort_by_key(|id| id.0);
    let mut visits = Vec::new();
    for id in &seeded.visits {
        visits.push((
            store.visit(*id).await.unwrap(),
            store.visit_events(*id).await.unwrap(),
        ));
    }
    let mut alarms = Vec::new();
    let mut attempts = Vec::new();
    for id in &alarm_ids {
        alarms.push(store.alarm(*id).await.unwrap());
        attempts.push(store.attempts(*id).await.unwrap());
    }
    let mut armed: Vec<Deadline> = store
        .armed()
        .await
        .unwrap()
        .into_iter()
        .filter(|d| {
            d.visit.is_some_and(|v| seeded.visits.contains(&v))
                || d.alarm.is_some_and(|a| alarm_ids.contains(&a))
        })
        .collect();
    armed.sort_by_key(|d| d.id);
    Snapshot {
        schema: store.schema().await.unwrap(),
        teams: store.teams().await.unwrap(),
        people,
        devices,
        places: store.places(&[seeded.team]).await.unwrap(),
        visits,
        alarms,
        open_team_alarms: store.unresolved_team_alarms(seeded.team).await.unwrap(),
        messages: store.messages(None).await.unwrap(),
        attempts,
        armed,
        audit,
    }
}

/// The seeded scenario produced every kind of record, so the comparison is not empty-handed.
fn assert_realistic(s: &Snapshot) {
    assert_eq!(s.visits.len(), 5);
    assert!(s.visits.iter().all(|(_, events)| !events.is_empty()));
    assert_eq!(s.alarms.len(), 4);
    assert_eq!(s.open_team_alarms.len(), 4);
    assert!(
        s.alarms.iter().any(|a| a.value.acknowledged_by.is_some()),
        "one alarm is acknowledged"
    );
    // Alarm messages (reminders of check-ins already missed when the loop fired them are not
    // sent: the alarm tells instead).
    assert!(s.messages.len() >= 4, "alarm messages: {}", s.messages.len());
    assert!(s.messages.iter().any(|m| m.state == "sent"));
    assert!(s.attempts.iter().any(|a| !a.is_empty()));
    assert!(!s.armed.is_empty());
    assert_eq!(s.devices[1].len(), 1);
    let actions: Vec<&str> = s.audit.iter().flatten().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"alarm.acknowledge") && actions.contains(&"admin.create_person"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_while_the_server_writes_restores_every_record() {
    let scratch = Scratch::new();
    let url = scratch.sqlite_url("makker.db");
    let seeded = seed(&url).await;
    let before = snapshot(seeded.engine.store.as_ref(), &seeded).await;
    assert_realistic(&before);

    // As `makker serve` would: its lock, its pool (seeded.engine's) and a writer, all busy
    // while the backup runs.
    let _serving = makker::lock_sqlite(&url).unwrap().expect("the server's lock");
    let writer = {
        let engine = seeded.engine.clone();
        let (team, place) = (seeded.team, seeded.place);
        let (started, writing) = tokio::sync::oneshot::channel();
        let mut started = Some(started);
        let task = tokio::spawn(async move {
            let mut late = Vec::new();
            for i in 0..30 {
                let who = add_person(&engine, team, &format!("late{i}"), Role::Worker, 100 + i).await;
                late.push(start_visit(&engine, &who, place, None).await);
                if i == 4 {
                    let _ = started.take().map(|s| s.send(()));
                }
            }
            late
        });
        writing.await.unwrap();
        task
    };
    let backup = scratch.0.join("backup 'quoted'.db");
    makker::backup::backup(&url, &backup).await.unwrap();
    let late = writer.await.unwrap();
    assert!(backup.is_file());
    assert!(
        !scratch.0.join("backup 'quoted'.db.partial").exists(),
        "the partial file is renamed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a backup holds password hashes");
    }

    let restored_url = scratch.sqlite_url("restored.db");
    // Left over from a database that was moved away without them: they must not be replayed.
    std::fs::write(scratch.0.join("restored.db-wal"), b"stale").unwrap();
    std::fs::write(scratch.0.join("restored.db-shm"), b"stale").unwrap();
    makker::backup::restore(&restored_url, &backup).await.unwrap();
    assert!(!scratch.0.join("restored.db-wal").exists());
    assert!(!scratch.0.join("restored.db-shm").exists());
    let restored = makker::open_store(&restored_url).await.unwrap();
    assert_eq!(snapshot(restored.as_ref(), &seeded).await, before);

    // The writer's visits are in the copy or not, each whole: the copy is one snapshot.
    let mut copied = 0;
    for id in &late {
        let original = seeded.engine.store.visit(*id).await.unwrap();
        match restored.visit(*id).await {
            Ok(v) => {
                copied += 1;
                assert_eq!(v, original);
                assert_eq!(
                    restored.visit_events(*id).await.unwrap(),
                    seeded.engine.store.visit_events(*id).await.unwrap()
                );
            }
            Err(StoreError::NotFound) => {}
            Err(e) => panic!("{e}"),
        }
    }
    eprintln!(
        "{copied} of {} visits started around the backup are in it",
        late.len()
    );
    assert!(copied >= 5, "the backup began after the writer's fifth visit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_and_restore_never_overwrite_and_restore_waits_for_the_server_to_stop() {
    let scratch = Scratch::new();
    let url = scratch.sqlite_url("makker.db");
    let _store = makker::open_store(&url).await.unwrap();

    let taken = scratch.0.join("taken.db");
    std::fs::write(&taken, b"someone else's file").unwrap();
    let err = makker::backup::backup(&url, &taken).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err:#}");
    assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's file");

    let missing = scratch.sqlite_url("no-such.db");
    let err = makker::backup::backup(&missing, &scratch.0.join("b0.db"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("cannot open"), "{err:#}");
    assert!(
        !scratch.0.join("no-such.db").exists(),
        "backup creates no database"
    );
    assert!(!scratch.0.join("b0.db").exists() && !scratch.0.join("b0.db.partial").exists());

    let backup = scratch.0.join("b1.db");
    makker::backup::backup(&url, &backup).await.unwrap();
    let serving = makker::lock_sqlite(&url).unwrap();
    let err = makker::backup::restore(&url, &backup).await.unwrap_err();
    assert!(format!("{err:#}").contains("stop makker"), "{err:#}");
    drop(serving);
    let err = makker::backup::restore(&url, &backup).await.unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");

    let err = makker::backup::restore(&scratch.sqlite_url("new.db"), &taken)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("is not a SQLite database"), "{err:#}");
    assert!(!scratch.0.join("new.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_restores_every_record_into_an_empty_database() {
    let Some(url) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    let seeded = seed(&url).await;
    let before = snapshot(seeded.engine.store.as_ref(), &seeded).await;
    assert_realistic(&before);

    let dump = scratch.0.join("makker.dump");
    makker::backup::backup(&url, &dump).await.unwrap();
    assert!(std::fs::metadata(&dump).unwrap().len() > 0);
    let err = makker::backup::backup(&url, &dump).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err:#}");

    let err = makker::backup::restore(&url, &dump).await.unwrap_err();
    assert!(
        err.to_string().contains("already holds Makker's tables"),
        "{err:#}"
    );

    let Some(empty) = fresh_pg().await else { return };
    makker::backup::restore(&empty, &dump).await.unwrap();
    let restored = makker::open_store(&empty).await.unwrap();
    assert_eq!(snapshot(restored.as_ref(), &seeded).await, before);
}

#[tokio::test]
async fn a_postgres_restore_of_something_else_fails_with_pg_restore_s_reason() {
    let Some(empty) = fresh_pg().await else { return };
    let scratch = Scratch::new();
    let junk = scratch.0.join("not-a-dump");
    std::fs::write(&junk, b"hello").unwrap();
    let err = makker::backup::restore(&empty, &junk).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("pg_restore failed"), "{text}");
    assert!(text.contains("not appear to be a valid archive"), "{text}");
}
