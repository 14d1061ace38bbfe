//! The mobile API v1 end to end: a real server on port 0, a real database (SQLite and
//! PostgreSQL), the typed client, and a manual clock.

use std::sync::Arc;

use chrono::Duration;
use makker_domain::alarm::{AlarmKind, AlarmState};
use makker_domain::visit::{Effect, ParticipantRole, VisitKind};
use makker_domain::{PersonId, VisitId};
use makker_mobile_api::client::ClientError;
use makker_mobile_api::*;
use makker_store::Store;
use makker_tests::app::{DURESS_PIN, PIN, TestApp, ready, spawn_app, start_request as start};
use makker_tests::both;
use reqwest::Method;

fn problem<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Problem {
    r.expect_err("the call should fail")
        .problem()
        .expect("a problem+json answer")
        .clone()
}

fn with_partner(mut req: StartVisitRequest, partner: uuid::Uuid) -> StartVisitRequest {
    req.partners.push(PartnerRequest {
        person_id: partner,
        role: ParticipantRole::Observer,
    });
    req
}

fn pin(pin: &str) -> CheckOutRequest {
    CheckOutRequest {
        pin: Some(pin.into()),
        ..CheckOutRequest::default()
    }
}

async fn events(app: &TestApp, visit: uuid::Uuid) -> Vec<Effect> {
    let log = app.engine.store.visit_events(VisitId(visit)).await.unwrap();
    log.into_iter().map(|e| e.effect).collect()
}

async fn signing_in_gives_a_token_that_works_until_signed_out(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let f = app.fixture().await;
    let anon = app.client();
    let wrong = problem(anon.login("anna", "nope", "phone").await);
    let unknown = problem(anon.login("nobody", "pw", "phone").await);
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong, unknown,
        "a wrong password and an unknown user look the same"
    );
    let login = anon.login(" Anna ", "pw", "Annas telefon").await.unwrap();
    assert_eq!(login.person.id, f.anna.id());
    let phone = anon.with_token(&login.token);
    assert_eq!(phone.me().await.unwrap().username, "anna");
    phone.logout().await.unwrap();
    assert_eq!(problem(phone.me().await).type_, "urn:makker:problem:unauthorized");
    // The older phone of the fixture still works: revocation is per device.
    assert_eq!(f.anna.phone.me().await.unwrap().username, "anna");
}

async fn too_many_wrong_passwords_lock_the_username_for_a_while(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let f = app.fixture().await;
    let anon = app.client();
    for _ in 0..4 {
        assert_eq!(problem(anon.login("anna", "nope", "phone").await).status, 401);
    }
    let locked = problem(anon.login("anna", "nope", "phone").await);
    assert_eq!(
        (locked.status, locked.type_.as_str()),
        (429, "urn:makker:problem:locked-out")
    );
    assert!(
        locked.detail.as_deref().unwrap().contains("locked until"),
        "{locked:?}"
    );
    let right = problem(anon.login("anna", "pw", "phone").await);
    assert_eq!(right.status, 429, "not even the right password while locked");
    assert_eq!(
        f.anna.phone.me().await.unwrap().username,
        "anna",
        "her phone keeps working"
    );
    // Unknown usernames lock the same way: the lockout does not tell who exists.
    for _ in 0..5 {
        let _ = anon.login("nobody", "nope", "phone").await;
    }
    assert_eq!(problem(anon.login("nobody", "nope", "phone").await).status, 429);
    app.clock.advance(chrono::Duration::minutes(16));
    anon.login("anna", "pw", "phone").await.unwrap();
    // A success forgets the failures: four more wrong ones do not lock again.
    for _ in 0..4 {
        assert_eq!(problem(anon.login("anna", "nope", "phone").await).status, 401);
    }
    anon.login("anna", "pw", "phone").await.unwrap();
}

async fn an_access_request_exports_my_data_and_nobody_elses(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    let v = f
        .anna
        .phone
        .start_visit(&with_partner(
            start(VisitKind::HomeVisitUnannounced, f.home.id.0, &[]),
            f.bo.id(),
        ))
        .await
        .unwrap();
    let at = |lat: f64| EventRequest {
        client_time: None,
        position: Some(LatLon { lat, lon: 10.1405 }),
    };
    f.bo.phone.check_in(v.id, &at(56.1111)).await.unwrap();
    f.anna.phone.check_in(v.id, &at(56.1592)).await.unwrap();
    f.anna.phone.check_out(v.id, &pin(DURESS_PIN)).await.unwrap();
    f.anna.phone.report_status(37, Some(false)).await.unwrap();
    f.bo.phone.report_status(81, Some(true)).await.unwrap();
    let export = f.anna.phone.export().await.unwrap();
    let text = export.to_string();
    assert_eq!(export["person"]["username"], "anna");
    assert_eq!(export["visits"][0]["visit"]["id"], v.id.to_string());
    let mine = export["visits"][0]["my_events"].as_array().unwrap();
    assert!(
        mine.iter().all(|e| e["person"] == f.anna.id().to_string()),
        "{mine:?}"
    );
    assert!(text.contains("56.1592"), "her own position is hers to see");
    assert!(!text.contains("56.1111"), "Bo's position is Bo's");
    assert!(!text.contains("hash"), "no password, PIN or token hashes: {text}");
    assert_eq!(
        export["alarms"],
        serde_json::json!([]),
        "an open duress alarm stays hidden"
    );
    assert_eq!(export["shifts"].as_array().unwrap().len(), 1);
    assert!(!export["devices"].as_array().unwrap().is_empty());
    assert_eq!(
        (
            &export["phone_status"]["battery_pct"],
            &export["phone_status"]["charging"]
        ),
        (&serde_json::json!(37), &serde_json::json!(false)),
        "her phone's battery, not Bo's"
    );
    f.anna.phone.end_shift().await.unwrap();
    let ended = f.anna.phone.export().await.unwrap();
    assert_eq!(
        ended["phone_status"],
        serde_json::Value::Null,
        "forgotten with the shift"
    );
}

async fn an_expired_or_revoked_token_is_refused(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let f = app.fixture().await;
    let devices = app.engine.store.devices(f.bo.person.id).await.unwrap();
    problem(f.anna.phone.revoke_device(devices[0].id).await);
    f.bo.phone.revoke_device(devices[0].id).await.unwrap();
    assert_eq!(problem(f.bo.phone.me().await).status, 401);
    app.clock.advance(Duration::days(91));
    assert_eq!(
        problem(f.anna.phone.me().await).status,
        401,
        "tokens expire after 90 days"
    );
}

async fn shifts_start_once_and_colleagues_on_shift_are_listed(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let f = app.fixture().await;
    f.anna.phone.start_shift(None).await.unwrap();
    assert_eq!(
        problem(f.anna.phone.start_shift(None).await).reason.as_deref(),
        Some("already-on-shift")
    );
    f.bo.phone.start_shift(Some(f.team.id.0)).await.unwrap();
    f.olga.phone.start_shift(None).await.unwrap();
    let seen: Vec<String> = f
        .anna
        .phone
        .colleagues()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.display_name)
        .collect();
    assert_eq!(
        seen,
        vec!["bo"],
        "only others in my teams, not me and not another team"
    );
    f.bo.phone.end_shift().await.unwrap();
    assert!(f.anna.phone.colleagues().await.unwrap().is_empty());
    assert_eq!(
        problem(f.bo.phone.end_shift().await).reason.as_deref(),
        Some("not-on-shift")
    );
}

async fn nearby_places_come_nearest_first_with_their_active_warnings(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let f = app.fixture().await;
    // Standing in Trøjborg, near the home with a dog.
    let near = f.anna.phone.places_near(56.1716, 10.2110, 5000.0).await.unwrap();
    let names: Vec<&str> = near.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names[0], "Hjem T-04");
    assert!(names.contains(&"Mølleparken"));
    assert!(
        !names.contains(&"Kongens Have"),
        "another team's place is not listed"
    );
    assert_eq!(near[0].warnings.len(), 1);
    assert!(near.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
    app.warn(&f.park, makker_domain::place::WarningKind::Threat, 1)
        .await;
    let park = |list: Vec<NearbyPlaceView>| list.into_iter().find(|p| p.name == "Mølleparken").unwrap();
    assert_eq!(
        park(f.anna.phone.places_near(56.1563, 10.2038, 10.0).await.unwrap())
            .warnings
            .len(),
        1
    );
    app.clock.advance(Duration::days(2));
    let later = park(f.anna.phone.places_near(56.1563, 10.2038, 10.0).await.unwrap());
    assert!(later.warnings.is_empty(), "an expired warning is not shown");
}

async fn a_pair_visit_runs_from_start_to_end(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let req = with_partner(
        start(VisitKind::StreetContact, f.park.id.0, &["unknown_citizen"]),
        f.bo.id(),
    );
    let v = f.anna.phone.start_visit(&req).await.unwrap();
    assert_eq!(v.state, "active");
    assert_eq!(v.participants.len(), 2);
    assert_eq!(
        f.bo.phone.active_visit().await.unwrap().map(|v| v.id),
        Some(v.id),
        "the partner sees it"
    );
    app.clock.advance(Duration::minutes(10));
    let checked = f.bo.phone.check_in(v.id, &EventRequest::default()).await.unwrap();
    assert_eq!(checked.last_check_in_at, app.engine.now());
    let extended = f
        .anna
        .phone
        .extend(
            v.id,
            &ExtendRequest {
                minutes: 15,
                client_time: None,
                position: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(extended.planned_end, v.planned_end + Duration::minutes(15));
    let over = f
        .anna
        .phone
        .extend(
            v.id,
            &ExtendRequest {
                minutes: 500,
                client_time: None,
                position: None,
            },
        )
        .await;
    assert_eq!(problem(over).reason.as_deref(), Some("too-long"));
    // Bo leaves early: Anna is alone and the two-person break is recorded.
    let after_bo = f.bo.phone.check_out(v.id, &pin(PIN)).await.unwrap();
    assert_eq!(after_bo.state, "active");
    let log = events(&app, v.id).await;
    let bo = PersonId(f.bo.id());
    let anna = PersonId(f.anna.id());
    assert!(
        log.iter()
            .any(|e| matches!(e, Effect::TwoPersonBreak { left, remaining, .. }
            if *left == bo && *remaining == vec![anna])),
        "{log:?}"
    );
    assert_eq!(
        problem(f.bo.phone.check_in(v.id, &EventRequest::default()).await)
            .reason
            .as_deref(),
        Some("already-checked-out")
    );
    let ended = f.anna.phone.check_out(v.id, &pin(PIN)).await.unwrap();
    assert_eq!(ended.state, "ended");
    assert_eq!(events(&app, v.id).await.last(), Some(&Effect::Ended));
    assert_eq!(
        problem(f.anna.phone.check_in(v.id, &EventRequest::default()).await)
            .reason
            .as_deref(),
        Some("visit-ended")
    );
    assert!(f.anna.phone.active_visit().await.unwrap().is_none());
}

async fn the_policy_refuses_in_the_workers_language(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    let lone = start(VisitKind::HomeVisitUnannounced, f.home.id.0, &[]);
    let p = problem(f.anna.phone.start_visit(&lone).await);
    assert_eq!(
        (p.status, p.type_.as_str()),
        (422, "urn:makker:problem:too-few-participants")
    );
    assert_eq!(
        p.detail.as_deref(),
        Some("Dette besøg kræver mindst 2 medarbejdere (risiko lav). Tag en makker med.")
    );
    let sv = problem(f.anna.phone.with_lang("sv-SE").start_visit(&lone).await);
    assert_eq!(
        sv.detail.as_deref(),
        Some("Detta besök kräver minst 2 medarbetare (risk låg). Ta med en kollega.")
    );
    assert!(
        f.anna.phone.active_visit().await.unwrap().is_none(),
        "a refused start changes nothing"
    );
    let mut no_assessment = start(VisitKind::DropIn, f.drop_in.id.0, &[]);
    no_assessment.answers = None;
    assert_eq!(
        problem(f.anna.phone.start_visit(&no_assessment).await)
            .reason
            .as_deref(),
        Some("assessment-missing")
    );
}

async fn a_lone_home_visit_tells_the_named_colleague_on_leaving(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let mut req = start(VisitKind::HomeVisitAnnounced, f.home.id.0, &[]);
    let p = problem(f.anna.phone.start_visit(&req).await);
    assert_eq!(p.reason.as_deref(), Some("colleague-to-tell-required"));
    req.tell_colleague_id = Some(f.carl.id());
    let v = f.anna.phone.start_visit(&req).await.unwrap();
    f.anna.phone.check_out(v.id, &pin(PIN)).await.unwrap();
    let told = Effect::TellColleague {
        colleague: PersonId(f.carl.id()),
        worker: PersonId(f.anna.id()),
    };
    assert!(events(&app, v.id).await.contains(&told));
}

async fn a_place_warning_raises_the_risk_of_a_visit(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    let mut req = start(VisitKind::HomeVisitAnnounced, f.dog_home.id.0, &[]);
    req.tell_colleague_id = Some(f.carl.id());
    let p = problem(f.anna.phone.start_visit(&req).await);
    assert_eq!(
        p.reason.as_deref(),
        Some("lone-approval-required"),
        "the dog makes it medium risk"
    );
    let v = f
        .anna
        .phone
        .start_visit(&with_partner(req, f.bo.id()))
        .await
        .unwrap();
    assert_eq!(v.risk_level, makker_domain::risk::RiskLevel::Medium);
    assert_eq!(v.risk_points, 3);
}

async fn a_supervisor_approval_allows_one_lone_visit(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    let mut req = start(VisitKind::HomeVisitAnnounced, f.home.id.0, &["unknown_citizen"]);
    req.tell_colleague_id = Some(f.carl.id());
    assert_eq!(
        problem(f.anna.phone.start_visit(&req).await).reason.as_deref(),
        Some("lone-approval-required")
    );
    assert_eq!(
        problem(f.bo.phone.approve_lone(f.anna.id(), f.home.id.0).await).status,
        403,
        "a worker cannot approve"
    );
    let approval = f
        .sofie
        .phone
        .approve_lone(f.anna.id(), f.home.id.0)
        .await
        .unwrap();
    // Bo cannot use Anna's approval.
    let mut bos = req.clone();
    bos.lone_approval_id = Some(approval.id);
    assert_eq!(
        problem(f.bo.phone.start_visit(&bos).await).reason.as_deref(),
        Some("lone-approval-required")
    );
    req.lone_approval_id = Some(approval.id);
    let v = f.anna.phone.start_visit(&req).await.unwrap();
    f.anna.phone.check_out(v.id, &pin(PIN)).await.unwrap();
    assert_eq!(
        problem(f.anna.phone.start_visit(&req).await).reason.as_deref(),
        Some("lone-approval-required"),
        "used once"
    );
}

async fn a_recent_assessment_of_the_place_is_reused_within_the_window(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &["intoxicated"]))
        .await
        .unwrap();
    f.anna.phone.check_out(v.id, &pin(PIN)).await.unwrap();
    app.clock.advance(Duration::minutes(60));
    let mut reuse = start(VisitKind::DropIn, f.drop_in.id.0, &[]);
    reuse.answers = None;
    let again = f.bo.phone.start_visit(&reuse).await.unwrap();
    assert_eq!(again.risk_points, 2, "the colleague's answers are scored again");
    f.bo.phone.check_out(again.id, &pin(PIN)).await.unwrap();
    app.clock.advance(Duration::minutes(61));
    assert_eq!(
        problem(f.bo.phone.start_visit(&reuse).await).reason.as_deref(),
        Some("assessment-missing")
    );
}

async fn a_duress_check_out_answers_like_a_normal_one_and_raises_a_silent_alarm(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let a = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
    let b =
        f.bo.phone
            .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
            .await
            .unwrap();
    let wrong = problem(f.anna.phone.check_out(a.id, &pin("0000")).await);
    assert_eq!(wrong.reason.as_deref(), Some("wrong-pin"));
    let normal = f.anna.phone.check_out(a.id, &pin(PIN)).await.unwrap();
    let duress = f.bo.phone.check_out(b.id, &pin(DURESS_PIN)).await.unwrap();
    // Same shape and state: nothing on the phone tells them apart.
    assert_eq!(
        (normal.state.as_str(), normal.ended_at),
        (duress.state.as_str(), duress.ended_at)
    );
    assert!(
        app.engine
            .store
            .alarms_of(PersonId(f.anna.id()))
            .await
            .unwrap()
            .is_empty()
    );
    let alarms = app.engine.store.alarms_of(PersonId(f.bo.id())).await.unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(
        (alarms[0].kind, alarms[0].state),
        (AlarmKind::Duress, AlarmState::Open)
    );
}

async fn a_worker_is_in_at_most_one_active_visit(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    f.anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
    let again = problem(
        f.anna
            .phone
            .start_visit(&start(VisitKind::Park, f.park.id.0, &[]))
            .await,
    );
    assert_eq!(
        (again.status, again.reason.as_deref()),
        (409, Some("already-in-visit"))
    );
    let with_busy_partner = with_partner(start(VisitKind::Park, f.park.id.0, &[]), f.anna.id());
    assert_eq!(
        problem(f.bo.phone.start_visit(&with_busy_partner).await)
            .reason
            .as_deref(),
        Some("already-in-visit")
    );
    assert!(f.bo.phone.active_visit().await.unwrap().is_none());
    assert_eq!(
        problem(f.anna.phone.end_shift().await).reason.as_deref(),
        Some("already-in-visit")
    );
}

async fn a_partner_joins_and_the_observer_decides_to_leave(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::Park, f.park.id.0, &[]))
        .await
        .unwrap();
    let join = |role| JoinRequest {
        role,
        client_time: None,
        position: None,
    };
    assert_eq!(
        problem(f.bo.phone.join(v.id, &join(ParticipantRole::Talker)).await)
            .reason
            .as_deref(),
        Some("one-talker")
    );
    assert_eq!(
        problem(f.olga.phone.join(v.id, &join(ParticipantRole::Observer)).await).status,
        404,
        "another team's visit"
    );
    f.bo.phone
        .join(v.id, &join(ParticipantRole::Observer))
        .await
        .unwrap();
    assert_eq!(
        problem(f.anna.phone.withdraw(v.id, &EventRequest::default()).await)
            .reason
            .as_deref(),
        Some("only-observer-withdraws")
    );
    let ended = f.bo.phone.withdraw(v.id, &EventRequest::default()).await.unwrap();
    assert_eq!(ended.state, "ended");
    assert!(events(&app, v.id).await.contains(&Effect::Withdrawn {
        by: PersonId(f.bo.id())
    }));
}

async fn offline_events_keep_the_phones_time_within_bounds(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(20));
    let now = app.engine.now();
    // Queued offline: the second check-in happened first on the phone.
    let at = |min: i64| EventRequest {
        client_time: Some(now - Duration::minutes(min)),
        position: Some(LatLon {
            lat: 56.1478,
            lon: 10.2045,
        }),
    };
    f.anna.phone.check_in(v.id, &at(5)).await.unwrap();
    f.anna.phone.check_in(v.id, &at(15)).await.unwrap();
    let log = app.engine.store.visit_events(VisitId(v.id)).await.unwrap();
    let times: Vec<_> = log
        .iter()
        .filter(|e| matches!(e.effect, Effect::CheckedIn { .. }))
        .map(|e| e.occurred_at)
        .collect();
    assert_eq!(
        times,
        vec![now - Duration::minutes(15), now - Duration::minutes(5)],
        "ordered by the phone's time"
    );
    assert!(log.iter().all(|e| e.received_at <= now));
    let too_old = EventRequest {
        client_time: Some(now - Duration::days(3)),
        position: None,
    };
    assert_eq!(
        problem(f.anna.phone.check_in(v.id, &too_old).await).type_,
        "urn:makker:problem:clock-skew"
    );
    let future = EventRequest {
        client_time: Some(now + Duration::hours(2)),
        position: None,
    };
    assert_eq!(
        problem(f.anna.phone.check_in(v.id, &future).await).type_,
        "urn:makker:problem:clock-skew"
    );
    assert_eq!(
        app.engine.store.visit_events(VisitId(v.id)).await.unwrap().len(),
        log.len(),
        "refused events change nothing"
    );
}

async fn a_replayed_request_gets_the_first_answer_and_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let req = start(VisitKind::DropIn, f.drop_in.id.0, &[]);
    let first: VisitView = f
        .anna
        .phone
        .post_idempotent("/api/v1/visits", "start-1", &req)
        .await
        .unwrap();
    let again: VisitView = f
        .anna
        .phone
        .post_idempotent("/api/v1/visits", "start-1", &req)
        .await
        .unwrap();
    assert_eq!(first, again);
    let path = format!("/api/v1/visits/{}/check-in", first.id);
    let body = EventRequest::default();
    f.anna
        .phone
        .post_idempotent::<_, VisitView>(&path, "ci-1", &body)
        .await
        .unwrap();
    let count = app
        .engine
        .store
        .visit_events(VisitId(first.id))
        .await
        .unwrap()
        .len();
    app.clock.advance(Duration::minutes(3));
    let replay = f
        .anna
        .phone
        .request(Method::POST, &path)
        .header(IDEMPOTENCY_KEY, "ci-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(
        app.engine
            .store
            .visit_events(VisitId(first.id))
            .await
            .unwrap()
            .len(),
        count,
        "no second check-in"
    );
    let other = EventRequest {
        position: Some(LatLon { lat: 56.0, lon: 10.0 }),
        client_time: None,
    };
    let reused = f
        .anna
        .phone
        .post_idempotent::<_, VisitView>(&path, "ci-1", &other)
        .await;
    assert_eq!(problem(reused).type_, "urn:makker:problem:idempotency-key-reused");
    // Keys are per person: Bo's same key is his own.
    let bos =
        f.bo.phone
            .post_idempotent::<_, VisitView>("/api/v1/visits", "start-1", &req)
            .await
            .unwrap();
    assert_ne!(bos.id, first.id);
}

async fn sos_raises_an_alarm_now(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
    let alarm = f
        .anna
        .phone
        .sos(&EventRequest {
            client_time: None,
            position: Some(LatLon {
                lat: 56.1478,
                lon: 10.2045,
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        (alarm.kind.as_str(), alarm.state.as_str(), alarm.visit_id),
        ("sos", "open", Some(v.id))
    );
    let stored = app.engine.store.alarms_of(PersonId(f.anna.id())).await.unwrap();
    assert_eq!(stored[0].raised_at, app.engine.now());
    assert!(stored[0].position.is_some());
}

async fn someone_elses_visit_is_not_theirs_to_change(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    let v = f
        .anna
        .phone
        .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
    let p = problem(f.bo.phone.check_in(v.id, &EventRequest::default()).await);
    assert_eq!((p.status, p.reason.as_deref()), (403, Some("not-participant")));
    assert_eq!(
        problem(f.olga.phone.visit(v.id).await).status,
        404,
        "another team does not even see it"
    );
    assert_eq!(
        problem(
            f.olga
                .phone
                .start_visit(&start(VisitKind::DropIn, f.drop_in.id.0, &[]))
                .await
        )
        .status,
        404
    );
}

both! {
    signing_in => signing_in_gives_a_token_that_works_until_signed_out,
    login_lockout => too_many_wrong_passwords_lock_the_username_for_a_while,
    access_request => an_access_request_exports_my_data_and_nobody_elses,
    expired_and_revoked_tokens => an_expired_or_revoked_token_is_refused,
    shifts => shifts_start_once_and_colleagues_on_shift_are_listed,
    nearby_places => nearby_places_come_nearest_first_with_their_active_warnings,
    pair_visit_lifecycle => a_pair_visit_runs_from_start_to_end,
    policy_refusals => the_policy_refuses_in_the_workers_language,
    lone_home_visit_tells_colleague => a_lone_home_visit_tells_the_named_colleague_on_leaving,
    place_warning_raises_risk => a_place_warning_raises_the_risk_of_a_visit,
    supervisor_approval => a_supervisor_approval_allows_one_lone_visit,
    assessment_reuse => a_recent_assessment_of_the_place_is_reused_within_the_window,
    duress => a_duress_check_out_answers_like_a_normal_one_and_raises_a_silent_alarm,
    one_active_visit => a_worker_is_in_at_most_one_active_visit,
    join_and_withdraw => a_partner_joins_and_the_observer_decides_to_leave,
    offline_times => offline_events_keep_the_phones_time_within_bounds,
    idempotency => a_replayed_request_gets_the_first_answer_and_changes_nothing,
    sos => sos_raises_an_alarm_now,
    other_peoples_visits => someone_elses_visit_is_not_theirs_to_change,
}
