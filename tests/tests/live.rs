//! The supervisors' live stream (SSE) through the real router and database: a snapshot, then
//! each change with its database id; a reconnect with `Last-Event-ID` gets what it missed;
//! another server on the same database sees the changes too; teams and roles are kept apart;
//! streams end when the server stops. Phones' battery reports reach the boards the same way.

use std::sync::Arc;
use std::time::Duration;

use makker_domain::Role;
use makker_mobile_api::EventRequest;
use makker_store::Store;
use makker_tests::app::{Member, TestApp, ready, spawn_app};
use makker_tests::board::{Board, Received, token};
use makker_tests::both;
use serde_json::Value;

const SECOND: Duration = Duration::from_secs(1);

async fn a_board_gets_a_snapshot_then_each_change_of_its_team_only(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let sofie = token(&app, &f.sofie).await;
    let mut board = Board::open(&app, &sofie, None).await.unwrap();
    let snapshot = board.expect("snapshot").await;
    assert_eq!(snapshot.data["visits"], Value::Array(vec![]));
    assert!(
        snapshot.data["on_shift"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["display_name"] == f.anna.person.display_name.as_str()),
        "{snapshot:?}"
    );
    let anna = token(&app, &f.anna).await;
    assert_eq!(
        Board::open(&app, &anna, None).await.err(),
        Some(403),
        "not for workers"
    );
    let vejle = app.team("Gadeteam Vejle").await;
    let otto = app.member("otto", Role::Supervisor, &vejle).await;
    let mut elsewhere = Board::open(&app, &token(&app, &otto).await, None).await.unwrap();
    elsewhere.expect("snapshot").await;

    let v = f.anna_at_the_drop_in().await;
    let started = board.expect("visit").await;
    assert!(started.id > snapshot.id);
    assert_eq!(started.data["id"], v.id.to_string());
    assert_eq!(started.data["state"], "active");
    otto.phone.start_shift(None).await.unwrap();
    let first = elsewhere.expect("shift").await;
    assert_eq!(
        first.data["person"],
        otto.id().to_string(),
        "Aarhus' visit never reached Vejle"
    );

    // Hours pass: the missed check-out's alarm comes on the stream too.
    app.clock.advance(chrono::Duration::hours(3));
    app.scheduler().run_due().await.unwrap();
    let alarm = loop {
        let e = board
            .next_within(Duration::from_secs(5))
            .await
            .expect("an alarm event");
        if e.kind == "alarm" {
            break e;
        }
    };
    assert_eq!(alarm.data["visit"], v.id.to_string());
    assert_eq!(alarm.data["state"], "open");
}

async fn a_worker_sees_who_was_shown_her_position(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let sofie = token(&app, &f.sofie).await;
    let mut board = Board::open(&app, &sofie, None).await.unwrap();
    board.expect("snapshot").await;
    let here = makker_mobile_api::LatLon {
        lat: 56.1563,
        lon: 10.2038,
    };
    f.anna
        .phone
        .sos(&EventRequest {
            client_time: None,
            position: Some(here),
        })
        .await
        .unwrap();
    let alarm = board.expect("alarm").await;
    assert_eq!(alarm.data["position"]["lat"], 56.1563, "{alarm:?}");
    let views = f.anna.phone.location_views().await.unwrap();
    assert_eq!(views.len(), 1, "{views:?}");
    assert_eq!(views[0].viewer_id, Some(f.sofie.id()));
    assert_eq!(views[0].alarm_id.as_deref(), alarm.data["id"].as_str());
    // A board opened later is shown the same position in its snapshot: a second viewing.
    let signe = app.member("signe", Role::Supervisor, &f.team).await;
    let mut second = Board::open(&app, &token(&app, &signe).await, None).await.unwrap();
    second.expect("snapshot").await;
    let views = f.anna.phone.location_views().await.unwrap();
    assert_eq!(views.len(), 2);
    assert_eq!(views[1].viewer_name.as_deref(), Some("signe"));
    // The manager has no board: aggregates, not positions.
    assert_eq!(
        Board::open(&app, &token(&app, &f.lars).await, None).await.err(),
        Some(403)
    );
    assert!(
        f.bo.phone.location_views().await.unwrap().is_empty(),
        "nobody saw Bo's"
    );
}

async fn a_reconnecting_board_gets_what_it_missed(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let sofie = token(&app, &f.sofie).await;
    let v = f.anna_at_the_drop_in().await;
    let mut board = Board::open(&app, &sofie, None).await.unwrap();
    let seen = board.expect("snapshot").await;
    assert_eq!(seen.data["visits"][0]["id"], v.id.to_string());
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.lines().any(|l| l == "makker_sse_clients 1"), "{metrics}");
    drop(board);
    app.clock.advance(chrono::Duration::minutes(5));
    f.anna
        .phone
        .check_in(v.id, &EventRequest::default())
        .await
        .unwrap();
    let mut again = Board::open(&app, &sofie, Some(seen.id)).await.unwrap();
    let missed = again.expect("visit").await;
    assert_eq!(
        missed.data["last_check_in_at"],
        serde_json::to_value(app.engine.now()).unwrap()
    );
    assert!(
        again.next_within(SECOND).await.is_none(),
        "no snapshot and nothing twice"
    );
}

async fn another_server_on_the_same_database_streams_the_change(store: Arc<dyn Store>) {
    let (app, f) = ready(store.clone()).await;
    let other = spawn_app(store).await;
    let sofie = token(&app, &f.sofie).await;
    let mut board = Board::open(&other, &sofie, None).await.unwrap();
    board.expect("snapshot").await;
    // Anna is on shift in the fixture; she ends it through the first server.
    f.anna.phone.end_shift().await.unwrap();
    let ended = board.expect("shift").await;
    assert_eq!(ended.data["person"], f.anna.id().to_string());
    assert!(ended.data["ended_at"].is_string());
}

async fn streams_end_when_the_server_stops(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let sofie = token(&app, &f.sofie).await;
    let mut board = Board::open(&app, &sofie, None).await.unwrap();
    board.expect("snapshot").await;
    drop(app);
    let end = tokio::time::timeout(Duration::from_secs(5), board.next()).await;
    assert!(matches!(end, Ok(None)), "the stream ended cleanly: {end:?}");
    drop(f);
}

async fn unwatched_messages(app: &TestApp, m: &Member) -> usize {
    let all = app.engine.store.messages_to(m.person.id).await.unwrap();
    all.iter().filter(|x| x.message.kind == "unwatched").count()
}

/// People on shift and no board open for the policy's 15 minutes: the supervisor and the
/// manager are told once for that gap (the workers are not); an open board keeps it quiet.
async fn nobody_watching_the_board_is_told_once(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let watch = || makker_http::live::watch_once(&app.state);
    app.clock.advance(chrono::Duration::minutes(14));
    assert_eq!(watch().await.unwrap(), 0);
    assert_eq!(unwatched_messages(&app, &f.sofie).await, 0);

    app.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(watch().await.unwrap(), 1);
    let told = unwatched_messages(&app, &f.sofie).await;
    assert!(told >= 1, "the supervisor is told");
    assert!(
        unwatched_messages(&app, &f.lars).await >= 1,
        "the manager is told"
    );
    assert_eq!(unwatched_messages(&app, &f.anna).await, 0, "workers are not");
    let sms = app.engine.store.messages_to(f.sofie.person.id).await.unwrap();
    let text = &sms
        .iter()
        .find(|m| m.message.kind == "unwatched")
        .unwrap()
        .message
        .body;
    assert!(
        text.contains("Gadeteam Aarhus") && text.contains("16 min"),
        "{text}"
    );
    // Still nobody: the same gap is not told twice.
    app.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(watch().await.unwrap(), 1);
    assert_eq!(unwatched_messages(&app, &f.sofie).await, told);

    // A board opens and stays open: the team is watched, however long it stays open.
    let mut board = Board::open(&app, &token(&app, &f.sofie).await, None)
        .await
        .unwrap();
    assert_eq!(board.next().await.unwrap().kind, "snapshot");
    assert_eq!(watch().await.unwrap(), 0);
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(10));
        assert_eq!(watch().await.unwrap(), 0);
    }
    assert_eq!(unwatched_messages(&app, &f.sofie).await, told);
    // Another team's board does not watch ours.
    assert_eq!(app.state.hub.watched_teams(), vec![f.team.id]);
}

// --- phones' battery (issue 8.2) ----------------------------------------------------------

/// A member's entry among those on shift in a snapshot.
fn on_shift_entry(snapshot: &Received, m: &Member) -> Value {
    snapshot.data["on_shift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["person_id"] == m.id().to_string())
        .unwrap_or_else(|| panic!("{} is not on shift: {snapshot:?}", m.person.username))
        .clone()
}

async fn a_phones_battery_reaches_the_boards_live_and_in_their_snapshot(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let sofie = token(&app, &f.sofie).await;
    let mut board = Board::open(&app, &sofie, None).await.unwrap();
    let first = board.expect("snapshot").await;
    assert_eq!(
        on_shift_entry(&first, &f.anna)["battery_pct"],
        Value::Null,
        "nothing reported yet"
    );
    let vejle = app.team("Gadeteam Vejle").await;
    let otto = app.member("otto", Role::Supervisor, &vejle).await;
    let mut elsewhere = Board::open(&app, &token(&app, &otto).await, None).await.unwrap();
    elsewhere.expect("snapshot").await;

    let reported = f.anna.phone.report_status(57, Some(true)).await.unwrap();
    assert_eq!(
        (reported.person_id, reported.battery_pct, reported.charging),
        (f.anna.id(), 57, Some(true))
    );
    assert_eq!(reported.reported_at, app.engine.now());
    let live = board.expect("status").await;
    assert_eq!(live.data["person"], f.anna.id().to_string());
    assert_eq!(live.data["battery_pct"], 57);
    assert_eq!(live.data["charging"], true);
    assert_eq!(
        live.data["reported_at"],
        serde_json::to_value(reported.reported_at).unwrap()
    );

    // The next report replaces it; a phone that does not say whether it charges says nothing.
    app.clock.advance(chrono::Duration::minutes(5));
    f.anna.phone.report_status(15, None).await.unwrap();
    let lower = board.expect("status").await;
    assert_eq!(lower.data["battery_pct"], 15);
    assert_eq!(lower.data["charging"], Value::Null);
    let snapshot = later_snapshot(&app, &sofie).await;
    let entry = on_shift_entry(&snapshot, &f.anna);
    assert_eq!(entry["battery_pct"], 15, "{entry}");
    assert_eq!(entry["charging"], Value::Null);
    assert_eq!(
        entry["reported_at"],
        serde_json::to_value(app.engine.now()).unwrap()
    );
    let bo = on_shift_entry(&snapshot, &f.bo);
    assert_eq!(bo["battery_pct"], Value::Null, "only Anna's phone reported");
    assert!(
        elsewhere.next_within(SECOND).await.is_none(),
        "Aarhus' batteries never reach Vejle"
    );
}

async fn later_snapshot(app: &TestApp, token: &str) -> Received {
    Board::open(app, token, None)
        .await
        .unwrap()
        .expect("snapshot")
        .await
}

/// A raw report, for bodies the typed client cannot send: (status, content type, body).
async fn post_status(app: &TestApp, token: &str, body: &str) -> (u16, String, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/shift/status", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    (status, kind, response.json().await.unwrap())
}

async fn a_battery_out_of_range_or_off_shift_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    f.anna.phone.report_status(80, Some(false)).await.unwrap();
    let before = app.engine.store.phone_statuses(f.team.id).await.unwrap();
    let head = app.engine.store.live_head().await.unwrap();
    let anna = token(&app, &f.anna).await;
    for (body, problem) in [
        (r#"{"battery_pct": 101}"#, "invalid-input"),
        (r#"{"battery_pct": 255, "charging": true}"#, "invalid-input"),
        (r#"{"battery_pct": -1}"#, "invalid-body"),
        (r#"{"battery_pct": 1000}"#, "invalid-body"),
        (r#"{"battery_pct": 50.5}"#, "invalid-body"),
        (r#"{"battery_pct": "50"}"#, "invalid-body"),
        (r#"{"charging": true}"#, "invalid-body"),
        (
            r#"{"battery_pct": 50, "position": {"lat": 56.1, "lon": 10.2}}"#,
            "invalid-body",
        ),
    ] {
        let (status, kind, answer) = post_status(&app, &anna, body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(kind, "application/problem+json", "{body}");
        assert_eq!(
            answer["type"],
            format!("urn:makker:problem:{problem}"),
            "{body}: {answer}"
        );
    }
    assert_eq!(app.engine.store.phone_statuses(f.team.id).await.unwrap(), before);
    assert_eq!(app.engine.store.live_head().await.unwrap(), head, "no live event");

    // Off shift: Olga never started one, Anna ended hers. The same refusal as the other shift calls.
    f.anna.phone.end_shift().await.unwrap();
    let head = app.engine.store.live_head().await.unwrap();
    for m in [&f.olga, &f.anna] {
        let refused = m.phone.report_status(50, None).await.unwrap_err();
        let problem = refused.problem().expect("a problem");
        assert_eq!(
            (problem.status, problem.reason.as_deref()),
            (409, Some("not-on-shift")),
            "{problem:?}"
        );
        let shift_call = m.phone.end_shift().await.unwrap_err();
        assert_eq!(shift_call.problem().unwrap().type_, problem.type_);
    }
    assert_eq!(app.engine.store.live_head().await.unwrap(), head, "no live event");
    assert!(
        app.engine
            .store
            .phone_statuses(f.team.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_battery_goes_with_the_shift_and_is_never_shown_from_an_earlier_one(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let sofie = token(&app, &f.sofie).await;
    f.anna.phone.report_status(42, Some(false)).await.unwrap();
    f.bo.phone.report_status(90, Some(true)).await.unwrap();
    let mut board = Board::open(&app, &sofie, None).await.unwrap();
    board.expect("snapshot").await;

    f.anna.phone.end_shift().await.unwrap();
    let ended = board.expect("shift").await;
    assert!(ended.data["ended_at"].is_string());
    let left = app.engine.store.phone_statuses(f.team.id).await.unwrap();
    assert_eq!(
        left.iter().map(|s| s.person).collect::<Vec<_>>(),
        vec![f.bo.person.id],
        "only Bo's stays"
    );

    // A new shift starts blank: the last shift's 42 % is gone.
    app.clock.advance(chrono::Duration::hours(1));
    f.anna.phone.start_shift(None).await.unwrap();
    let snapshot = later_snapshot(&app, &sofie).await;
    let anna = on_shift_entry(&snapshot, &f.anna);
    assert_eq!(anna["battery_pct"], Value::Null, "{anna}");
    assert_eq!(anna["reported_at"], Value::Null, "{anna}");
    assert_eq!(on_shift_entry(&snapshot, &f.bo)["battery_pct"], 90);
    f.anna.phone.report_status(99, None).await.unwrap();
    let anna = on_shift_entry(&later_snapshot(&app, &sofie).await, &f.anna);
    assert_eq!(anna["battery_pct"], 99);
}

/// Ending the shift deletes the phone's status, not only hides it: counted in the database.
async fn the_status_row_is_deleted_with_the_shift<F>(store: Arc<dyn Store>, rows: impl Fn() -> F)
where
    F: std::future::Future<Output = i64>,
{
    let (_app, f) = ready(store).await;
    f.anna.phone.report_status(42, None).await.unwrap();
    f.bo.phone.report_status(43, None).await.unwrap();
    f.anna.phone.report_status(41, None).await.unwrap();
    assert_eq!(rows().await, 2, "one row per phone");
    f.anna.phone.end_shift().await.unwrap();
    assert_eq!(rows().await, 1, "Anna's went with her shift");
}

const STATUS_ROWS: &str = "select count(*) from phone_status";

#[tokio::test]
async fn battery_row_deleted_on_sqlite() {
    use sqlx::Connection;
    let (store, dir) = makker_tests::sqlite_store().await;
    let url = format!("sqlite://{}", dir.0.join("makker.db").display());
    let rows = || async {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as::<_, (i64,)>(STATUS_ROWS)
            .fetch_one(&mut db)
            .await
            .unwrap()
            .0
    };
    the_status_row_is_deleted_with_the_shift(store, rows).await;
}

#[tokio::test]
async fn battery_row_deleted_on_postgres() {
    use sqlx::Connection;
    if makker_tests::pg_skipped() {
        return;
    }
    let url = makker_tests::pg_database_url().await;
    let store = makker_store_pg::PgStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let rows = || async {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_as::<_, (i64,)>(STATUS_ROWS)
            .fetch_one(&mut db)
            .await
            .unwrap()
            .0
    };
    the_status_row_is_deleted_with_the_shift(Arc::new(store), rows).await;
}

/// A check-in tells the other processes at its commit (PostgreSQL NOTIFY in the statement
/// that saves it): a listener on another connection is woken, with no poll in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_wakes_the_other_processes_live_hubs() {
    if makker_tests::pg_skipped() {
        return;
    }
    let store = makker_tests::pg_store().await;
    let (_app, f) = ready(store.clone()).await;
    let v = f.anna_at_the_drop_in().await;
    let (woken, mut wakes) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(async move {
        store
            .watch_live(Box::new(move || {
                let _ = woken.send(());
            }))
            .await
    });
    // The wake after connecting, and any left from the set-up: until quiet.
    while tokio::time::timeout(Duration::from_millis(500), wakes.recv())
        .await
        .is_ok()
    {}
    f.anna
        .phone
        .check_in(v.id, &EventRequest::default())
        .await
        .unwrap();
    let woken = tokio::time::timeout(5 * SECOND, wakes.recv()).await;
    watcher.abort();
    assert!(woken.is_ok(), "the check-in's commit told no other process");
}

both! {
    nobody_watching => nobody_watching_the_board_is_told_once,
    position_reads_are_audited => a_worker_sees_who_was_shown_her_position,
    snapshot_and_changes => a_board_gets_a_snapshot_then_each_change_of_its_team_only,
    reconnect => a_reconnecting_board_gets_what_it_missed,
    another_server => another_server_on_the_same_database_streams_the_change,
    shutdown => streams_end_when_the_server_stops,
    battery_live => a_phones_battery_reaches_the_boards_live_and_in_their_snapshot,
    battery_refused => a_battery_out_of_range_or_off_shift_is_refused_and_changes_nothing,
    battery_ends_with_shift => the_battery_goes_with_the_shift_and_is_never_shown_from_an_earlier_one,
}
