//! The deadline engine in virtual time, through the real database: every alarm kind, the
//! whole chain with its exact recipients and times, acknowledgement, follow-up, stand-down.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use makker_domain::PersonId;
use makker_domain::visit::{ParticipantRole, VisitKind};
use makker_engine::dispatcher::Dispatcher;
use makker_mobile_api::*;
use makker_notify::sms::{LogProvider, SmsProvider};
use makker_store::{Changes, DeadlineKind, NewDeadline, Store};
use makker_tests::app::{DURESS_PIN, Fixture, Member, PIN, TestApp, ready, start_request};
use makker_tests::both;

fn start(kind: VisitKind, place: uuid::Uuid, minutes: u32) -> StartVisitRequest {
    StartVisitRequest {
        planned_minutes: minutes,
        ..start_request(kind, place, &[])
    }
}

/// (minutes after `t0`, recipient, kind) of every queued message, in order.
async fn sent(app: &TestApp, f: &Fixture, t0: DateTime<Utc>) -> Vec<(i64, String, String)> {
    let names = [&f.anna, &f.bo, &f.carl, &f.sofie, &f.lars, &f.olga];
    let name = |id: PersonId| {
        names
            .iter()
            .find(|m| m.person.id == id)
            .map(|m| m.person.username.clone())
            .unwrap()
    };
    let mut out: Vec<(i64, String, String)> = app
        .engine
        .store
        .messages(None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                (m.created_at - t0).num_minutes(),
                name(m.message.person),
                m.message.kind,
            )
        })
        .collect();
    out.sort();
    out
}

fn rows(list: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(t, p, k)| (*t, p.to_string(), k.to_string()))
        .collect();
    v.sort();
    v
}

/// Moves the clock minute by minute to `t0 + minutes`, running the deadline loop and the
/// dispatcher (with the log provider) at each.
async fn run_to(app: &TestApp, t0: DateTime<Utc>, minutes: i64) {
    let sched = app.scheduler();
    let sms: Arc<dyn SmsProvider> = Arc::new(LogProvider::new());
    let dispatch = Dispatcher::new(app.engine.clone(), vec![sms]);
    while app.engine.now() < t0 + Duration::minutes(minutes) {
        app.clock.advance(Duration::minutes(1));
        sched.run_due().await.unwrap();
        dispatch.tick().await.unwrap();
    }
}

async fn alarm_of(m: &Member) -> AlarmView {
    let alarms = m.phone.alarms().await.unwrap();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    alarms[0].clone()
}

async fn a_missed_check_out_runs_the_whole_chain_until_someone_acknowledges(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    // Drop-in, low risk: planned 30 min, check in every 45, 10 minutes' grace, standard chain.
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 30))
        .await
        .unwrap();
    run_to(&app, t0, 39).await;
    assert_eq!(
        sent(&app, &f, t0).await,
        rows(&[(25, "anna", "reminder")]),
        "only the reminder before the grace ends"
    );
    run_to(&app, t0, 72).await;
    let alarm = alarm_of(&f.sofie).await;
    assert_eq!(
        (alarm.kind, alarm.state.as_str(), alarm.visit_id),
        (
            makker_domain::alarm::AlarmKind::MissedCheckOut,
            "open",
            Some(v.id)
        )
    );
    assert_eq!(alarm.raised_at, t0 + Duration::minutes(40));
    let chain = [
        (25, "anna", "reminder"),
        (40, "anna", "alarm"), // step 1: the worker
        (45, "bo", "alarm"),   // step 2: colleagues on shift
        (45, "carl", "alarm"),
        (50, "sofie", "alarm"), // step 3: the supervisor on duty
        (60, "lars", "alarm"),  // step 4: the manager
        (70, "anna", "alarm"),  // then everyone on duty, every 10 minutes
        (70, "bo", "alarm"),
        (70, "carl", "alarm"),
        (70, "sofie", "alarm"),
    ];
    assert_eq!(sent(&app, &f, t0).await, rows(&chain));
    let own = f.anna.phone.acknowledge(alarm.id).await.unwrap_err();
    assert_eq!(own.problem().unwrap().reason.as_deref(), Some("own-alarm"));
    let taken = f.sofie.phone.acknowledge(alarm.id).await.unwrap();
    assert_eq!(taken.acknowledged_by, Some(f.sofie.id()));
    let second = f.bo.phone.acknowledge(alarm.id).await.unwrap_err();
    assert_eq!(second.problem().unwrap().reason.as_deref(), Some("alarm-taken"));
    let audit = app
        .engine
        .store
        .audit_about(PersonId(f.anna.id()), "alarm.acknowledge")
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|a| (a.actor, a.object.clone()))
            .collect::<Vec<_>>(),
        vec![(Some(PersonId(f.sofie.id())), Some(alarm.id.to_string()))],
        "the audit log names who took it; refused attempts change nothing"
    );
    // Acknowledged at 72: nothing more until the 10-minute follow-up at 82 reopens it.
    run_to(&app, t0, 81).await;
    assert_eq!(sent(&app, &f, t0).await, rows(&chain));
    run_to(&app, t0, 82).await;
    assert_eq!(
        alarm_of(&f.sofie).await.state,
        "open",
        "not resolved in time: open again"
    );
    let mut more = chain.to_vec();
    more.extend([
        (82, "sofie", "follow_up"),
        (82, "anna", "alarm"),
        (82, "bo", "alarm"),
        (82, "carl", "alarm"),
        (82, "sofie", "alarm"),
    ]);
    assert_eq!(sent(&app, &f, t0).await, rows(&more));
    // Anna checks out: everyone who was told hears she is safe; the chain stops.
    f.anna
        .phone
        .check_out(
            v.id,
            &CheckOutRequest {
                pin: Some(PIN.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        app.engine.store.armed().await.unwrap().is_empty(),
        "the check-out cancelled every timer at once"
    );
    run_to(&app, t0, 120).await;
    more.extend([
        (82, "bo", "stand_down"),
        (82, "carl", "stand_down"),
        (82, "lars", "stand_down"),
        (82, "sofie", "stand_down"),
    ]);
    assert_eq!(sent(&app, &f, t0).await, rows(&more));
    assert!(
        f.sofie.phone.alarms().await.unwrap().is_empty(),
        "resolved by the check-out"
    );
    assert!(
        app.engine.store.armed().await.unwrap().is_empty(),
        "no timer is left"
    );
}

/// Anna and Bo at the park for two hours. Park, low risk: check in every 30 minutes; the
/// reminder comes 5 minutes before.
fn park_pair(f: &Fixture) -> StartVisitRequest {
    let mut req = start(VisitKind::Park, f.park.id.0, 120);
    req.partners.push(PartnerRequest {
        person_id: f.bo.id(),
        role: ParticipantRole::Observer,
    });
    req
}

async fn a_check_in_in_time_moves_the_timers_and_nothing_fires(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    let v = f.anna.phone.start_visit(&park_pair(&f)).await.unwrap();
    run_to(&app, t0, 28).await;
    f.bo.phone.check_in(v.id, &EventRequest::default()).await.unwrap();
    run_to(&app, t0, 56).await;
    f.anna
        .phone
        .check_in(v.id, &EventRequest::default())
        .await
        .unwrap();
    run_to(&app, t0, 60).await;
    assert_eq!(
        sent(&app, &f, t0).await,
        rows(&[
            (25, "anna", "reminder"),
            (25, "bo", "reminder"),
            (53, "anna", "reminder"),
            (53, "bo", "reminder")
        ])
    );
    assert!(f.sofie.phone.alarms().await.unwrap().is_empty());
    let armed = app.engine.store.armed().await.unwrap();
    let due: Vec<_> = armed
        .iter()
        .map(|d| (d.kind, (d.due_at - t0).num_minutes()))
        .collect();
    assert_eq!(
        due,
        vec![(DeadlineKind::Reminder, 81), (DeadlineKind::Overdue, 91)]
    );
    let out = CheckOutRequest {
        pin: Some(PIN.into()),
        ..Default::default()
    };
    for m in [&f.anna, &f.bo] {
        m.phone.check_out(v.id, &out).await.unwrap();
    }
    assert!(
        app.engine.store.armed().await.unwrap().is_empty(),
        "the check-out cancelled the timers"
    );
}

async fn a_duress_check_out_raises_a_silent_alarm_that_no_check_out_stands_down(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    let mut req = start(VisitKind::HomeVisitUnannounced, f.home.id.0, 60);
    req.partners.push(PartnerRequest {
        person_id: f.bo.id(),
        role: ParticipantRole::Observer,
    });
    let v = f.anna.phone.start_visit(&req).await.unwrap();
    app.clock.advance(Duration::minutes(10));
    let out = f
        .anna
        .phone
        .check_out(
            v.id,
            &CheckOutRequest {
                pin: Some(DURESS_PIN.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        out.state, "active",
        "Bo is still there; Anna's phone shows a normal check-out"
    );
    app.scheduler().run_due().await.unwrap();
    // Urgent chain, step 1 is worker + partner: never Anna's own phone. Bo is now alone
    // (break): he gets his lone timer; the supervisor and Anna hear exactly what a normal
    // check-out would have told them, so her phone gives nothing away.
    let first = rows(&[
        (10, "anna", "two_person_break"),
        (10, "bo", "alarm"),
        (10, "bo", "lone_timer"),
        (10, "sofie", "two_person_break"),
    ]);
    assert_eq!(sent(&app, &f, t0).await, first);
    f.bo.phone
        .check_out(
            v.id,
            &CheckOutRequest {
                pin: Some(PIN.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    run_to(&app, t0, 12).await;
    let alarm = alarm_of(&f.sofie).await;
    assert_eq!(
        (alarm.kind, alarm.state.as_str()),
        (makker_domain::alarm::AlarmKind::Duress, "open")
    );
    assert!(
        f.anna.phone.alarms().await.unwrap().is_empty(),
        "Anna's phone, perhaps in someone else's hand, never lists the duress alarm"
    );
    assert_eq!(alarm_of(&f.bo).await.id, alarm.id, "her colleague sees it");
    let all = sent(&app, &f, t0).await;
    assert!(
        all.iter()
            .all(|(_, who, kind)| (who != "anna" || kind != "alarm") && kind != "stand_down"),
        "{all:?}"
    );
    assert!(
        all.contains(&(12, "sofie".into(), "alarm".into())),
        "step 2 at +2 min reaches the supervisor: {all:?}"
    );
}

async fn a_partner_leaving_early_starts_a_lone_timer_and_tells_a_colleague(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    // Unannounced home visit: by two, check in every 20 minutes, 5 minutes' grace, urgent chain.
    let mut req = start(VisitKind::HomeVisitUnannounced, f.home.id.0, 60);
    req.partners.push(PartnerRequest {
        person_id: f.bo.id(),
        role: ParticipantRole::Observer,
    });
    let v = f.anna.phone.start_visit(&req).await.unwrap();
    run_to(&app, t0, 15).await;
    f.bo.phone.check_out(v.id, &pin_body(PIN)).await.unwrap();
    // Anna's lone timer runs from the break at the policy's 10 minutes, not the visit's 20.
    let armed: Vec<_> = app
        .engine
        .store
        .armed()
        .await
        .unwrap()
        .iter()
        .map(|d| (d.kind, (d.due_at - t0).num_minutes()))
        .collect();
    assert_eq!(
        armed,
        vec![(DeadlineKind::Reminder, 20), (DeadlineKind::Overdue, 30)]
    );
    run_to(&app, t0, 30).await;
    let alarm = alarm_of(&f.sofie).await;
    assert_eq!(
        (alarm.kind, alarm.raised_at),
        (
            makker_domain::alarm::AlarmKind::MissedCheckIn,
            t0 + Duration::minutes(30)
        )
    );
    f.anna.phone.check_out(v.id, &pin_body(PIN)).await.unwrap();
    assert_eq!(
        sent(&app, &f, t0).await,
        rows(&[
            (15, "anna", "reminder"), // before the break: the pair's check-in due at 20
            (15, "bo", "reminder"),
            (15, "bo", "two_person_break"), // the partner who left is the colleague told
            (15, "sofie", "two_person_break"),
            (15, "anna", "lone_timer"),
            (20, "anna", "reminder"),
            (30, "anna", "alarm"), // urgent step 1: the worker and her partner, though he left
            (30, "bo", "alarm"),
            (30, "bo", "stand_down"), // those told, not Anna who checked out herself
            (30, "bo", "tell_colleague"), // rule 6 for the one left: Bo hears she is out
        ])
    );
}

/// Deadlines are instants: a visit across a daylight-saving change in Europe/Copenhagen (spring
/// forward and fall back, both at 01:00 UTC) falls due exactly planned end + grace later.
async fn deadlines_across_daylight_saving_changes_fire_at_the_right_instant(store: Arc<dyn Store>) {
    use chrono::TimeZone;
    let (app, f) = ready(store).await;
    for (month, day) in [(3, 28), (10, 31)] {
        // 00:40 UTC: 01:40 CET before spring forward, 02:40 CEST before fall back.
        let began = Utc.with_ymd_and_hms(2027, month, day, 0, 40, 0).unwrap();
        app.clock.set(began);
        // Months later: the fixture's phone tokens have expired; sign in afresh.
        let anna = f
            .anna
            .phone
            .with_token(app.engine.issue_token(f.anna.person.id, "new").await.unwrap().0);
        let sofie = f
            .sofie
            .phone
            .with_token(app.engine.issue_token(f.sofie.person.id, "new").await.unwrap().0);
        let v = anna
            .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 30))
            .await
            .unwrap();
        // Drop-in: planned 30 minutes and 10 minutes' grace: due at 01:20 UTC, whatever the
        // wall clock in Copenhagen did at 01:00 UTC.
        let due = began + Duration::minutes(40);
        app.clock.set(due - Duration::seconds(1));
        app.scheduler().run_due().await.unwrap();
        assert!(sofie.alarms().await.unwrap().is_empty(), "not a second early");
        app.clock.set(due);
        app.scheduler().run_due().await.unwrap();
        let alarms = sofie.alarms().await.unwrap();
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_eq!((alarms[0].visit_id, alarms[0].raised_at), (Some(v.id), due));
        anna.check_out(v.id, &pin_body(PIN)).await.unwrap();
        assert!(
            sofie.alarms().await.unwrap().is_empty(),
            "her check-out stood it down"
        );
    }
}

/// A phone whose clock is hours off: its time is kept beside the server's, but deadlines run
/// from the server's; too far ahead is refused and moves nothing.
async fn a_phone_clock_hours_off_cannot_move_a_deadline(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 120))
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(20));
    let behind = EventRequest {
        client_time: Some(app.engine.now() - Duration::hours(3)),
        position: None,
    };
    f.anna.phone.check_in(v.id, &behind).await.unwrap();
    let overdue = |armed: Vec<makker_store::Deadline>| {
        armed
            .into_iter()
            .find(|d| d.kind == DeadlineKind::Overdue)
            .map(|d| (d.due_at - t0).num_minutes())
    };
    // Check in every 45 minutes from the server's 20, plus 10 minutes' grace: not from 3 h ago.
    assert_eq!(overdue(app.engine.store.armed().await.unwrap()), Some(75));
    let ahead = EventRequest {
        client_time: Some(app.engine.now() + Duration::hours(6)),
        position: None,
    };
    let refused = f.anna.phone.check_in(v.id, &ahead).await.unwrap_err();
    assert_eq!(refused.problem().unwrap().type_, "urn:makker:problem:clock-skew");
    assert_eq!(
        overdue(app.engine.store.armed().await.unwrap()),
        Some(75),
        "nothing moved"
    );
}

fn pin_body(pin: &str) -> CheckOutRequest {
    CheckOutRequest {
        pin: Some(pin.into()),
        ..Default::default()
    }
}

async fn an_sos_escalates_at_once_without_a_reminder(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    let alarm = f
        .carl
        .phone
        .sos(&EventRequest {
            client_time: None,
            position: Some(LatLon {
                lat: 56.15,
                lon: 10.2,
            }),
        })
        .await
        .unwrap();
    assert_eq!(alarm.raised_at, t0);
    app.scheduler().run_due().await.unwrap();
    assert_eq!(sent(&app, &f, t0).await, rows(&[(0, "carl", "alarm")]));
    run_to(&app, t0, 2).await;
    let step2 = rows(&[
        (0, "carl", "alarm"),
        (2, "anna", "alarm"),
        (2, "bo", "alarm"),
        (2, "sofie", "alarm"),
    ]);
    assert_eq!(sent(&app, &f, t0).await, step2);
    let sms = app.engine.store.messages(None).await.unwrap();
    let to_sofie = sms.iter().find(|m| m.message.person.0 == f.sofie.id()).unwrap();
    assert!(
        to_sofie.message.body.contains("56.15000,10.20000"),
        "the SMS carries the position: {}",
        to_sofie.message.body
    );
    f.anna.phone.acknowledge(alarm.id).await.unwrap();
    let resolved = f
        .anna
        .phone
        .resolve(
            alarm.id,
            &ResolveRequest {
                outcome: "worker_safe".into(),
                note: Some("Falsk alarm i lommen".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (resolved.state.as_str(), resolved.outcome.as_deref()),
        ("resolved", Some("worker_safe"))
    );
    run_to(&app, t0, 30).await;
    assert_eq!(sent(&app, &f, t0).await, step2, "nothing after the resolution");
}

async fn a_restart_fires_every_overdue_deadline_at_once(store: Arc<dyn Store>) {
    catch_up_after_downtime(store, None).await;
}

/// Catching up a batch of one deadline at a time: each full batch has the next claimed and
/// fired beside it, and every deadline fires once, as in one batch.
async fn a_restart_catching_up_a_deadline_at_a_time_fires_each_once(store: Arc<dyn Store>) {
    catch_up_after_downtime(store, Some(1)).await;
}

/// Three visits overdue after two hours' downtime, caught up by a new process claiming
/// `batch` deadlines at a time (else its default).
async fn catch_up_after_downtime(store: Arc<dyn Store>, batch: Option<u32>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    for m in [&f.anna, &f.bo, &f.carl] {
        m.phone
            .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 30))
            .await
            .unwrap();
    }
    // The server was down for two hours: a new scheduler (a new process) catches up at once.
    app.clock.advance(Duration::hours(2));
    let mut scheduler = app.scheduler();
    if let Some(batch) = batch {
        scheduler.batch = batch;
    }
    let fired = scheduler.run_due().await.unwrap();
    assert_eq!(fired, 6, "three reminders and three overdue deadlines, each once");
    let raised = f.sofie.phone.alarms().await.unwrap();
    assert_eq!(raised.len(), 3);
    assert!(raised.iter().all(|a| a.raised_at == t0 + Duration::hours(2)));
    // The reminders came too late to remind; each alarm's first step tells its worker.
    assert_eq!(
        sent(&app, &f, t0).await,
        rows(&[
            (120, "anna", "alarm"),
            (120, "bo", "alarm"),
            (120, "carl", "alarm")
        ])
    );
    assert!(
        app.engine
            .store
            .armed()
            .await
            .unwrap()
            .iter()
            .all(|d| d.due_at > app.engine.now()),
        "nothing due is left armed (nor leased)"
    );
}

/// A process that leased due deadlines and died before committing (SIGKILL between claim and
/// commit) leaves them armed: they fire once, elsewhere, when the lease lapses (not sooner:
/// the other's loop waits for that moment rather than asking again at once); the dead process
/// cannot fire them afterwards.
async fn a_deadline_leased_by_a_process_that_died_fires_once_after_its_lease(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    f.anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 30))
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(41));
    let now = app.engine.now();
    let leased = app
        .engine
        .store
        .claim_due(now, "dead-replica", now + Duration::seconds(30), 100)
        .await
        .unwrap();
    assert_eq!(
        leased.iter().map(|d| d.kind).collect::<Vec<_>>(),
        vec![DeadlineKind::Reminder, DeadlineKind::Overdue]
    );
    assert_eq!(
        app.scheduler().run_due().await.unwrap(),
        0,
        "leased rows are left alone"
    );
    let tick = app.scheduler().tick().await.unwrap();
    assert_eq!(
        (tick.fired, tick.next_due),
        (0, Some(now + Duration::seconds(30))),
        "nothing is due for this process until the lease lapses (its loop sleeps till then)"
    );
    app.clock.advance(Duration::seconds(31));
    assert!(app.scheduler().run_due().await.unwrap() >= 2);
    let late = app
        .engine
        .store
        .fire(&leased[1], "dead-replica", app.engine.now(), &Changes::default())
        .await
        .unwrap();
    assert!(!late, "a lapsed lease cannot fire");
    assert_eq!(
        f.sofie.phone.alarms().await.unwrap().len(),
        1,
        "one alarm, not two"
    );
}

/// A check-in moves the visit's timers in place (no new rows). A firing decided before the
/// move cannot fire the moved timer: not while the lease it held is cleared, and not after
/// the same process claims the timer again at its new due time.
async fn a_timer_moved_while_leased_fires_only_at_its_new_due_time(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    let v = f.anna.phone.start_visit(&park_pair(&f)).await.unwrap();
    let armed = app.engine.store.armed().await.unwrap();
    app.clock.advance(Duration::minutes(26));
    let claim = async |owner: &str| {
        let now = app.engine.now();
        let until = now + Duration::seconds(10);
        app.engine.store.claim_due(now, owner, until, 10).await.unwrap()
    };
    let old = claim("me").await;
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(
        (old[0].kind, (old[0].due_at - t0).num_minutes()),
        (DeadlineKind::Reminder, 25)
    );
    f.anna
        .phone
        .check_in(v.id, &EventRequest::default())
        .await
        .unwrap();
    let moved = app.engine.store.armed().await.unwrap();
    let ids = |d: &[makker_store::Deadline]| d.iter().map(|d| (d.kind, d.id)).collect::<Vec<_>>();
    assert_eq!(ids(&moved), ids(&armed), "moved in place");
    let due: Vec<_> = moved.iter().map(|d| (d.due_at - t0).num_minutes()).collect();
    assert_eq!(due, vec![51, 61]);
    let fire = async |d: &makker_store::Deadline| {
        let now = app.engine.now();
        app.engine
            .store
            .fire(d, "me", now, &Changes::default())
            .await
            .unwrap()
    };
    assert!(!fire(&old[0]).await, "the move cleared the lease");
    app.clock.advance(Duration::minutes(26));
    let new = claim("me").await;
    assert_eq!(
        ids(&new),
        ids(&old),
        "the same row, claimed again by the same process"
    );
    assert!(
        !fire(&old[0]).await,
        "a decision for the old due time does not fire"
    );
    assert!(fire(&new[0]).await, "the one for the new due time does");
    assert!(!fire(&new[0]).await, "once");
}

/// Deadlines of different visits fire together in one transaction: only those still leased
/// to the firing process fire, and only their changes are written.
async fn deadlines_fired_together_write_only_what_the_leased_ones_cause(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    for m in [&f.anna, &f.bo, &f.carl] {
        m.phone
            .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 30))
            .await
            .unwrap();
    }
    app.clock.advance(Duration::minutes(41));
    let now = app.engine.now();
    let lease = now + Duration::seconds(30);
    let overdue = |mut due: Vec<makker_store::Deadline>| {
        due.retain(|d| d.kind == DeadlineKind::Overdue);
        due
    };
    let mine = overdue(app.engine.store.claim_due(now, "me", lease, 4).await.unwrap());
    let theirs = overdue(
        app.engine
            .store
            .claim_due(now, "other", lease, 100)
            .await
            .unwrap(),
    );
    assert_eq!((mine.len(), theirs.len()), (1, 2), "the lease split the three");
    let alarm = |d: &makker_store::Deadline, n: u32| {
        let person = [&f.anna, &f.bo, &f.carl][n as usize].person.id;
        let raised = makker_domain::alarm::Alarm::raise(
            makker_domain::AlarmId(uuid::Uuid::now_v7()),
            f.team.id,
            person,
            d.visit,
            makker_domain::alarm::AlarmKind::MissedCheckOut,
            "default",
            now,
        );
        Changes {
            new_alarms: vec![raised],
            ..Changes::default()
        }
    };
    let all: Vec<_> = mine.iter().chain(&theirs).collect();
    let changes: Vec<Changes> = all.iter().zip(0..).map(|(d, n)| alarm(d, n)).collect();
    let batch: Vec<(&makker_store::Deadline, &Changes)> = all.iter().copied().zip(&changes).collect();
    let fire = async || {
        let fired = app.engine.store.fire_many(&batch, "me", now, None).await;
        fired.unwrap().deadlines
    };
    assert_eq!(fire().await, vec![mine[0].id], "only my lease fires");
    let alarms = f.sofie.phone.alarms().await.unwrap();
    assert_eq!(alarms.len(), 1, "only its alarm is written");
    assert_eq!(alarms[0].id, changes[0].new_alarms[0].id.0);
    assert!(fire().await.is_empty(), "a deadline fires once");
    assert_eq!(f.sofie.phone.alarms().await.unwrap().len(), 1);
}

/// The engine decides what is due by the database's clock.
#[tokio::test]
async fn the_engines_clock_is_the_databases() {
    if makker_tests::pg_skipped() {
        return;
    }
    let store = makker_tests::pg_store().await;
    let clock = makker_engine::clock::DbClock::default();
    let offset = clock.sync(store.as_ref()).await.unwrap();
    assert!(offset.num_milliseconds().abs() < 1_000, "same host: {offset}");
    let db = store.db_now().await.unwrap();
    use makker_engine::clock::Clock;
    assert!((clock.now() - db).num_milliseconds().abs() < 1_000);
}

async fn a_drill_runs_the_real_chain_marked_as_a_test(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let t0 = app.engine.now();
    let refused =
        f.bo.phone
            .start_drill(&DrillRequest {
                worker_id: Some(f.anna.id()),
                team_id: None,
            })
            .await;
    assert_eq!(
        refused.unwrap_err().problem().unwrap().status,
        403,
        "workers do not start drills"
    );
    let drills = f
        .sofie
        .phone
        .start_drill(&DrillRequest {
            worker_id: None,
            team_id: Some(f.team.id.0),
        })
        .await
        .unwrap();
    assert_eq!(drills.len(), 3, "every worker on shift: anna, bo, carl");
    assert!(drills.iter().all(|d| d.drill));
    run_to(&app, t0, 2).await;
    let anna = drills.iter().find(|d| d.person_id == f.anna.id()).unwrap();
    let taken = f.bo.phone.acknowledge(anna.id).await.unwrap();
    assert_eq!(
        taken.acknowledged_at,
        Some(t0 + Duration::minutes(2)),
        "how fast it was taken is kept"
    );
    let all = app.engine.store.messages(None).await.unwrap();
    assert!(!all.is_empty());
    assert!(
        all.iter()
            .all(|m| m.message.drill && m.message.body.starts_with("[ØVELSE] ")),
        "{all:?}"
    );
}

async fn a_silent_phone_raises_an_alarm_that_its_next_heartbeat_stands_down(store: Arc<dyn Store>) {
    let mut policy = makker_domain::policy::Policy::default();
    policy.timers.heartbeat_silence_minutes = 10;
    let app = makker_tests::app::spawn_app_with(store, policy).await;
    let f = app.fixture().await;
    for m in [&f.anna, &f.bo, &f.carl, &f.sofie] {
        m.phone.start_shift(None).await.unwrap();
    }
    let t0 = app.engine.now();
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 30))
        .await
        .unwrap();
    run_to(&app, t0, 8).await;
    f.anna
        .phone
        .heartbeat(v.id, &EventRequest::default())
        .await
        .unwrap();
    run_to(&app, t0, 17).await;
    assert!(
        f.sofie.phone.alarms().await.unwrap().is_empty(),
        "heard at 8: silent only from 18"
    );
    run_to(&app, t0, 18).await;
    let alarm = alarm_of(&f.sofie).await;
    assert_eq!(alarm.kind, makker_domain::alarm::AlarmKind::LostHeartbeat);
    assert_eq!(alarm.raised_at, t0 + Duration::minutes(18));
    run_to(&app, t0, 23).await;
    f.anna
        .phone
        .heartbeat(v.id, &EventRequest::default())
        .await
        .unwrap();
    assert!(
        f.sofie.phone.alarms().await.unwrap().is_empty(),
        "the phone is heard again"
    );
    let told = sent(&app, &f, t0).await;
    assert!(told.contains(&(23, "bo".into(), "stand_down".into())), "{told:?}");
}

both! {
    two_person_break => a_partner_leaving_early_starts_a_lone_timer_and_tells_a_colleague,
    daylight_saving => deadlines_across_daylight_saving_changes_fire_at_the_right_instant,
    phone_clock_off => a_phone_clock_hours_off_cannot_move_a_deadline,
    lost_heartbeat => a_silent_phone_raises_an_alarm_that_its_next_heartbeat_stands_down,
    drill => a_drill_runs_the_real_chain_marked_as_a_test,
    crash_between_claim_and_commit => a_deadline_leased_by_a_process_that_died_fires_once_after_its_lease,
    missed_check_out_chain => a_missed_check_out_runs_the_whole_chain_until_someone_acknowledges,
    check_in_moves_timers => a_check_in_in_time_moves_the_timers_and_nothing_fires,
    duress_is_silent => a_duress_check_out_raises_a_silent_alarm_that_no_check_out_stands_down,
    sos => an_sos_escalates_at_once_without_a_reminder,
    restart_catches_up => a_restart_fires_every_overdue_deadline_at_once,
    restart_catches_up_one_at_a_time => a_restart_catching_up_a_deadline_at_a_time_fires_each_once,
    fired_together => deadlines_fired_together_write_only_what_the_leased_ones_cause,
    moved_while_leased => a_timer_moved_while_leased_fires_only_at_its_new_due_time,
}

/// Two replicas on one PostgreSQL with 10,000 deadlines due at once: each fires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fire_ten_thousand_deadlines_exactly_once() {
    if makker_tests::pg_skipped() {
        return;
    }
    let (app, f) = ready(makker_tests::pg_store().await).await;
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, 240))
        .await
        .unwrap();
    let due = app.engine.now() + Duration::minutes(1);
    let arm: Vec<NewDeadline> = (0..10_000)
        .map(|_| NewDeadline {
            kind: DeadlineKind::Reminder,
            visit: Some(makker_domain::VisitId(v.id)),
            alarm: None,
            due_at: due,
        })
        .collect();
    app.engine
        .store
        .apply(
            &Changes {
                arm,
                ..Changes::default()
            },
            app.engine.now(),
        )
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(2));
    let (a, b) = (app.scheduler(), app.scheduler());
    let (fa, fb) = tokio::join!(a.run_due(), b.run_due());
    let (fa, fb) = (fa.unwrap(), fb.unwrap());
    assert_eq!(fa + fb, 10_000, "replica A fired {fa}, B fired {fb}");
    let reminders = app.engine.store.messages(None).await.unwrap();
    assert_eq!(reminders.len(), 10_000, "one reminder per deadline, none twice");
    let armed = app.engine.store.armed().await.unwrap();
    assert!(
        armed.iter().all(|d| d.due_at > app.engine.now()),
        "nothing due is left armed"
    );
}

/// A deadline armed by one replica wakes the other's sleeping loop (LISTEN/NOTIFY), long
/// before its fallback poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_armed_elsewhere_wakes_a_sleeping_replica() {
    if makker_tests::pg_skipped() {
        return;
    }
    let (app, f) = ready(makker_tests::pg_store().await).await;
    let replica = makker_engine::Engine {
        wake: Arc::new(tokio::sync::Notify::new()),
        ..app.engine.clone()
    };
    let wake = replica.wake.clone();
    let watcher = tokio::spawn({
        let store = replica.store.clone();
        async move { store.watch_deadlines(Box::new(move || wake.notify_one())).await }
    });
    let mut sched = makker_engine::scheduler::Scheduler::new(replica);
    sched.max_sleep = std::time::Duration::from_secs(3600);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(sched.run(stopped));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // This process arms an SOS escalation due now; the replica must fire it.
    f.carl.phone.sos(&EventRequest::default()).await.unwrap();
    let fired = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while app.engine.store.messages(None).await.unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = stop.send(true);
    let _ = running.await;
    watcher.abort();
    assert!(fired.is_ok(), "the replica slept through a due deadline");
}
