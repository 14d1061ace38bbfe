//! Routes and coverage for managers, end to end on both databases: areas and routes imported,
//! edited and exported; real visits, alarms and incidents through the API on a manual clock;
//! the coverage report, its map and CSV; who may see what; bad input that changes nothing.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use makker_domain::visit::{ParticipantRole, VisitKind};
use makker_domain::{PlaceId, Role};
use makker_mobile_api::coverage::{CoverageComparison, CoverageReport, IncidentView, RouteView, Tally};
use makker_mobile_api::{CheckOutRequest, EventRequest, PartnerRequest, StartVisitRequest};
use makker_store::Store;
use makker_tests::app::{Fixture, Member, PIN, TestApp, ready, start_request};
use makker_tests::both;
use reqwest::Method;
use serde_json::{Value, json};

/// Aarhus' centre as one district, Gellerup as another (the fixture's home G-17 lies in it).
fn districts() -> Value {
    json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Midtbyen"}, "geometry": {"type": "Polygon",
            "coordinates": [[[10.19, 56.14], [10.22, 56.14], [10.22, 56.165], [10.19, 56.165], [10.19, 56.14]]]}},
        {"type": "Feature", "properties": {"name": "Gellerup"}, "geometry": {"type": "MultiPolygon",
            "coordinates": [[[[10.13, 56.15], [10.15, 56.15], [10.15, 56.165], [10.13, 56.165], [10.13, 56.15]]]]}}
    ]})
}

/// Mondays 14-15 in the park, Tuesdays 10-11 at the drop-in centre (local times).
fn weekly_route(f: &Fixture) -> Value {
    json!({
        "name": "Midtby", "valid_from": "2026-11-23",
        "stops": [
            {"place_id": f.park.id.0, "weekday": 1, "opens": "14:00", "closes": "15:00"},
            {"place_id": f.drop_in.id.0, "weekday": 2, "opens": "10:00", "closes": "11:00"}
        ]
    })
}

async fn call(m: &Member, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut r = m.phone.request(method, path);
    if let Some(b) = body {
        r = r.json(b);
    }
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn team_path(f: &Fixture, rest: &str) -> String {
    format!("/api/v1/teams/{}{rest}", f.team.id.0)
}

/// Lars imports `geojson` as the team's routes.
async fn import_routes(f: &Fixture, geojson: &Value) -> (u16, Value) {
    call(
        &f.lars,
        Method::POST,
        &team_path(f, "/routes/import"),
        Some(geojson),
    )
    .await
}

fn tally(planned: u32, covered: u32, late: u32, missed: u32) -> Tally {
    Tally {
        planned,
        covered,
        late,
        missed,
    }
}

/// A visit of `kind` at `place`, started at `at` and checked out `minutes` later by everyone.
async fn visit(
    app: &TestApp,
    who: &[&Member],
    place: PlaceId,
    at: chrono::DateTime<Utc>,
    minutes: i64,
) -> uuid::Uuid {
    app.clock.set(at);
    let mut req: StartVisitRequest = start_request(VisitKind::DropIn, place.0, &[]);
    for partner in &who[1..] {
        req.partners.push(PartnerRequest {
            person_id: partner.id(),
            role: ParticipantRole::Observer,
        });
    }
    let v = who[0].phone.start_visit(&req).await.unwrap();
    app.clock.set(at + Duration::minutes(minutes));
    for m in who {
        let out = CheckOutRequest {
            pin: Some(PIN.into()),
            ..CheckOutRequest::default()
        };
        m.phone.check_out(v.id, &out).await.unwrap();
    }
    v.id
}

async fn a_manager_plans_a_route_and_reads_its_coverage(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let (status, areas) = call(
        &f.lars,
        Method::POST,
        &team_path(&f, "/areas/import"),
        Some(&districts()),
    )
    .await;
    assert_eq!(status, 200, "{areas}");
    assert_eq!(areas["features"].as_array().unwrap().len(), 2);
    let (status, route) = call(
        &f.lars,
        Method::POST,
        &team_path(&f, "/routes"),
        Some(&weekly_route(&f)),
    )
    .await;
    assert_eq!(status, 201, "{route}");
    let route: RouteView = serde_json::from_value(route).unwrap();
    assert_eq!(route.stops[0].place_name, "Mølleparken");

    // Monday 23 Nov 14:05 local (13:05Z): Anna and Bo in the park for 25 minutes, on time.
    visit(
        &app,
        &[&f.anna, &f.bo],
        f.park.id,
        Utc.with_ymd_and_hms(2026, 11, 23, 13, 5, 0).unwrap(),
        25,
    )
    .await;
    // Tuesday 24 Nov: nobody at the drop-in centre. Monday 30 Nov 14:40 local: Anna, late.
    visit(
        &app,
        &[&f.anna],
        f.park.id,
        Utc.with_ymd_and_hms(2026, 11, 30, 13, 40, 0).unwrap(),
        15,
    )
    .await;
    // An SOS from Carl, acknowledged by Sofie after 8 seconds.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap());
    let alarm = f.carl.phone.sos(&EventRequest::default()).await.unwrap();
    app.clock.advance(Duration::seconds(8));
    f.sofie.phone.acknowledge(alarm.id).await.unwrap();
    // A threat in the park on the 23rd, reported by Anna.
    let threat = json!({"kind": "threat", "description": "Råbte og truede", "place_id": f.park.id.0,
        "occurred_at": "2026-11-23T13:20:00Z"});
    let (status, _) = call(&f.anna, Method::POST, "/api/v1/incidents", Some(&threat)).await;
    assert_eq!(status, 201);

    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap());
    let path = team_path(&f, "/coverage?from=2026-11-23&to=2026-12-01");
    let (status, body) = call(&f.lars, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    let r: CoverageReport = serde_json::from_value(body.clone()).unwrap();
    // Mon 23 covered, Tue 24 missed, Mon 30 late, Tue 1 Dec missed.
    assert_eq!(r.totals, tally(4, 1, 1, 2));
    assert_eq!(
        r.weeks.iter().map(|w| (w.week, w.tally)).collect::<Vec<_>>(),
        vec![(48, tally(2, 1, 0, 1)), (49, tally(2, 0, 1, 1))]
    );
    assert_eq!(r.routes[0].name, "Midtby");
    let midtbyen = r
        .areas
        .iter()
        .find(|a| a.name.as_deref() == Some("Midtbyen"))
        .unwrap();
    assert_eq!(midtbyen.tally, r.totals, "both stops lie in Midtbyen");
    let monday_14 = r.heat.iter().find(|c| (c.weekday, c.hour) == (1, 14)).unwrap();
    assert_eq!((monday_14.tally, monday_14.visits), (tally(2, 1, 1, 0), 2));
    assert_eq!(r.places[0].visits, 2);
    assert_eq!(
        (r.two_person.visits, r.two_person.by_two, r.two_person.met_policy),
        (2, 1, 2)
    );
    assert_eq!((r.alarms.alarms, r.alarms.median_s), (1, Some(8.0)));
    assert_eq!(r.alarms.within_10s_share, Some(1.0));
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].count, 1);
    // The drop-in centre was missed in both of its windows: a gap.
    assert_eq!(r.gaps.len(), 1);
    assert_eq!(r.gaps[0].place_name, "Værestedet");
    // Aggregates only: no worker's id or name anywhere in the report.
    let text = body.to_string();
    for m in [&f.anna, &f.bo, &f.carl, &f.sofie] {
        assert!(
            !text.contains(&m.id().to_string()),
            "{} is named",
            m.person.username
        );
        assert!(
            !text.contains(&m.person.username),
            "{} is named",
            m.person.username
        );
    }

    // The supervisor sees the team's report too; the map and the CSV say the same.
    let (status, _) = call(&f.sofie, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let (status, map) = call(
        &f.lars,
        Method::GET,
        &path.replace("/coverage?", "/coverage/map?"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let features = map["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    let park = features
        .iter()
        .find(|x| x["properties"]["place"] == "Mølleparken")
        .unwrap();
    assert_eq!(park["properties"]["reached_share"], 1.0);
    assert_eq!(park["geometry"]["coordinates"], json!([10.2038, 56.1563]));
    let response = f
        .lars
        .phone
        .request(Method::GET, &path.replace("/coverage?", "/coverage/csv?"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        vec![
            "route,position,place,weekday,opens,closes,planned,covered,late,missed",
            "Midtby,0,Mølleparken,1,14:00,15:00,2,1,1,0",
            "Midtby,1,Værestedet,2,10:00,11:00,2,0,0,2",
        ]
    );

    // Two periods side by side: the first week against the second.
    let compare = team_path(
        &f,
        "/coverage/compare?from=2026-11-23&to=2026-11-29&vs_from=2026-11-30&vs_to=2026-12-06",
    );
    let (status, body) = call(&f.lars, Method::GET, &compare, None).await;
    assert_eq!(status, 200, "{body}");
    let c: CoverageComparison = serde_json::from_value(body).unwrap();
    assert_eq!((c.a.totals, c.b.totals), (tally(2, 1, 0, 1), tally(2, 0, 1, 1)));
}

async fn workers_and_other_teams_see_no_coverage(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let path = team_path(&f, "/coverage");
    assert_eq!(call(&f.anna, Method::GET, &path, None).await.0, 403, "a worker");
    assert_eq!(
        call(&f.anna, Method::GET, &team_path(&f, "/routes"), None)
            .await
            .0,
        403
    );
    let vejle = app.team("Gadeteam Vejle").await;
    let manager = app.member("vera", makker_domain::Role::Manager, &vejle).await;
    assert_eq!(
        call(&manager, Method::GET, &path, None).await.0,
        404,
        "another team's manager"
    );
    let (status, body) = call(
        &f.sofie,
        Method::POST,
        &team_path(&f, "/routes"),
        Some(&weekly_route(&f)),
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (403, Some("urn:makker:problem:forbidden")),
        "supervisors read, managers plan"
    );
}

async fn bad_input_is_a_problem_and_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let import = team_path(&f, "/areas/import");
    assert_eq!(
        call(&f.lars, Method::POST, &import, Some(&districts())).await.0,
        200
    );
    let before = app.engine.store.areas(f.team.id).await.unwrap();
    let mut open_ring = districts();
    open_ring["features"][1]["geometry"]["coordinates"][0][0][4] = json!([10.14, 56.16]);
    open_ring["features"][0]["properties"]["name"] = json!("Midtbyen Nord");
    let (status, body) = call(&f.lars, Method::POST, &import, Some(&open_ring)).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (422, Some("urn:makker:problem:invalid-input")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("feature 1"), "{body}");
    assert_eq!(
        app.engine.store.areas(f.team.id).await.unwrap(),
        before,
        "the first feature was not imported either"
    );

    let routes = team_path(&f, "/routes");
    let mut elsewhere = weekly_route(&f);
    elsewhere["stops"][1]["place_id"] = json!(f.other_place.id.0);
    let mut reversed = weekly_route(&f);
    reversed["stops"][0]["closes"] = json!("13:00");
    let mut no_day = weekly_route(&f);
    no_day["stops"][0]["weekday"] = json!(0);
    for bad in [elsewhere, reversed, no_day] {
        let (status, body) = call(&f.lars, Method::POST, &routes, Some(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["type"], "urn:makker:problem:invalid-input");
    }
    let (status, body) = call(&f.lars, Method::POST, &routes, Some(&json!({"name": "x"}))).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (422, Some("urn:makker:problem:invalid-body"))
    );
    assert!(app.engine.store.routes(f.team.id).await.unwrap().is_empty());

    for query in [
        "?from=2026-12-01&to=2026-11-01",
        "?from=2025-01-01&to=2026-06-01",
        "?late_after_minutes=999",
    ] {
        let (status, body) = call(
            &f.lars,
            Method::GET,
            &format!("{}{query}", team_path(&f, "/coverage")),
            None,
        )
        .await;
        assert_eq!(
            (status, body["type"].as_str()),
            (422, Some("urn:makker:problem:invalid-input")),
            "{query}"
        );
    }
    let (status, body) = call(
        &f.lars,
        Method::GET,
        &team_path(&f, "/coverage?from=yesterday"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (400, Some("urn:makker:problem:invalid-query"))
    );

    let future = json!({"kind": "violence", "description": "x", "place_id": f.park.id.0, "occurred_at": "2030-01-01T00:00:00Z"});
    let other = json!({"kind": "violence", "description": "x", "place_id": f.other_place.id.0});
    let empty = json!({"kind": "violence", "description": " ", "place_id": f.park.id.0});
    for (bad, status) in [(future, 422), (other, 404), (empty, 422)] {
        assert_eq!(
            call(&f.anna, Method::POST, "/api/v1/incidents", Some(&bad))
                .await
                .0,
            status,
            "{bad}"
        );
    }
    let all = team_path(&f, "/incidents");
    let (_, list) = call(&f.lars, Method::GET, &all, None).await;
    assert_eq!(list, json!([]));
}

async fn routes_and_areas_survive_export_and_import(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    call(
        &f.lars,
        Method::POST,
        &team_path(&f, "/routes"),
        Some(&weekly_route(&f)),
    )
    .await;
    let (status, exported) = call(&f.lars, Method::GET, &team_path(&f, "/routes/export"), None).await;
    assert_eq!(status, 200);
    assert_eq!(exported["features"].as_array().unwrap().len(), 2);
    let before = app.engine.store.routes(f.team.id).await.unwrap();

    // Importing the export again changes nothing; a renamed copy by place names adds a route.
    let (status, body) = import_routes(&f, &exported).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.engine.store.routes(f.team.id).await.unwrap(), before);
    let mut copy = exported.clone();
    for feature in copy["features"].as_array_mut().unwrap() {
        let props = feature["properties"].as_object_mut().unwrap();
        props.remove("place_id");
        props.insert("route".into(), json!("Midtby, weekend"));
        props.insert("weekday".into(), json!(6));
    }
    let (status, body) = import_routes(&f, &copy).await;
    assert_eq!(status, 200, "{body}");
    let routes: Vec<RouteView> = serde_json::from_value(body).unwrap();
    assert_eq!(routes.len(), 2);
    let weekend = routes.iter().find(|r| r.name == "Midtby, weekend").unwrap();
    assert!(weekend.stops.iter().all(|s| s.weekday == 6));

    // Edit: the route gets a last day and loses a stop.
    let id = before[0].id.0;
    let mut edited = weekly_route(&f);
    edited["valid_until"] = json!("2027-06-30");
    edited["stops"].as_array_mut().unwrap().pop();
    let (status, body) = call(
        &f.lars,
        Method::PUT,
        &team_path(&f, &format!("/routes/{id}")),
        Some(&edited),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stored = app.engine.store.route(makker_domain::RouteId(id)).await.unwrap();
    assert_eq!(
        (stored.stops.len(), stored.valid_until.map(|d| d.to_string())),
        (1, Some("2027-06-30".into()))
    );

    // Areas: export, delete one, import the export again: both are back, under the old ids.
    call(
        &f.lars,
        Method::POST,
        &team_path(&f, "/areas/import"),
        Some(&districts()),
    )
    .await;
    let (_, exported) = call(&f.lars, Method::GET, &team_path(&f, "/areas"), None).await;
    let areas = app.engine.store.areas(f.team.id).await.unwrap();
    let gone = areas[0].id.0;
    let (status, _) = call(
        &f.lars,
        Method::DELETE,
        &team_path(&f, &format!("/areas/{gone}")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(app.engine.store.areas(f.team.id).await.unwrap().len(), 1);
    call(
        &f.lars,
        Method::POST,
        &team_path(&f, "/areas/import"),
        Some(&exported),
    )
    .await;
    let again = app.engine.store.areas(f.team.id).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].id, areas[1].id, "a known name keeps its id");
    assert_eq!(
        again.iter().map(|a| &a.outline).collect::<Vec<_>>(),
        areas.iter().map(|a| &a.outline).collect::<Vec<_>>()
    );
}

async fn an_incident_warns_the_place_and_tracks_its_deadlines(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let start = app.engine.now();
    let v = f.anna_at_the_drop_in().await;
    let report = json!({"kind": "violence", "description": "Slag mod armen", "visit_id": v.id,
        "absence_from": start + Duration::days(1), "warning": {}});
    let (status, body) = call(&f.anna, Method::POST, "/api/v1/incidents", Some(&report)).await;
    assert_eq!(status, 201, "{body}");
    let incident: IncidentView = serde_json::from_value(body).unwrap();
    assert_eq!(incident.place_id, f.drop_in.id.0, "the visit's place");
    let due: Vec<_> = incident.deadlines.iter().map(|d| (d.duty, d.due_at)).collect();
    use makker_domain::incident::Duty;
    assert_eq!(
        due,
        vec![
            (Duty::AuthorityNotice, start + Duration::days(10)),
            (Duty::PoliceReport, start + Duration::hours(72)),
        ]
    );
    // The next worker at the drop-in centre is warned, for twelve months.
    let warnings = app.engine.store.warnings(f.drop_in.id).await.unwrap();
    let w = warnings
        .iter()
        .find(|w| Some(w.id.0) == incident.warning_id)
        .unwrap();
    assert_eq!(w.text, "Vold mod personale");
    assert_eq!(
        w.expires_at,
        start.checked_add_months(chrono::Months::new(12)).unwrap()
    );
    let near = f.bo.phone.places_near(56.1478, 10.2045, 100.0).await.unwrap();
    assert!(near[0].warnings.iter().any(|x| x.text == "Vold mod personale"));

    // Four days on the police report is overdue; the supervisor marks it done.
    app.clock.advance(Duration::days(4));
    let pending = team_path(&f, "/incidents?pending=true");
    let (_, list) = call(&f.sofie, Method::GET, &pending, None).await;
    assert_eq!(list[0]["deadlines"][1]["state"], "overdue");
    assert_eq!(list[0]["deadlines"][0]["state"], "open");
    let done = format!("/api/v1/incidents/{}/done", incident.id);
    assert_eq!(
        call(
            &f.anna,
            Method::POST,
            &done,
            Some(&json!({"duty": "police_report"}))
        )
        .await
        .0,
        403
    );
    let (status, body) = call(
        &f.sofie,
        Method::POST,
        &done,
        Some(&json!({"duty": "police_report"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deadlines"][1]["state"], "done");
    let (status, _) = call(
        &f.sofie,
        Method::POST,
        &done,
        Some(&json!({"duty": "authority_notice"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, list) = call(&f.sofie, Method::GET, &pending, None).await;
    assert_eq!(list, json!([]), "nothing pending once both are done");

    // A near miss: no deadline until absence is recorded.
    let near_miss =
        json!({"kind": "near_miss", "description": "Kanyle i sofaen", "place_id": f.drop_in.id.0});
    let (_, body) = call(&f.bo, Method::POST, "/api/v1/incidents", Some(&near_miss)).await;
    assert_eq!(body["deadlines"], json!([]));
    let absence = format!("/api/v1/incidents/{}/absence", body["id"].as_str().unwrap());
    let (status, body) = call(
        &f.lars,
        Method::POST,
        &absence,
        Some(&json!({"from": app.engine.now()})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deadlines"][0]["duty"], "authority_notice");
    let vejle = app.team("Gadeteam Vejle").await;
    let stranger = app.member("vera", makker_domain::Role::Manager, &vejle).await;
    assert_eq!(
        call(
            &stranger,
            Method::POST,
            &absence,
            Some(&json!({"from": app.engine.now()}))
        )
        .await
        .0,
        404
    );
}

async fn the_demo_seeds_eight_weeks_the_pages_can_show(store: Arc<dyn Store>) {
    let app = makker_tests::app::spawn_app(store).await;
    assert!(makker::demo::seed(&app.engine).await.unwrap());
    let lars = makker::admin::person(&app.engine, "lars").await.unwrap();
    let today = app.engine.now().date_naive();
    let q = makker_engine::coverage::ReportQuery {
        from: today - Duration::weeks(8),
        to: today - Duration::days(1),
        late_after_minutes: 15,
    };
    let r = app.engine.coverage(&lars, lars.teams[0], q).await.unwrap();
    assert_eq!(r.weeks.len(), 8, "eight ISO weeks of history");
    assert_eq!(
        r.totals.planned,
        8 * 25,
        "five stops on five weekdays for eight weeks"
    );
    assert!(
        r.totals.covered > r.totals.late && r.totals.late > 0 && r.totals.missed > 0,
        "{:?}",
        r.totals
    );
    assert!(
        r.gaps.iter().all(|g| g.place_name.starts_with("Herberget")) && !r.gaps.is_empty(),
        "{:?}",
        r.gaps
    );
    assert!(r.two_person.by_two > r.two_person.visits / 2);
    assert!(r.two_person.met_policy < r.two_person.visits, "some pairs broke");
    assert!(r.alarms.acknowledged > 0 && r.alarms.median_s.is_some());
    assert_eq!(r.incidents.iter().map(|i| i.count).sum::<u32>(), 5);
    let sofie = makker::admin::person(&app.engine, "sofie").await.unwrap();
    let overseen = app.engine.coverage(&sofie, sofie.teams[0], q).await.unwrap();
    assert!(overseen.places.len() >= 6, "homes off the route too");
    assert_eq!(
        r.places.len() + 2,
        overseen.places.len(),
        "the manager's report names neither home"
    );
    assert_eq!(r.totals, overseen.totals);
    let areas = app.engine.areas(&lars, lars.teams[0]).await.unwrap();
    assert_eq!(areas.len(), 3);
}

/// The team's places for the board's map, approvals and route stops: by name with their
/// warnings; homes only for those who answer for visits there, never another team's.
async fn a_team_lists_its_places_and_homes_only_to_supervisors(store: Arc<dyn Store>) {
    let (_app, f) = ready(store).await;
    let path = team_path(&f, "/places");
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, list) = call(&f.sofie, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        names(&list),
        ["Hjem G-17", "Hjem T-04", "Mølleparken", "Værestedet"],
        "by name, the other team's park left out"
    );
    let dog = &list[1];
    assert_eq!(dog["kind"], "home");
    assert_eq!(dog["warnings"][0]["kind"], "dog");
    assert!(list[2]["radius_m"].as_f64().unwrap() > 0.0);

    let (status, list) = call(&f.lars, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        names(&list),
        ["Mølleparken", "Værestedet"],
        "a manager plans public places"
    );

    assert_eq!(call(&f.anna, Method::GET, &path, None).await.0, 403, "a worker");
    let other = format!("/api/v1/teams/{}/places", f.other_place.team.0);
    assert_eq!(
        call(&f.sofie, Method::GET, &other, None).await.0,
        404,
        "another team"
    );
}

/// The place ids of every stop of the team's routes, as `m` reads them.
async fn stop_places(m: &Member, f: &Fixture) -> Vec<uuid::Uuid> {
    let (status, body) = call(m, Method::GET, &team_path(f, "/routes"), None).await;
    assert_eq!(status, 200, "{body}");
    let routes: Vec<RouteView> = serde_json::from_value(body).unwrap();
    routes
        .iter()
        .flat_map(|r| r.stops.iter().map(|s| s.place_id))
        .collect()
}

/// Homes are for those who answer for visits there: a manager's routes, route export and
/// coverage leave out the home stops an admin planned (the aggregates still count them), and
/// a manager's edit or import keeps them.
async fn a_manager_neither_sees_nor_loses_an_admins_home_stops(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let ada = app.member("ada", Role::Admin, &f.team).await;
    let home = json!({"place_id": f.home.id.0, "weekday": 3, "opens": "10:00", "closes": "11:00"});
    let mut planned = weekly_route(&f);
    planned["stops"].as_array_mut().unwrap().push(home.clone());
    let (status, body) = call(&ada, Method::POST, &team_path(&f, "/routes"), Some(&planned)).await;
    assert_eq!(status, 201, "{body}");
    let route = format!("/routes/{}", body["id"].as_str().unwrap());
    let (park, drop_in, home_id) = (f.park.id.0, f.drop_in.id.0, f.home.id.0);
    assert_eq!(stop_places(&ada, &f).await, [park, drop_in, home_id]);
    let leaks = |body: &Value| {
        let text = body.to_string();
        text.contains(&home_id.to_string()) || text.contains(&f.home.name)
    };

    assert_eq!(stop_places(&f.lars, &f).await, [park, drop_in]);
    let (_, exported) = call(&f.lars, Method::GET, &team_path(&f, "/routes/export"), None).await;
    assert_eq!(exported["features"].as_array().unwrap().len(), 2);
    assert!(!leaks(&exported), "{exported}");
    let (_, sofies) = call(&f.sofie, Method::GET, &team_path(&f, "/routes/export"), None).await;
    assert_eq!(
        sofies["features"].as_array().unwrap().len(),
        3,
        "a supervisor sees the home"
    );

    // The manager drops the park; the home stays, unseen by him.
    let mut edited = weekly_route(&f);
    edited["stops"].as_array_mut().unwrap().remove(0);
    let (status, body) = call(&f.lars, Method::PUT, &team_path(&f, &route), Some(&edited)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!leaks(&body), "{body}");
    assert_eq!(stop_places(&ada, &f).await, [drop_in, home_id]);
    // Nor can he plan a home himself; nothing changes.
    edited["stops"].as_array_mut().unwrap().push(home.clone());
    let (status, body) = call(&f.lars, Method::PUT, &team_path(&f, &route), Some(&edited)).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = call(&f.lars, Method::POST, &team_path(&f, "/routes"), Some(&edited)).await;
    assert_eq!(status, 422);
    assert_eq!(stop_places(&ada, &f).await, [drop_in, home_id]);
    // His export, imported again, keeps the home too.
    let (_, exported) = call(&f.lars, Method::GET, &team_path(&f, "/routes/export"), None).await;
    let (status, body) = import_routes(&f, &exported).await;
    assert_eq!(status, 200, "{body}");
    assert!(!leaks(&body), "{body}");
    assert_eq!(stop_places(&ada, &f).await, [drop_in, home_id]);

    // Wednesday 25 Nov 10:05 local: Anna and Bo at the home, on time.
    visit(
        &app,
        &[&f.anna, &f.bo],
        f.home.id,
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 5, 0).unwrap(),
        20,
    )
    .await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap());
    let path = team_path(&f, "/coverage?from=2026-11-23&to=2026-12-01");
    let (_, body) = call(&f.sofie, Method::GET, &path, None).await;
    let supervisors: CoverageReport = serde_json::from_value(body).unwrap();
    assert!(supervisors.stops.iter().any(|s| s.place_id == home_id));
    assert!(supervisors.places.iter().any(|p| p.place_id == home_id));
    let (status, body) = call(&f.lars, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(!leaks(&body), "{body}");
    let managers: CoverageReport = serde_json::from_value(body).unwrap();
    assert_eq!(
        managers.totals, supervisors.totals,
        "the home's windows still count"
    );
    assert_eq!(managers.totals.covered, 1, "the home's window");
    assert_eq!(managers.routes, supervisors.routes);
    assert_eq!(managers.stops.len(), supervisors.stops.len() - 1);
    for (rest, kind) in [
        ("/coverage/map?", "map"),
        ("/coverage/csv?table=places&", "csv"),
        ("/coverage/csv?", "csv"),
    ] {
        let response = f
            .lars
            .phone
            .request(Method::GET, &path.replace("/coverage?", rest))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{kind}");
        let text = response.text().await.unwrap();
        assert!(!leaks(&Value::String(text.clone())), "{kind}: {text}");
    }
}

both! {
    places => a_team_lists_its_places_and_homes_only_to_supervisors,
    demo => the_demo_seeds_eight_weeks_the_pages_can_show,
    manager_coverage => a_manager_plans_a_route_and_reads_its_coverage,
    refused => workers_and_other_teams_see_no_coverage,
    bad_input => bad_input_is_a_problem_and_changes_nothing,
    export_import => routes_and_areas_survive_export_and_import,
    incidents => an_incident_warns_the_place_and_tracks_its_deadlines,
    manager_homes => a_manager_neither_sees_nor_loses_an_admins_home_stops,
}
