//! The authorisation matrix: every operation of `schemas/openapi.json` is listed here with who
//! may call it, and called as nobody, as another team, and as a worker where it is for
//! supervisors — so a new endpoint cannot escape the check. Each refused call changes nothing;
//! the same call by the rightful caller succeeds, which shows the refusal was the rule and not
//! a bad request.

use std::sync::Arc;

use makker_domain::Role;
use makker_mobile_api::EventRequest;
use makker_store::Store;
use makker_tests::app::{Member, PIN, TestApp, ready};
use makker_tests::both;
use serde_json::{Value, json};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Anyone signed in, about themselves.
    SignedIn,
    /// Supervisors, managers and admins, for their teams.
    Supervisor,
    /// The visit in the path: its participants (a colleague may join it).
    Visit,
    /// The alarm in the path: the alarm's team.
    Alarm,
    /// The device in the path: its owner.
    Device,
    /// The team in the path: its supervisors, managers and admins (workers are refused).
    TeamReader,
    /// The team in the path: its managers and admins, who plan (supervisors are refused too).
    TeamPlanner,
    /// The incident in the path: its team's supervisors, managers and admins.
    Incident,
    /// The ask for a lone-visit approval in the path: its worker, and its team's supervisors.
    Ask,
}

use Access::*;

const MATRIX: &[(&str, &str, Access)] = &[
    ("get", "/api/v1/alarms", SignedIn),
    ("post", "/api/v1/alarms/{id}/acknowledge", Alarm),
    ("get", "/api/v1/alarms/{id}/deliveries", Alarm),
    ("post", "/api/v1/alarms/{id}/resolve", Alarm),
    ("get", "/api/v1/assessment/questions", SignedIn),
    ("post", "/api/v1/auth/login", Public),
    ("post", "/api/v1/auth/logout", SignedIn),
    ("post", "/api/v1/auth/session", Public),
    ("get", "/api/v1/auth/session", SignedIn),
    ("delete", "/api/v1/auth/session", SignedIn),
    ("get", "/api/v1/colleagues", SignedIn),
    ("delete", "/api/v1/devices/{id}", Device),
    ("post", "/api/v1/drills", Supervisor),
    ("get", "/api/v1/live", Supervisor),
    ("post", "/api/v1/lone-approvals", Supervisor),
    ("post", "/api/v1/lone-approvals/requests", SignedIn),
    ("get", "/api/v1/lone-approvals/requests/{id}", Ask),
    ("post", "/api/v1/lone-approvals/requests/{id}/decline", Ask),
    ("get", "/api/v1/me", SignedIn),
    ("get", "/api/v1/me/location-views", SignedIn),
    ("get", "/api/v1/me/export", SignedIn),
    ("get", "/api/v1/places/near", SignedIn),
    ("get", "/api/v1/teams/{team_id}/places", TeamReader),
    ("get", "/api/v1/push/key", SignedIn),
    ("post", "/api/v1/push/subscriptions", SignedIn),
    ("post", "/api/v1/push/unsubscribe", SignedIn),
    ("post", "/api/v1/shift/end", SignedIn),
    ("post", "/api/v1/shift/start", SignedIn),
    ("post", "/api/v1/shift/status", SignedIn),
    ("post", "/api/v1/sos", SignedIn),
    ("post", "/api/v1/visits", SignedIn),
    ("get", "/api/v1/visits/active", SignedIn),
    ("get", "/api/v1/visits/{id}", Visit),
    ("post", "/api/v1/visits/{id}/check-in", Visit),
    ("post", "/api/v1/visits/{id}/check-out", Visit),
    ("post", "/api/v1/visits/{id}/extend", Visit),
    ("post", "/api/v1/visits/{id}/heartbeat", Visit),
    ("post", "/api/v1/visits/{id}/join", Visit),
    ("post", "/api/v1/visits/{id}/withdraw", Visit),
    // Routes, areas, coverage and incidents (issue 4).
    ("get", "/api/v1/teams/{team_id}/areas", TeamReader),
    ("post", "/api/v1/teams/{team_id}/areas/import", TeamPlanner),
    ("delete", "/api/v1/teams/{team_id}/areas/{area_id}", TeamPlanner),
    ("get", "/api/v1/teams/{team_id}/routes", TeamReader),
    ("post", "/api/v1/teams/{team_id}/routes", TeamPlanner),
    ("put", "/api/v1/teams/{team_id}/routes/{route_id}", TeamPlanner),
    ("get", "/api/v1/teams/{team_id}/routes/export", TeamReader),
    ("post", "/api/v1/teams/{team_id}/routes/import", TeamPlanner),
    ("get", "/api/v1/teams/{team_id}/coverage", TeamReader),
    ("get", "/api/v1/teams/{team_id}/coverage/compare", TeamReader),
    ("get", "/api/v1/teams/{team_id}/coverage/map", TeamReader),
    ("get", "/api/v1/teams/{team_id}/coverage/csv", TeamReader),
    ("get", "/api/v1/teams/{team_id}/incidents", TeamReader),
    ("post", "/api/v1/incidents", SignedIn),
    ("post", "/api/v1/incidents/{id}/done", Incident),
    ("post", "/api/v1/incidents/{id}/absence", Incident),
];

#[test]
fn every_documented_operation_is_in_the_matrix() {
    let doc: Value = serde_json::to_value(makker_http::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut listed: Vec<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    listed.sort();
    assert_eq!(
        documented, listed,
        "add the new operation to MATRIX with who may call it"
    );
}

/// A valid body for each operation, so that a refusal is about who calls, not what is sent.
fn body(path: &str, f: &Ctx) -> Value {
    match path {
        p if p.ends_with("/resolve") => json!({"outcome": "safe", "note": "ok"}),
        p if p.ends_with("/check-out") => json!({"pin": PIN}),
        p if p.ends_with("/extend") => json!({"minutes": 10}),
        p if p.ends_with("/join") => json!({"role": "observer"}),
        "/api/v1/auth/login" => json!({"username": "anna", "password": "pw", "device_name": "x"}),
        "/api/v1/auth/session" => json!({"username": "anna", "password": "pw"}),
        "/api/v1/drills" => json!({"worker_id": f.anna}),
        "/api/v1/lone-approvals" => json!({"worker_id": f.anna, "place_id": f.place}),
        "/api/v1/lone-approvals/requests" => json!({"place_id": f.place}),
        "/api/v1/push/unsubscribe" => json!({"endpoint": "https://push.example/none"}),
        "/api/v1/shift/status" => json!({"battery_pct": 57, "charging": false}),
        p if p.ends_with("/areas/import") => districts(),
        p if p.ends_with("/routes/import") => {
            json!({"type": "FeatureCollection", "features": [{"type": "Feature",
            "geometry": null, "properties": {"route": "Aften", "valid_from": "2026-11-23", "weekday": 3,
            "opens": "18:00", "closes": "19:00", "place_id": f.place}}]})
        }
        p if p.contains("/routes") => json!({"name": "Midtby", "valid_from": "2026-11-23",
            "stops": [{"place_id": f.place, "weekday": 1, "opens": "14:00", "closes": "15:00"}]}),
        "/api/v1/incidents" => json!({"kind": "near_miss", "description": "Kanyle", "place_id": f.place}),
        p if p.ends_with("/done") => json!({"duty": "police_report"}),
        p if p.ends_with("/absence") => json!({"from": f.now}),
        _ => json!({}),
    }
}

/// Ids in our team for the paths.
struct Ctx {
    visit: uuid::Uuid,
    alarm: uuid::Uuid,
    device: uuid::Uuid,
    anna: uuid::Uuid,
    place: uuid::Uuid,
    team: uuid::Uuid,
    area: uuid::Uuid,
    route: uuid::Uuid,
    incident: uuid::Uuid,
    ask: uuid::Uuid,
    now: chrono::DateTime<chrono::Utc>,
}

/// Two districts of Aarhus as GeoJSON.
fn districts() -> Value {
    json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Midtbyen"}, "geometry": {"type": "Polygon",
            "coordinates": [[[10.19, 56.14], [10.22, 56.14], [10.22, 56.165], [10.19, 56.165], [10.19, 56.14]]]}},
        {"type": "Feature", "properties": {"name": "Gellerup"}, "geometry": {"type": "Polygon",
            "coordinates": [[[10.13, 56.15], [10.15, 56.15], [10.15, 56.165], [10.13, 56.165], [10.13, 56.15]]]}}
    ]})
}

fn concrete(path: &str, access: Access, c: &Ctx) -> String {
    let id = match access {
        Visit => c.visit,
        Alarm => c.alarm,
        Device => c.device,
        Incident => c.incident,
        Ask => c.ask,
        TeamReader | TeamPlanner => return team_path(path, c),
        _ => return path.to_owned(),
    };
    path.replace("{id}", &id.to_string())
}

/// A team's path with its ids, and the query a comparison needs.
fn team_path(path: &str, c: &Ctx) -> String {
    let p = path
        .replace("{team_id}", &c.team.to_string())
        .replace("{area_id}", &c.area.to_string())
        .replace("{route_id}", &c.route.to_string());
    if p.ends_with("/coverage/compare") {
        format!("{p}?from=2026-11-01&to=2026-11-22&vs_from=2026-10-01&vs_to=2026-10-22")
    } else {
        p
    }
}

/// Calls an operation; answers the status (the body is not read: `/live` streams forever).
async fn call(app: &TestApp, token: Option<&str>, method: &str, path: &str, body: &Value) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}{path}", app.base);
    let url = if path == "/api/v1/places/near" {
        format!("{url}?lat=56.15&lon=10.2&radius_m=500")
    } else {
        url
    };
    let http = reqwest::Client::new();
    let mut req = match method {
        "get" => http.get(url),
        "delete" => http.delete(url),
        "put" => http.put(url).json(body),
        _ => http.post(url).json(body),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn token(app: &TestApp, m: &Member) -> String {
    app.engine.issue_token(m.person.id, "matrix").await.unwrap().0
}

/// Anna's drop-in visit, Carl's SOS and a second phone of Anna's, all in Aarhus.
async fn ours(app: &TestApp, f: &makker_tests::app::Fixture) -> Ctx {
    let visit = f.anna_at_the_drop_in().await.id;
    let alarm = f.carl.phone.sos(&EventRequest::default()).await.unwrap().id;
    let (_, device) = app
        .engine
        .issue_token(f.anna.person.id, "second phone")
        .await
        .unwrap();
    let lars = &f.lars.person;
    let areas = app
        .engine
        .import_areas(lars, f.team.id, &districts().to_string())
        .await
        .unwrap();
    let stop = makker_domain::route::Stop {
        place: f.drop_in.id,
        weekday: chrono::Weekday::Mon,
        opens: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        closes: chrono::NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
    };
    let route = makker_engine::coverage::RouteInput {
        name: "Morgen".into(),
        valid_from: app.engine.now().date_naive(),
        valid_until: None,
        stops: vec![stop],
    };
    let route = app.engine.save_route(lars, f.team.id, None, route).await.unwrap();
    let threat = makker_engine::coverage::IncidentInput {
        place: Some(f.drop_in.id),
        visit: None,
        report: makker_domain::incident::Report {
            kind: makker_domain::incident::IncidentKind::Threat,
            description: "Truede med kniv".into(),
            occurred_at: app.engine.now(),
            absence_from: None,
            police_report: None,
        },
        warning: None,
    };
    let incident = app.engine.report_incident(&f.sofie.person, threat).await.unwrap();
    let ask = makker_mobile_api::LoneApprovalAsk {
        place_id: f.home.id.0,
        kind: None,
        answers: None,
    };
    let ask = f.bo.phone.ask_lone_approval(&ask).await.unwrap().request_id;
    Ctx {
        visit,
        alarm,
        device: device.id,
        anna: f.anna.id(),
        place: f.drop_in.id.0,
        team: f.team.id.0,
        area: areas[0].id.0,
        route: route.id.0,
        incident: incident.id.0,
        ask,
        now: app.engine.now(),
    }
}

async fn nobody_without_a_token_gets_past_the_door(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let c = ours(&app, &f).await;
    for (method, path, access) in MATRIX {
        let status = call(&app, None, method, &concrete(path, *access, &c), &body(path, &c)).await;
        let expected = if *access == Public { 200 } else { 401 };
        assert_eq!(status, expected, "{method} {path} without a token");
    }
}

async fn another_team_reaches_nothing_of_ours_and_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let c = ours(&app, &f).await;
    let vejle = app.team("Gadeteam Vejle").await;
    let otto = app.member("otto", Role::Supervisor, &vejle).await;
    otto.phone.start_shift(None).await.unwrap();
    f.olga.phone.start_shift(None).await.unwrap();
    let before = app
        .engine
        .store
        .visit(makker_domain::VisitId(c.visit))
        .await
        .unwrap();
    let phones = |d: Vec<makker_store::Device>| d.iter().filter(|d| d.revoked_at.is_none()).count();
    let anna_phones = phones(app.engine.store.devices(f.anna.person.id).await.unwrap());
    let plans_before = plans(&app, &f, &c).await;
    for stranger in [&otto, &f.olga] {
        let t = token(&app, stranger).await;
        let in_path = |a: Access| {
            matches!(
                a,
                Visit | Alarm | Device | TeamReader | TeamPlanner | Incident | Ask
            )
        };
        for (method, path, access) in MATRIX.iter().filter(|m| in_path(m.2)) {
            let status = call(
                &app,
                Some(&t),
                method,
                &concrete(path, *access, &c),
                &body(path, &c),
            )
            .await;
            assert!(
                status == 403 || status == 404,
                "{method} {path} as {} answered {status}",
                stranger.person.username
            );
        }
    }
    let after = app
        .engine
        .store
        .visit(makker_domain::VisitId(c.visit))
        .await
        .unwrap();
    assert_eq!(after, before, "the visit is untouched");
    let alarm = app
        .engine
        .store
        .alarm(makker_domain::AlarmId(c.alarm))
        .await
        .unwrap();
    assert_eq!(alarm.value.state, makker_domain::alarm::AlarmState::Open);
    assert_eq!(
        phones(app.engine.store.devices(f.anna.person.id).await.unwrap()),
        anna_phones,
        "Anna's phones keep their tokens"
    );
    assert_eq!(
        plans(&app, &f, &c).await,
        plans_before,
        "areas, routes and incidents are untouched"
    );

    // The same calls by the rightful callers succeed: the bodies were fine.
    let (anna, bo, sofie) = (
        token(&app, &f.anna).await,
        token(&app, &f.bo).await,
        token(&app, &f.sofie).await,
    );
    let rightful: [(&str, &str, &String); 13] = [
        ("get", "/api/v1/visits/{id}", &anna),
        ("post", "/api/v1/visits/{id}/heartbeat", &anna),
        ("post", "/api/v1/visits/{id}/check-in", &anna),
        ("post", "/api/v1/visits/{id}/extend", &anna),
        ("post", "/api/v1/visits/{id}/join", &bo),
        ("post", "/api/v1/visits/{id}/check-out", &anna),
        ("post", "/api/v1/visits/{id}/withdraw", &bo),
        ("get", "/api/v1/alarms/{id}/deliveries", &sofie),
        ("post", "/api/v1/alarms/{id}/acknowledge", &sofie),
        ("post", "/api/v1/alarms/{id}/resolve", &sofie),
        ("delete", "/api/v1/devices/{id}", &anna),
        ("get", "/api/v1/lone-approvals/requests/{id}", &bo),
        ("post", "/api/v1/lone-approvals/requests/{id}/decline", &sofie),
    ];
    for (method, path, t) in rightful {
        let access = MATRIX.iter().find(|m| m.0 == method && m.1 == path).unwrap().2;
        let status = call(
            &app,
            Some(t),
            method,
            &concrete(path, access, &c),
            &body(path, &c),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} by its rightful caller: {status}"
        );
    }
}

async fn workers_cannot_use_what_is_for_supervisors(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let c = ours(&app, &f).await;
    let (anna, sofie) = (token(&app, &f.anna).await, token(&app, &f.sofie).await);
    let supervised = MATRIX.iter().filter(|m| {
        matches!(m.2, Supervisor | TeamReader | Incident)
            || m.1.ends_with("/deliveries")
            || m.1.ends_with("/decline")
    });
    for (method, path, access) in supervised {
        let path = concrete(path, *access, &c);
        let refused = call(&app, Some(&anna), method, &path, &body(&path, &c)).await;
        assert_eq!(refused, 403, "{method} {path} as a worker");
        let allowed = call(&app, Some(&sofie), method, &path, &body(&path, &c)).await;
        assert!(
            (200..300).contains(&allowed),
            "{method} {path} as the supervisor: {allowed}"
        );
    }
}

/// A team's areas, routes and the incident of the fixture, to see that nothing changed.
async fn plans(app: &TestApp, f: &makker_tests::app::Fixture, c: &Ctx) -> String {
    let store = &app.engine.store;
    let areas = store.areas(f.team.id).await.unwrap();
    let routes = store.routes(f.team.id).await.unwrap();
    let incident = store
        .incident(makker_domain::IncidentId(c.incident))
        .await
        .unwrap();
    format!("{areas:?} {routes:?} {incident:?}")
}

async fn only_managers_and_admins_change_plans(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let c = ours(&app, &f).await;
    let admin = app.member("ada", Role::Admin, &f.team).await;
    let (anna, sofie) = (token(&app, &f.anna).await, token(&app, &f.sofie).await);
    let planners = [token(&app, &f.lars).await, token(&app, &admin).await];
    for (method, path, access) in MATRIX.iter().filter(|m| m.2 == TeamPlanner) {
        let path = concrete(path, *access, &c);
        let before = plans(&app, &f, &c).await;
        for t in [&anna, &sofie] {
            assert_eq!(
                call(&app, Some(t), method, &path, &body(&path, &c)).await,
                403,
                "{method} {path}"
            );
        }
        assert_eq!(
            plans(&app, &f, &c).await,
            before,
            "{method} {path} refused changed nothing"
        );
        for t in &planners {
            let allowed = call(&app, Some(t), method, &path, &body(&path, &c)).await;
            let gone = method == &"delete" && allowed == 404 && t == &planners[1];
            assert!(
                (200..300).contains(&allowed) || gone,
                "{method} {path} by a planner: {allowed}"
            );
        }
    }
}

both! {
    planners_only => only_managers_and_admins_change_plans,
    no_token => nobody_without_a_token_gets_past_the_door,
    other_team => another_team_reaches_nothing_of_ours_and_changes_nothing,
    supervisor_only => workers_cannot_use_what_is_for_supervisors,
}
