//! The storage suite: what the `Store` trait promises, shown on SQLite and on PostgreSQL.
//!
//! Every body gets a fresh, migrated store; `both!` runs it once per backend. Times are fixed,
//! in whole seconds (one in whole microseconds), which both backends keep exactly.

use std::fmt::Debug;
use std::slice;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use makker_domain::Refusal;
use makker_domain::alarm::{Alarm, AlarmKind};
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind, Warning, WarningKind};
use makker_domain::policy::Policy;
use makker_domain::risk::{Answers, Assessed, RiskLevel, assess};
use makker_domain::text::Lang;
use makker_domain::visit::{Effect, ParticipantRole, Pin, StartVisit, Visit, VisitKind, VisitState};
use makker_domain::{AlarmId, AssessmentId, PersonId, PlaceId, Role, ShiftId, TeamId, VisitId, WarningId};
use makker_store::{
    Assessment, Changes, DeadlineKind, Device, Idempotency, LoneApproval, NewDeadline, NewEvent, Person,
    Shift, Stamp, Store, StoreError, StoreResult, Team, Versioned, constraint,
};
use uuid::Uuid;

makker_tests::both! {
    teams_and_people_round_trip_and_usernames_are_unique => super::teams_and_people_round_trip_and_usernames_are_unique,
    devices_are_found_by_token_hash_and_revoked_once => super::devices_are_found_by_token_hash_and_revoked_once,
    a_person_has_at_most_one_open_shift => super::a_person_has_at_most_one_open_shift,
    places_and_warnings_round_trip_per_team => super::places_and_warnings_round_trip_per_team,
    visits_round_trip_and_saves_are_optimistic => super::visits_round_trip_and_saves_are_optimistic,
    saves_at_once_share_commits_yet_each_is_judged_alone => super::saves_at_once_share_commits_yet_each_is_judged_alone,
    reads_at_once_share_statements_yet_each_gets_its_own => super::reads_at_once_share_statements_yet_each_gets_its_own,
    a_duress_check_out_raises_its_alarm_in_the_same_save => super::a_duress_check_out_raises_its_alarm_in_the_same_save,
    visit_events_are_ordered_by_the_phones_time => super::visit_events_are_ordered_by_the_phones_time,
    the_recent_assessment_is_the_teams_latest_since_a_time => super::the_recent_assessment_is_the_teams_latest_since_a_time,
    a_lone_approval_is_used_at_most_once => super::a_lone_approval_is_used_at_most_once,
    idempotency_keys_claim_replay_and_release_per_person => super::idempotency_keys_claim_replay_and_release_per_person,
    idempotency_keys_asked_at_once_are_each_claimed_once => super::idempotency_keys_asked_at_once_are_each_claimed_once,
}

#[tokio::test]
async fn the_two_schemas_have_the_same_tables_and_columns() {
    if makker_tests::pg_skipped() {
        eprintln!("PostgreSQL half skipped on purpose (MAKKER_TEST_SKIP_PG=1)");
        return;
    }
    let (sqlite, _dir) = makker_tests::sqlite_store().await;
    let pg = makker_tests::pg_store().await;
    let lite = sqlite.schema().await.unwrap();
    let tables: Vec<&str> = lite.iter().map(|(t, _)| t.as_str()).collect();
    for known in [
        "team",
        "person",
        "device",
        "shift",
        "place",
        "assessment",
        "visit",
        "visit_event",
        "alarm",
    ] {
        assert!(tables.contains(&known), "SQLite has no table {known}: {tables:?}");
    }
    assert_eq!(lite, pg.schema().await.unwrap());
}

// ----- Fixtures -----

/// A fixed time on the test day.
fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 2, hour, minute, 0).unwrap()
}

fn pos(lat: f64, lon: f64) -> Position {
    Position::parse(lat, lon).unwrap()
}

fn new_id() -> Uuid {
    Uuid::now_v7()
}

fn circle(lat: f64, lon: f64, radius_m: f64) -> Shape {
    Shape::Circle {
        center: pos(lat, lon),
        radius_m,
    }
}

fn stamp(received_at: DateTime<Utc>) -> Stamp {
    Stamp {
        received_at,
        client_time: None,
        position: None,
    }
}

fn assert_conflict<T: Debug>(result: StoreResult<T>, expected: &str) {
    match result {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, expected),
        other => panic!("expected a conflict on {expected}, got {other:?}"),
    }
}

fn assert_not_found<T: Debug>(result: StoreResult<T>) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

async fn team(store: &dyn Store, name: &str) -> Team {
    let team = Team {
        id: TeamId(new_id()),
        name: name.into(),
        time_zone: "Europe/Copenhagen".into(),
        created_at: at(7, 0),
    };
    store.create_team(&team).await.unwrap();
    team
}

/// A person with every optional field set, so that a lost column shows.
fn new_person(display_name: &str, role: Role, teams: &[TeamId]) -> Person {
    let id = new_id();
    let mut teams = teams.to_vec();
    teams.sort();
    Person {
        id: PersonId(id),
        username: format!("user-{}", id.simple()),
        display_name: display_name.into(),
        role,
        phone: Some("+4520304050".into()),
        lang: Lang::Sv,
        teams,
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$password${id}")),
        pin_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$pin${id}")),
        duress_pin_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$duress${id}")),
        created_at: at(7, 5),
    }
}

async fn person(store: &dyn Store, display_name: &str, role: Role, team: &Team) -> Person {
    let person = new_person(display_name, role, &[team.id]);
    store.create_person(&person).await.unwrap();
    person
}

async fn place(store: &dyn Store, team: &Team, name: &str, shape: Shape) -> Place {
    let place = Place {
        id: PlaceId(new_id()),
        team: team.id,
        name: name.into(),
        kind: PlaceKind::Park,
        shape,
    };
    store.create_place(&place, at(7, 10)).await.unwrap();
    place
}

/// A team with two workers and a park: where most visits happen.
struct World {
    team: Team,
    talker: Person,
    observer: Person,
    place: Place,
}

impl World {
    async fn new(store: &dyn Store) -> World {
        let team = team(store, "Syd").await;
        // The store lists people who joined a visit together by id; v7 ids follow creation,
        // so creating the talker first keeps `pair()`'s order through a round trip.
        let talker = person(store, "Anna", Role::Worker, &team).await;
        let observer = person(store, "Bo", Role::Worker, &team).await;
        let place = place(store, &team, "Enghaveparken", circle(55.6667, 12.544, 120.0)).await;
        World {
            team,
            talker,
            observer,
            place,
        }
    }

    /// A low-risk street contact at the park by `people`; the first one starts it.
    fn street_contact(&self, people: &[(&Person, ParticipantRole)]) -> StartVisit {
        StartVisit {
            id: VisitId(new_id()),
            team: self.team.id,
            kind: VisitKind::StreetContact,
            place: self.place.id,
            risk: Some(Assessed {
                points: 2,
                level: RiskLevel::Low,
            }),
            participants: people.iter().map(|(p, role)| (p.id, *role)).collect(),
            planned_minutes: 60,
            lone_reason: None,
            approved_by: None,
            tell_colleague: None,
        }
    }

    /// The talker and the observer together.
    fn pair(&self) -> StartVisit {
        self.street_contact(&[
            (&self.talker, ParticipantRole::Talker),
            (&self.observer, ParticipantRole::Observer),
        ])
    }

    fn alone(&self, worker: &Person) -> StartVisit {
        self.street_contact(&[(worker, ParticipantRole::Talker)])
    }
}

/// A visit started by the domain's rules, with a fresh assessment by its starter and the
/// `Started` event, ready to insert.
struct NewVisit {
    visit: Visit,
    assessment: Assessment,
    events: Changes,
}

impl NewVisit {
    fn start(req: StartVisit, now: DateTime<Utc>) -> NewVisit {
        let starter = req.participants[0].0;
        let policy = Policy::default();
        let (visit, effects) = Visit::start(&policy, req, now).unwrap();
        let answers: Answers = policy
            .assessment
            .questions
            .iter()
            .map(|q| (q.id.clone(), q.id == "restless_group"))
            .collect();
        let assessment = Assessment {
            id: AssessmentId(new_id()),
            place: visit.place,
            team: visit.team,
            by: starter,
            result: assess(&policy, &answers, 0).unwrap(),
            answers,
            assessed_at: now,
        };
        let events = new_events(starter, visit.id, effects, stamp(now));
        NewVisit {
            visit,
            assessment,
            events,
        }
    }

    async fn insert(&self, store: &dyn Store, approval_used: Option<Uuid>) -> StoreResult<()> {
        store
            .insert_visit(&self.visit, &self.assessment, false, approval_used, &self.events)
            .await
    }
}

fn new_events(person: PersonId, visit: VisitId, effects: Vec<Effect>, stamp: Stamp) -> Changes {
    let events = effects
        .into_iter()
        .map(|effect| NewEvent {
            visit,
            person: Some(person),
            effect,
            stamp,
        })
        .collect();
    Changes {
        events,
        ..Changes::default()
    }
}

/// Reads a visit, applies one transition by `person` at the stamp's time, and saves both.
async fn act(
    store: &dyn Store,
    visit: VisitId,
    person: PersonId,
    stamp: Stamp,
    transition: impl FnOnce(&mut Visit, DateTime<Utc>) -> Result<Vec<Effect>, Refusal>,
) -> Vec<Effect> {
    let Versioned {
        value: mut visit,
        version,
    } = store.visit(visit).await.unwrap();
    let effects = transition(&mut visit, stamp.occurred_at()).unwrap();
    let events = new_events(person, visit.id, effects.clone(), stamp);
    store
        .save_visit(&visit, version, &events, stamp.received_at)
        .await
        .unwrap();
    effects
}

// ----- Tests -----

async fn teams_and_people_round_trip_and_usernames_are_unique(store: Arc<dyn Store>) {
    let store = &*store;
    let south = team(store, "Syd").await;
    let north = team(store, "Nord").await;
    assert_eq!(store.teams().await.unwrap(), [north.clone(), south.clone()]);
    assert_eq!(store.team(south.id).await.unwrap(), south);
    assert_not_found(store.team(TeamId(new_id())).await);

    let supervisor = new_person("Anna", Role::Supervisor, &[south.id, north.id]);
    store.create_person(&supervisor).await.unwrap();
    let worker = person(store, "Bo", Role::Worker, &south).await;
    assert_eq!(store.person(supervisor.id).await.unwrap(), supervisor);
    assert_eq!(
        store.person_by_username(&supervisor.username).await.unwrap(),
        supervisor
    );
    assert_eq!(store.person(worker.id).await.unwrap(), worker);
    assert_eq!(
        store.team_members(south.id).await.unwrap(),
        [supervisor.clone(), worker.clone()]
    );
    assert_eq!(
        store.team_members(north.id).await.unwrap(),
        slice::from_ref(&supervisor)
    );

    let twin = Person {
        username: worker.username.clone(),
        ..new_person("Cai", Role::Worker, &[north.id])
    };
    assert_conflict(store.create_person(&twin).await, constraint::USERNAME);
    assert_not_found(store.person(twin.id).await);
    assert_eq!(
        store.team_members(north.id).await.unwrap(),
        slice::from_ref(&supervisor),
        "no membership of a refused person"
    );

    assert_not_found(store.person(PersonId(new_id())).await);
    assert_not_found(store.person_by_username("nobody").await);

    store
        .set_pin_hashes(worker.id, Some("new-pin"), None)
        .await
        .unwrap();
    store.set_password_hash(worker.id, "new-password").await.unwrap();
    let changed = Person {
        pin_hash: Some("new-pin".into()),
        duress_pin_hash: None,
        password_hash: Some("new-password".into()),
        ..worker
    };
    assert_eq!(store.person(worker.id).await.unwrap(), changed);
    assert_not_found(store.set_password_hash(PersonId(new_id()), "x").await);
    assert_not_found(store.set_pin_hashes(PersonId(new_id()), None, None).await);
}

async fn devices_are_found_by_token_hash_and_revoked_once(store: Arc<dyn Store>) {
    let store = &*store;
    let team = team(store, "Syd").await;
    let owner = person(store, "Anna", Role::Worker, &team).await;
    let device = Device {
        id: new_id(),
        person: owner.id,
        token_hash: "ab".repeat(32),
        name: "Pixel 8".into(),
        created_at: at(8, 0),
        expires_at: at(8, 0) + Duration::days(90),
        revoked_at: None,
    };
    store.insert_device(&device).await.unwrap();
    assert_eq!(
        store.device_by_token_hash(&device.token_hash).await.unwrap(),
        device
    );
    assert_eq!(store.devices(owner.id).await.unwrap(), slice::from_ref(&device));
    assert_not_found(store.device_by_token_hash(&"cd".repeat(32)).await);
    // Signing in reads the device, its person and every team of theirs in one query.
    let north = self::team(store, "Nord").await;
    let both = new_person("Bo", Role::Supervisor, &[team.id, north.id]);
    store.create_person(&both).await.unwrap();
    let bos = Device {
        id: new_id(),
        person: both.id,
        token_hash: "b0".repeat(32),
        ..device.clone()
    };
    store.insert_device(&bos).await.unwrap();
    let (signed_in, person) = store.signed_in(&bos.token_hash).await.unwrap();
    assert_eq!((signed_in, person.id), (bos.clone(), both.id));
    assert_eq!(person, both);
    assert_eq!(
        store.signed_in(&device.token_hash).await.unwrap(),
        (device.clone(), owner.clone())
    );
    assert_not_found(store.signed_in(&"cd".repeat(32)).await);
    let same_token = Device {
        id: new_id(),
        ..device.clone()
    };
    assert!(matches!(
        store.insert_device(&same_token).await,
        Err(StoreError::Conflict { .. })
    ));

    store.revoke_device(device.id, at(12, 0)).await.unwrap();
    store.revoke_device(device.id, at(13, 0)).await.unwrap();
    let revoked = store.device_by_token_hash(&device.token_hash).await.unwrap();
    assert_eq!(
        revoked,
        Device {
            revoked_at: Some(at(12, 0)),
            ..device.clone()
        }
    );
    assert!(!revoked.is_valid(at(12, 30)));
    assert_not_found(store.revoke_device(new_id(), at(12, 0)).await);
    let stranger = Device {
        id: new_id(),
        person: PersonId(new_id()),
        token_hash: "ef".repeat(32),
        ..device
    };
    assert_not_found(store.insert_device(&stranger).await);
}

async fn a_person_has_at_most_one_open_shift(store: Arc<dyn Store>) {
    let store = &*store;
    let south = team(store, "Syd").await;
    let north = team(store, "Nord").await;
    let anna = person(store, "Anna", Role::Worker, &south).await;
    let bo = person(store, "Bo", Role::Worker, &south).await;
    let shift = |person: &Person, hour: u32| Shift {
        id: ShiftId(new_id()),
        person: person.id,
        team: south.id,
        started_at: at(hour, 0),
        ended_at: None,
    };

    let first = shift(&anna, 8);
    store.start_shift(&first).await.unwrap();
    assert_conflict(
        store.start_shift(&shift(&anna, 9)).await,
        constraint::ONE_OPEN_SHIFT,
    );
    let second = shift(&bo, 9);
    store.start_shift(&second).await.unwrap();
    assert_eq!(store.open_shift(anna.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.on_shift(south.id).await.unwrap(),
        [(anna.clone(), first.clone()), (bo.clone(), second.clone())]
    );
    assert_eq!(store.on_shift(north.id).await.unwrap(), []);

    let ended = store.end_shift(anna.id, at(16, 0)).await.unwrap();
    assert_eq!(
        ended,
        Shift {
            ended_at: Some(at(16, 0)),
            ..first
        }
    );
    assert_eq!(store.open_shift(anna.id).await.unwrap(), None);
    assert_eq!(store.on_shift(south.id).await.unwrap(), [(bo, second)]);
    assert_not_found(store.end_shift(anna.id, at(17, 0)).await);

    let next = shift(&anna, 18);
    store.start_shift(&next).await.unwrap();
    assert_eq!(store.open_shift(anna.id).await.unwrap(), Some(next));
}

async fn places_and_warnings_round_trip_per_team(store: Arc<dyn Store>) {
    let store = &*store;
    let south = team(store, "Syd").await;
    let north = team(store, "Nord").await;
    let park = place(store, &south, "Enghaveparken", circle(55.6667, 12.544, 120.5)).await;
    let ring = vec![
        pos(55.6716, 12.5627),
        pos(55.67213, 12.565),
        pos(55.6708, 12.56551),
        pos(55.6703, 12.5631),
    ];
    let square = place(store, &south, "Halmtorvet", Shape::Polygon { ring }).await;
    let harbour = place(store, &north, "Nordhavn", circle(55.7108, 12.5942, 800.0)).await;

    for p in [&park, &square, &harbour] {
        assert_eq!(&store.place(p.id).await.unwrap(), p);
    }
    assert_not_found(store.place(PlaceId(new_id())).await);
    assert_eq!(
        store.places(&[south.id]).await.unwrap(),
        [park.clone(), square.clone()]
    );
    assert_eq!(
        store.places(&[north.id]).await.unwrap(),
        slice::from_ref(&harbour)
    );
    assert_eq!(store.places(&[]).await.unwrap(), []);

    let warning = |kind: WarningKind, text: &str, hour: u32| Warning {
        id: WarningId(new_id()),
        place: square.id,
        kind,
        text: text.into(),
        created_at: at(hour, 0),
        expires_at: at(hour, 0) + Duration::days(7),
    };
    let dog = warning(WarningKind::Dog, "Løs hund ved porten", 9);
    let threat = warning(WarningKind::Threat, "Truede en kollega i går", 11);
    store.add_warning(&dog).await.unwrap();
    store.add_warning(&threat).await.unwrap();
    assert_eq!(store.warnings(square.id).await.unwrap(), [dog, threat]);
    assert_eq!(store.warnings(park.id).await.unwrap(), []);
}

async fn visits_round_trip_and_saves_are_optimistic(store: Arc<dyn Store>) {
    let store = &*store;
    let w = World::new(store).await;
    let new = NewVisit::start(w.pair(), at(10, 0));
    new.insert(store, None).await.unwrap();
    let read = store.visit(new.visit.id).await.unwrap();
    assert_eq!(read.value, new.visit);
    for p in [&w.talker, &w.observer] {
        assert_eq!(store.active_visit_of(p.id).await.unwrap(), Some(read.clone()));
    }
    assert_not_found(store.visit(VisitId(new_id())).await);

    let second = NewVisit::start(w.alone(&w.observer), at(10, 5));
    assert_conflict(second.insert(store, None).await, constraint::ONE_ACTIVE_VISIT);
    assert_not_found(store.visit(second.visit.id).await);
    let recent = store
        .recent_assessment(w.team.id, w.place.id, at(10, 0))
        .await
        .unwrap();
    assert_eq!(
        recent,
        Some(new.assessment),
        "the refused visit's assessment was rolled back"
    );

    let mut checked_in = read.value.clone();
    let effects = checked_in.check_in(w.talker.id, at(10, 20)).unwrap();
    let events = new_events(w.talker.id, checked_in.id, effects, stamp(at(10, 20)));
    store
        .save_visit(&checked_in, read.version, &events, at(10, 20))
        .await
        .unwrap();
    let saved = store.visit(new.visit.id).await.unwrap();
    assert_eq!(
        saved,
        Versioned {
            value: checked_in,
            version: read.version + 1
        }
    );

    let mut stale = read.value;
    let effects = stale.extend(w.observer.id, 30, at(10, 25)).unwrap();
    let events = new_events(w.observer.id, stale.id, effects, stamp(at(10, 25)));
    assert_conflict(
        store.save_visit(&stale, read.version, &events, at(10, 25)).await,
        constraint::VISIT_VERSION,
    );
    assert_eq!(store.visit(new.visit.id).await.unwrap(), saved);
    let logged: Vec<Effect> = store
        .visit_events(new.visit.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.effect)
        .collect();
    assert_eq!(
        logged,
        [
            Effect::Started { by: w.talker.id },
            Effect::CheckedIn { person: w.talker.id }
        ]
    );
}

/// `n` workers of `w`'s team, each alone in a visit started at 10:00.
async fn lone_visits(store: &dyn Store, w: &World, n: usize) -> Vec<(Person, VisitId)> {
    let mut visits = Vec::with_capacity(n);
    for i in 0..n {
        let worker = person(store, &format!("Worker {i}"), Role::Worker, &w.team).await;
        let new = NewVisit::start(w.alone(&worker), at(10, 0));
        new.insert(store, None).await.unwrap();
        visits.push((worker, new.visit.id));
    }
    visits
}

/// A check-in's two reads (who is signed in, the visit to change), asked for many at once,
/// share statements: each caller still gets its own answer, an unknown key is not found, and
/// nothing is cached (a revocation shows in the next read).
async fn reads_at_once_share_statements_yet_each_gets_its_own(store: Arc<dyn Store>) {
    let w = World::new(&*store).await;
    let mut workers = Vec::new();
    for (i, (worker, visit)) in lone_visits(&*store, &w, 40).await.into_iter().enumerate() {
        let device = Device {
            id: new_id(),
            person: worker.id,
            token_hash: format!("{i:064x}"),
            name: format!("Phone {i}"),
            created_at: at(8, 0),
            expires_at: at(8, 0) + Duration::days(90),
            revoked_at: None,
        };
        store.insert_device(&device).await.unwrap();
        workers.push((worker, device, visit));
    }
    // The third worker's visit has an alarm open.
    let (third, _, alarmed) = &workers[2];
    let alarm = Alarm::raise(
        AlarmId(new_id()),
        w.team.id,
        third.id,
        Some(*alarmed),
        AlarmKind::Sos,
        "urgent",
        at(10, 5),
    );
    let raised = Changes {
        new_alarms: vec![alarm],
        ..Changes::default()
    };
    store.apply(&raised, at(10, 5)).await.unwrap();

    let read_all = async || {
        let mut reads = tokio::task::JoinSet::new();
        // Every key twice, and unknown ones among them.
        for (i, (_, device, visit)) in workers.iter().chain(&workers).enumerate() {
            let (store, hash, visit) = (Arc::clone(&store), device.token_hash.clone(), *visit);
            reads.spawn(async move {
                (
                    i,
                    store.signed_in(&hash).await,
                    store.visit_to_change(visit).await,
                )
            });
        }
        let store = Arc::clone(&store);
        reads.spawn(async move {
            let unknown = (
                store.signed_in(&"ff".repeat(32)).await,
                store.visit_to_change(VisitId(new_id())).await,
            );
            (usize::MAX, unknown.0, unknown.1)
        });
        reads.join_all().await
    };
    for (i, signed_in, visit) in read_all().await {
        if i == usize::MAX {
            assert!(matches!(signed_in, Err(StoreError::NotFound)), "{signed_in:?}");
            assert!(matches!(visit, Err(StoreError::NotFound)), "{visit:?}");
            continue;
        }
        let (worker, device, id) = &workers[i % workers.len()];
        assert_eq!(signed_in.unwrap(), (device.clone(), worker.clone()), "worker {i}");
        let (visit, open) = visit.unwrap();
        assert_eq!(visit, store.visit(*id).await.unwrap(), "worker {i}");
        assert_eq!(open, i % workers.len() == 2, "worker {i}");
    }
    store.revoke_device(workers[5].1.id, at(11, 0)).await.unwrap();
    for (i, signed_in, _) in read_all().await {
        if i != usize::MAX {
            let revoked = signed_in.unwrap().0.revoked_at;
            assert_eq!(revoked.is_some(), i % workers.len() == 5, "worker {i}");
        }
    }
    both_reads_at_once_answer_as_each_alone(&store, &w, &workers).await;
}

/// The two reads asked for at once (one statement on PostgreSQL) answer as each does alone:
/// also when their rows multiply (a person in two teams, a visit of two), when either half is
/// missing, and for many keys together.
async fn both_reads_at_once_answer_as_each_alone(
    store: &Arc<dyn Store>,
    w: &World,
    workers: &[(Person, Device, VisitId)],
) {
    let north = team(&**store, "Nord").await;
    let two_teams = new_person("Cai", Role::Worker, &[w.team.id, north.id]);
    store.create_person(&two_teams).await.unwrap();
    let device = Device {
        id: new_id(),
        person: two_teams.id,
        token_hash: "ee".repeat(32),
        ..workers[0].1.clone()
    };
    store.insert_device(&device).await.unwrap();
    let pair = NewVisit::start(w.pair(), at(10, 0));
    pair.insert(&**store, None).await.unwrap();
    let (unknown_hash, unknown_visit) = ("ff".repeat(32), VisitId(new_id()));
    let mut keys = vec![
        (device.token_hash.clone(), pair.visit.id),
        (unknown_hash.clone(), pair.visit.id),
        (device.token_hash.clone(), unknown_visit),
        (unknown_hash, unknown_visit),
    ];
    for (i, (_, device, _)) in workers.iter().enumerate() {
        keys.push((device.token_hash.clone(), workers[(i + 1) % workers.len()].2));
    }
    let mut reads = tokio::task::JoinSet::new();
    for (i, (hash, visit)) in keys.iter().cloned().enumerate() {
        let store = Arc::clone(store);
        reads.spawn(async move { (i, store.signed_in_to_change(&hash, visit).await) });
    }
    for (i, (signed_in, visit)) in reads.join_all().await {
        let (hash, id) = &keys[i];
        assert_same(
            &signed_in,
            &store.signed_in(hash).await,
            &format!("key {i}: signed in"),
        );
        assert_same(
            &visit,
            &store.visit_to_change(*id).await,
            &format!("key {i}: visit"),
        );
    }
    let (signed_in, visit) = store.signed_in_to_change(&device.token_hash, pair.visit.id).await;
    assert_eq!(signed_in.unwrap(), (device, two_teams), "both teams");
    assert_eq!(visit.unwrap().0.value.participants.len(), 2, "both participants");
}

/// `a` is `b`: the same value, or both not found.
fn assert_same<T: PartialEq + Debug>(a: &StoreResult<T>, b: &StoreResult<T>, what: &str) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(StoreError::NotFound), Err(StoreError::NotFound)) => {}
        _ => panic!("{what}: {a:?} against {b:?}"),
    }
}

/// Check-ins that arrive together share a transaction (group commit), but each is still
/// judged on its own: a stale read loses to the save before it, and one save that breaks a rule
/// fails alone. Both as the engine saves a check-in (participants as read, timers moved: one
/// statement on PostgreSQL) and as any other change is saved (a transaction of statements).
async fn saves_at_once_share_commits_yet_each_is_judged_alone(store: Arc<dyn Store>) {
    judged_alone(&store, true).await;
    judged_alone(&store, false).await;
}

/// A visit's reminder and overdue timers.
fn reminder_and_overdue(visit: VisitId, reminder: DateTime<Utc>, overdue: DateTime<Utc>) -> Vec<NewDeadline> {
    [
        (DeadlineKind::Reminder, reminder),
        (DeadlineKind::Overdue, overdue),
    ]
    .into_iter()
    .map(|(kind, due_at)| NewDeadline {
        kind,
        visit: Some(visit),
        alarm: None,
        due_at,
    })
    .collect()
}

async fn judged_alone(store: &Arc<dyn Store>, as_check_ins: bool) {
    let w = World::new(&**store).await;
    let mut workers = Vec::new();
    for (i, (worker, visit)) in lone_visits(&**store, &w, 12).await.into_iter().enumerate() {
        // Armed timers to move; the fourth visit has no overdue one yet (it is armed anew).
        let mut armed = reminder_and_overdue(visit, at(10, 30), at(10, 40));
        armed.truncate(if i == 3 { 1 } else { 2 });
        let timers = Changes {
            visit_timers: Some((visit, armed)),
            ..Changes::default()
        };
        store.apply(&timers, at(10, 0)).await.unwrap();
        workers.push((worker, store.visit(visit).await.unwrap()));
    }
    // A check-in at 10:20 that moves the timers to `reminder` and 10 minutes after it.
    let check_in = |(worker, read): &(Person, Versioned<Visit>), person: PersonId, reminder| {
        let mut visit = read.value.clone();
        let effects = visit.check_in(worker.id, at(10, 20)).unwrap();
        let mut changes = new_events(person, visit.id, effects, stamp(at(10, 20)));
        if as_check_ins {
            changes.same_participants = true;
            let timers = reminder_and_overdue(visit.id, reminder, reminder + Duration::minutes(10));
            changes.visit_timers = Some((visit.id, timers));
        }
        (visit, read.version, changes)
    };
    // Every worker checks in; the first twice from the same read (the second time with
    // other timers); the second's event names someone unknown (a broken foreign key).
    let mut saves = vec![check_in(&workers[0], workers[0].0.id, at(10, 55))];
    saves.extend(workers.iter().enumerate().map(|(i, w)| {
        let person = if i == 1 { PersonId(new_id()) } else { w.0.id };
        check_in(w, person, at(10, 50))
    }));
    let tasks: Vec<_> = saves
        .into_iter()
        .map(|(visit, version, changes)| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.save_visit(&visit, version, &changes, at(10, 20)).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    let twice = [&results[0], &results[1]];
    assert_eq!(twice.iter().filter(|r| r.is_ok()).count(), 1, "{twice:?}");
    assert!(twice.iter().any(
        |r| matches!(r, Err(StoreError::Conflict { constraint }) if constraint == constraint::VISIT_VERSION)
    ));
    assert!(results[2].is_err(), "the broken save failed: {:?}", results[2]);
    for r in &results[3..] {
        assert!(r.is_ok(), "{r:?}");
    }
    let armed = store.armed().await.unwrap();
    let live = store.live_since(0, 10_000).await.unwrap();
    for (i, (worker, read)) in workers.iter().enumerate() {
        let id = read.value.id;
        let now = store.visit(id).await.unwrap();
        let logged = store.visit_events(id).await.unwrap();
        let checked_in = logged
            .iter()
            .filter(|e| e.effect == Effect::CheckedIn { person: worker.id })
            .count();
        let mut timers: Vec<(DeadlineKind, DateTime<Utc>)> = armed
            .iter()
            .filter(|d| d.visit == Some(id))
            .map(|d| (d.kind, d.due_at))
            .collect();
        timers.sort_by_key(|t| t.1);
        // Only the save that won moved the first visit's timers.
        let reminder = if i == 0 && results[0].is_ok() {
            at(10, 55)
        } else {
            at(10, 50)
        };
        let expected = if as_check_ins && i != 1 {
            vec![
                (DeadlineKind::Reminder, reminder),
                (DeadlineKind::Overdue, reminder + Duration::minutes(10)),
            ]
        } else {
            let before = [
                (DeadlineKind::Reminder, at(10, 30)),
                (DeadlineKind::Overdue, at(10, 40)),
            ];
            before[..if i == 3 { 1 } else { 2 }].to_vec()
        };
        assert_eq!(timers, expected, "worker {i}'s armed timers");
        let boards = live
            .iter()
            .filter(|e| e.kind == "visit" && e.payload["id"] == serde_json::json!(id))
            .count();
        // Once as started, once more if checked in.
        assert_eq!(
            boards,
            1 + usize::from(i != 1),
            "worker {i}'s visit on the boards"
        );
        if i == 1 {
            assert_eq!(
                (now.version, checked_in),
                (read.version, 0),
                "nothing of the broken save stays"
            );
        } else {
            assert_eq!((now.version, checked_in), (read.version + 1, 1), "worker {i}");
            assert_eq!(now.value.last_check_in_at, at(10, 20));
        }
    }
}

async fn a_duress_check_out_raises_its_alarm_in_the_same_save(store: Arc<dyn Store>) {
    let store = &*store;
    let w = World::new(store).await;
    let new = NewVisit::start(w.pair(), at(10, 0));
    new.insert(store, None).await.unwrap();
    let id = new.visit.id;

    let there = pos(55.6668, 12.5441);
    let duress = Stamp {
        received_at: at(10, 40),
        client_time: None,
        position: Some(there),
    };
    let talker = w.talker.id;
    let Versioned {
        value: mut visit,
        version,
    } = store.visit(id).await.unwrap();
    let effects = visit.check_out(talker, Pin::Duress, at(10, 40)).unwrap();
    assert!(effects.contains(&Effect::DuressAlarm { person: talker }));
    let mut alarm = Alarm::raise(
        AlarmId(new_id()),
        w.team.id,
        talker,
        Some(id),
        AlarmKind::Duress,
        "urgent",
        at(10, 40),
    );
    alarm.position = Some(there);
    assert!(!store.visit_to_change(id).await.unwrap().1, "no alarm yet");
    let mut changes = new_events(talker, id, effects, duress);
    changes.new_alarms.push(alarm.clone());
    store
        .save_visit(&visit, version, &changes, at(10, 40))
        .await
        .unwrap();
    assert_eq!(store.alarms_of(talker).await.unwrap(), [alarm]);
    let (read, alarmed) = store.visit_to_change(id).await.unwrap();
    assert_eq!((read, alarmed), (store.visit(id).await.unwrap(), true));
    assert_eq!(store.active_visit_of(talker).await.unwrap(), None);
    let still_there = store
        .active_visit_of(w.observer.id)
        .await
        .unwrap()
        .expect("the observer is still in the visit");
    assert_eq!(still_there.value.state, VisitState::Active);

    let observer = w.observer.id;
    act(store, id, observer, stamp(at(10, 45)), |v, now| {
        v.check_out(observer, Pin::Normal, now)
    })
    .await;
    assert_eq!(store.active_visit_of(observer).await.unwrap(), None);
    let ended = store.visit(id).await.unwrap().value;
    assert_eq!(
        (ended.state, ended.ended_at),
        (VisitState::Ended, Some(at(10, 45)))
    );
    assert!(ended.participants.iter().all(|p| p.left_at.is_some()));
    assert_eq!(
        store.alarms_of(observer).await.unwrap(),
        [],
        "a normal check-out raises nothing"
    );
    assert_eq!(store.alarms_of(talker).await.unwrap().len(), 1);
}

async fn visit_events_are_ordered_by_the_phones_time(store: Arc<dyn Store>) {
    let store = &*store;
    let w = World::new(store).await;
    let new = NewVisit::start(w.pair(), at(10, 0));
    new.insert(store, None).await.unwrap();
    let (id, talker, observer) = (new.visit.id, w.talker.id, w.observer.id);

    let square = pos(55.6716, 12.5627);
    let online = Stamp {
        received_at: at(10, 20),
        client_time: None,
        position: Some(square),
    };
    act(store, id, talker, online, |v, now| v.check_in(talker, now)).await;
    // Queued on the observer's phone at 10:10 and received after the talker's check-in.
    let queued = at(10, 10) + Duration::microseconds(123_456);
    let offline = Stamp {
        received_at: at(10, 30),
        client_time: Some(queued),
        position: None,
    };
    act(store, id, observer, offline, |v, now| v.check_in(observer, now)).await;

    let log = store.visit_events(id).await.unwrap();
    let seen: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.person,
                e.effect.clone(),
                e.occurred_at,
                e.received_at,
                e.client_time,
                e.position,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                Some(talker),
                Effect::Started { by: talker },
                at(10, 0),
                at(10, 0),
                None,
                None
            ),
            (
                Some(observer),
                Effect::CheckedIn { person: observer },
                queued,
                at(10, 30),
                Some(queued),
                None
            ),
            (
                Some(talker),
                Effect::CheckedIn { person: talker },
                at(10, 20),
                at(10, 20),
                None,
                Some(square)
            ),
        ]
    );
    assert!(log[1].seq > log[2].seq, "the observer's event was received last");
    assert!(log.iter().all(|e| e.visit == id));
}

async fn the_recent_assessment_is_the_teams_latest_since_a_time(store: Arc<dyn Store>) {
    let store = &*store;
    let w = World::new(store).await;
    let recent = |team: TeamId, since| store.recent_assessment(team, w.place.id, since);
    let north = team(store, "Nord").await;
    assert_eq!(recent(w.team.id, at(0, 0)).await.unwrap(), None);

    let first = NewVisit::start(w.alone(&w.talker), at(9, 0));
    first.insert(store, None).await.unwrap();
    let second = NewVisit::start(w.alone(&w.observer), at(9, 30));
    second.insert(store, None).await.unwrap();
    assert_eq!(
        recent(w.team.id, at(8, 0)).await.unwrap(),
        Some(second.assessment.clone())
    );
    assert_eq!(
        recent(w.team.id, at(9, 30)).await.unwrap(),
        Some(second.assessment.clone()),
        "at `since` counts"
    );
    assert_eq!(recent(w.team.id, at(9, 31)).await.unwrap(), None);
    assert_eq!(recent(north.id, at(8, 0)).await.unwrap(), None);

    // A visit reusing the second assessment: a second row would break its primary key.
    let cai = person(store, "Cai", Role::Worker, &w.team).await;
    let reusing = NewVisit {
        assessment: second.assessment.clone(),
        ..NewVisit::start(w.alone(&cai), at(9, 45))
    };
    store
        .insert_visit(&reusing.visit, &reusing.assessment, true, None, &reusing.events)
        .await
        .unwrap();
    assert_eq!(store.visit(reusing.visit.id).await.unwrap().value, reusing.visit);
    assert_eq!(
        recent(w.team.id, at(8, 0)).await.unwrap(),
        Some(second.assessment.clone())
    );

    // Another team's newer assessment of the same place is theirs, not this team's.
    let dan = person(store, "Dan", Role::Worker, &north).await;
    let theirs = NewVisit::start(
        StartVisit {
            team: north.id,
            ..w.alone(&dan)
        },
        at(9, 50),
    );
    theirs.insert(store, None).await.unwrap();
    assert_eq!(recent(north.id, at(8, 0)).await.unwrap(), Some(theirs.assessment));
    assert_eq!(
        recent(w.team.id, at(8, 0)).await.unwrap(),
        Some(second.assessment)
    );
}

async fn a_lone_approval_is_used_at_most_once(store: Arc<dyn Store>) {
    let store = &*store;
    let w = World::new(store).await;
    let supervisor = person(store, "Eva", Role::Supervisor, &w.team).await;
    let approval = LoneApproval {
        id: new_id(),
        worker: w.talker.id,
        supervisor: supervisor.id,
        place: w.place.id,
        created_at: at(9, 0),
        expires_at: at(11, 0),
        used_at: None,
    };
    store.insert_lone_approval(&approval).await.unwrap();
    assert_eq!(store.lone_approval(approval.id).await.unwrap(), approval);
    assert_not_found(store.lone_approval(new_id()).await);

    // An announced home visit at medium risk: alone only with an approval, telling a colleague.
    let lone_visit = |worker: &Person, colleague: &Person, now| {
        let req = StartVisit {
            kind: VisitKind::HomeVisitAnnounced,
            risk: Some(Assessed {
                points: 3,
                level: RiskLevel::Medium,
            }),
            approved_by: Some(supervisor.id),
            tell_colleague: Some(colleague.id),
            ..w.alone(worker)
        };
        NewVisit::start(req, now)
    };
    let first = lone_visit(&w.talker, &w.observer, at(10, 0));
    first.insert(store, Some(approval.id)).await.unwrap();
    assert_eq!(store.visit(first.visit.id).await.unwrap().value, first.visit);
    let used = LoneApproval {
        used_at: Some(at(10, 0)),
        ..approval
    };
    assert_eq!(store.lone_approval(used.id).await.unwrap(), used);

    let again = lone_visit(&w.observer, &w.talker, at(10, 5));
    let refused = again.insert(store, Some(used.id)).await;
    assert!(matches!(refused, Err(StoreError::Conflict { .. })), "{refused:?}");
    assert_not_found(store.visit(again.visit.id).await);
    assert_eq!(store.active_visit_of(w.observer.id).await.unwrap(), None);
    assert_eq!(store.lone_approval(used.id).await.unwrap(), used);
}

async fn begin(store: &dyn Store, person: &Person, key: &str, request_hash: &str) -> Idempotency {
    store
        .idempotency_begin(person.id, key, request_hash, at(10, 0))
        .await
        .unwrap()
}

async fn idempotency_keys_claim_replay_and_release_per_person(store: Arc<dyn Store>) {
    let store = &*store;
    let w = World::new(store).await;
    let (anna, bo) = (&w.talker, &w.observer);
    let done = Idempotency::Done {
        status: 201,
        body: r#"{"visit":"started"}"#.into(),
    };

    assert_eq!(begin(store, anna, "key-1", "hash-1").await, Idempotency::Started);
    assert_eq!(
        begin(store, anna, "key-1", "hash-1").await,
        Idempotency::InProgress
    );
    assert_eq!(begin(store, anna, "key-1", "hash-2").await, Idempotency::Mismatch);
    assert_eq!(
        begin(store, bo, "key-1", "hash-1").await,
        Idempotency::Started,
        "keys are per person"
    );

    store
        .idempotency_finish(anna.id, "key-1", 201, r#"{"visit":"started"}"#)
        .await
        .unwrap();
    assert_eq!(begin(store, anna, "key-1", "hash-1").await, done);
    assert_eq!(begin(store, anna, "key-1", "hash-2").await, Idempotency::Mismatch);
    assert_eq!(begin(store, bo, "key-1", "hash-1").await, Idempotency::InProgress);

    store.idempotency_abandon(bo.id, "key-1").await.unwrap();
    assert_eq!(
        begin(store, bo, "key-1", "hash-2").await,
        Idempotency::Started,
        "an abandoned key is free"
    );
    store.idempotency_abandon(anna.id, "key-1").await.unwrap();
    assert_eq!(
        begin(store, anna, "key-1", "hash-1").await,
        done,
        "a finished key is kept"
    );

    // A claim never answered (its process died midway) lapses after a minute, for the same
    // request only; a finished key never does.
    let later = |seconds| at(10, 0) + Duration::seconds(seconds);
    let begin_at = |key: &'static str, hash: &'static str, now| async move {
        store.idempotency_begin(anna.id, key, hash, now).await.unwrap()
    };
    assert_eq!(begin(store, anna, "key-2", "hash-1").await, Idempotency::Started);
    assert_eq!(
        begin_at("key-2", "hash-1", later(30)).await,
        Idempotency::InProgress
    );
    assert_eq!(
        begin_at("key-2", "hash-2", later(61)).await,
        Idempotency::Mismatch
    );
    assert_eq!(begin_at("key-2", "hash-1", later(61)).await, Idempotency::Started);
    assert_eq!(
        begin_at("key-2", "hash-1", later(90)).await,
        Idempotency::InProgress,
        "claimed again at 10:01:01"
    );
    assert_eq!(begin_at("key-1", "hash-1", later(3600)).await, done);
}

/// Claims of many keys at once (on PostgreSQL they share statements), each key asked for
/// several times by the same request and by another: each key is claimed exactly once, the
/// others see it in progress or refused, and each answer is stored under its own key.
async fn idempotency_keys_asked_at_once_are_each_claimed_once(store: Arc<dyn Store>) {
    let w = World::new(&*store).await;
    let (anna, bo) = (w.talker.id, w.observer.id);
    let finished = Idempotency::Done {
        status: 200,
        body: "finished before".into(),
    };
    store
        .idempotency_begin(anna, "key-old", "a", at(10, 0))
        .await
        .unwrap();
    store
        .idempotency_finish(anna, "key-old", 200, "finished before")
        .await
        .unwrap();
    let mut asks: Vec<(PersonId, String, &str)> = Vec::new();
    for i in 0..30 {
        let key = format!("key-{i}");
        for (person, hash) in [(anna, "a"), (anna, "a"), (anna, "b"), (bo, "a")] {
            asks.push((person, key.clone(), hash));
        }
    }
    asks.extend([(anna, "key-old".into(), "a"), (anna, "key-old".into(), "b")]);
    let claim_all = async |asks: &[(PersonId, String, &'static str)]| {
        let mut claims = tokio::task::JoinSet::new();
        for (i, (person, key, hash)) in asks.iter().cloned().enumerate() {
            let store = Arc::clone(&store);
            claims.spawn(async move {
                (
                    i,
                    store
                        .idempotency_begin(person, &key, hash, at(10, 1))
                        .await
                        .unwrap(),
                )
            });
        }
        let mut outcomes = claims.join_all().await;
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect::<Vec<_>>()
    };
    let first = claim_all(&asks).await;
    // Who claimed each (person, key), by which request.
    let mut winners = std::collections::HashMap::new();
    for (ask, outcome) in asks.iter().zip(&first) {
        if *outcome == Idempotency::Started {
            let earlier = winners.insert((ask.0, ask.1.clone()), ask.2);
            assert_eq!(earlier, None, "{ask:?} claimed twice");
        }
    }
    assert_eq!(
        winners.len(),
        60,
        "every fresh key of each person claimed: {winners:?}"
    );
    for (ask, outcome) in asks.iter().zip(&first) {
        let expected = match winners.get(&(ask.0, ask.1.clone())) {
            None if ask.2 == "a" => finished.clone(),
            None => Idempotency::Mismatch,
            Some(_) if *outcome == Idempotency::Started => continue,
            Some(&winner) if winner == ask.2 => Idempotency::InProgress,
            Some(_) => Idempotency::Mismatch,
        };
        assert_eq!(*outcome, expected, "{ask:?}");
    }

    let mut answers = tokio::task::JoinSet::new();
    for ((person, key), _) in winners.clone() {
        let store = Arc::clone(&store);
        answers.spawn(async move {
            let body = format!("{person:?} {key}");
            store.idempotency_finish(person, &key, 201, &body).await.unwrap();
        });
    }
    answers.join_all().await;
    for (ask, outcome) in asks.iter().zip(claim_all(&asks).await) {
        let expected = match winners.get(&(ask.0, ask.1.clone())) {
            None if ask.2 == "a" => finished.clone(),
            Some(&winner) if winner == ask.2 => Idempotency::Done {
                status: 201,
                body: format!("{:?} {}", ask.0, ask.1),
            },
            _ => Idempotency::Mismatch,
        };
        assert_eq!(outcome, expected, "{ask:?} replayed");
    }
}

/// The serving store's check-in readers and committers keep their PostgreSQL connections
/// between statements. When the database drops them (a restart, a failover), each dropped
/// connection fails at most one statement, transiently, and is then replaced.
#[tokio::test]
async fn a_kept_connection_the_database_dropped_is_replaced() {
    let url = makker_tests::pg_database_url().await;
    let store = makker_store_pg::PgStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let nobody = VisitId(Uuid::now_v7());
    assert_not_found(store.visit_to_change(nobody).await);
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let dropped: Vec<(bool,)> = sqlx::query_as(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!dropped.is_empty());
    let mut failures = 0;
    loop {
        match store.visit_to_change(nobody).await {
            Err(StoreError::NotFound) => break,
            Err(StoreError::Transient(_)) if failures < dropped.len() => failures += 1,
            other => panic!("after {failures} transient failures: {other:?}"),
        }
    }
}
