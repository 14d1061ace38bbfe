//! The supervisors' live stream (SSE) through the real router and database: a snapshot, then
//! each change with its database id; a reconnect with `Last-Event-ID` gets what it missed;
//! another server on the same database sees the changes too; teams and roles are kept apart;
//! streams end when the server stops.

use std::sync::Arc;
use std::time::Duration;

use makker_domain::Role;
use makker_domain::visit::VisitKind;
use makker_mobile_api::EventRequest;
use makker_store::Store;
use makker_tests::app::{Member, TestApp, ready, spawn_app, start_request};
use makker_tests::both;
use serde_json::Value;

/// A board's stream, read event by event.
struct Board {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
struct Received {
    id: i64,
    kind: String,
    data: Value,
}

async fn token(app: &TestApp, m: &Member) -> String {
    app.engine.issue_token(m.person.id, "board").await.unwrap().0
}

impl Board {
    async fn open(app: &TestApp, token: &str, last: Option<i64>) -> Result<Board, u16> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut req = reqwest::Client::new()
            .get(format!("{}/api/v1/live", app.base))
            .bearer_auth(token);
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        let response = req.send().await.unwrap();
        if response.status() != 200 {
            return Err(response.status().as_u16());
        }
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Ok(Board {
            response,
            buffer: String::new(),
        })
    }

    /// The next event within `wait`; `None` when the stream ended or nothing came.
    async fn next_within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }

    async fn next(&mut self) -> Option<Received> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_owned())
                };
                // Keep-alive comments carry no event.
                if let (Some(id), Some(kind), Some(data)) = (field("id:"), field("event:"), field("data:")) {
                    return Some(Received {
                        id: id.parse().unwrap(),
                        kind,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = self.response.chunk().await.ok().flatten()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    async fn expect(&mut self, kind: &str) -> Received {
        let got = self
            .next_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {kind} event within 5 s"));
        assert_eq!(got.kind, kind, "{got:?}");
        got
    }
}

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

    let v = f
        .anna
        .phone
        .start_visit(&start_request(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
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
    let v = f
        .anna
        .phone
        .start_visit(&start_request(VisitKind::DropIn, f.drop_in.id.0, &[]))
        .await
        .unwrap();
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

both! {
    nobody_watching => nobody_watching_the_board_is_told_once,
    position_reads_are_audited => a_worker_sees_who_was_shown_her_position,
    snapshot_and_changes => a_board_gets_a_snapshot_then_each_change_of_its_team_only,
    reconnect => a_reconnecting_board_gets_what_it_missed,
    another_server => another_server_on_the_same_database_streams_the_change,
    shutdown => streams_end_when_the_server_stops,
}
