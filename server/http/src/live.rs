//! Live status for the supervisors' boards over Server-Sent Events (`GET /api/v1/live`).
//!
//! The database is the record: every change to a visit, an alarm, a shift or a phone's status
//! writes a `live_event` row in its own transaction. One [`Hub`] per process reads the new rows
//! when woken (PostgreSQL LISTEN/NOTIFY for other processes' writes, a short poll for its own
//! and as a fallback) and broadcasts them; each stream keeps its caller's teams. A stream opens
//! with a snapshot, or, given `Last-Event-ID`, with what the board missed (a fresh snapshot when
//! that is too much). Each event's id is the row's id. Streams end when the server shuts down.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use makker_domain::{Role, TeamId};
use makker_engine::EngineError;
use makker_store::{LiveEvent, Store};
use serde_json::json;
use tokio::sync::{Notify, broadcast, watch};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;

/// How often the hub looks for new rows when nobody woke it.
const POLL: Duration = Duration::from_millis(250);
/// Rows read per look.
const BATCH: u32 = 500;
/// A reconnecting board that missed more than this gets a snapshot instead.
const BACKLOG: u32 = 1000;
/// How often this process records the teams whose boards it serves, and looks for teams
/// nobody watches.
pub const WATCH_EVERY: Duration = Duration::from_secs(30);

/// This process's fan-out of live changes.
pub struct Hub {
    events: broadcast::Sender<Arc<LiveEvent>>,
    /// Wakes the hub to read new rows now.
    wake: Notify,
    stop: watch::Sender<bool>,
    /// Open streams per team.
    boards: Mutex<HashMap<TeamId, usize>>,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            events: broadcast::channel(4096).0,
            wake: Notify::new(),
            stop: watch::channel(false).0,
            boards: Mutex::default(),
        })
    }

    /// Another commit wrote live rows (a NOTIFY): read them now, if a board is open here to
    /// be told. Without one the hub only keeps up with the head at its next poll, instead of
    /// a read for every commit of every process.
    pub fn hint(&self) {
        if self.events.receiver_count() > 0 {
            self.wake.notify_one();
        }
    }

    /// The teams with a board open on this process.
    pub fn watched_teams(&self) -> Vec<TeamId> {
        self.boards().keys().copied().collect()
    }

    fn boards(&self) -> std::sync::MutexGuard<'_, HashMap<TeamId, usize>> {
        // The map stays consistent even if a holder panicked: each update is one statement.
        self.boards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends every stream and the hub's loop (server shutdown).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Reads new rows and broadcasts them until [`Hub::stop`].
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        let mut stop = self.stop.subscribe();
        let mut last = None;
        loop {
            let more = match last {
                None => store.live_head().await.map(|head| {
                    last = Some(head);
                    false
                }),
                // Nobody to tell (no board open here): the head, not the rows. A board that
                // opened meanwhile needs the rows after the head it read for its snapshot
                // (after it subscribed), so they are read at once, from where the hub was.
                Some(after) if self.events.receiver_count() == 0 => store.live_head().await.map(|head| {
                    let opened = self.events.receiver_count() > 0;
                    if !opened {
                        last = Some(head.max(after));
                    }
                    opened
                }),
                Some(after) => store.live_since(after, BATCH).await.map(|rows| {
                    let full = rows.len() == BATCH as usize;
                    for row in rows {
                        last = Some(row.id);
                        let _ = self.events.send(Arc::new(row));
                    }
                    full
                }),
            };
            if let Err(e) = &more {
                tracing::warn!(error = %e, "the live hub cannot read changes");
            }
            if more.unwrap_or(false) {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// The live status of my teams: a `snapshot` event (visits in progress, unresolved alarms,
/// people on shift with their phone's battery), then `visit`, `alarm`, `shift` and `status`
/// (a phone's battery) events, each the record as it is after the change. For supervisors and admins: a worker's phone is told what concerns it by push
/// (a duress alarm must never reach it), and managers see aggregates, not where people are.
#[utoipa::path(get, path = "/api/v1/live", tag = "live", security(("device_token" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "The last event the board saw")),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 401, body = makker_mobile_api::Problem), (status = 403, body = makker_mobile_api::Problem)))]
pub async fn live(
    State(state): State<AppState>,
    me: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if !matches!(me.person.role, Role::Supervisor | Role::Admin) {
        return Err(me.err()(EngineError::Forbidden));
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let store = state.engine.store.clone();
    let mut feed = Feed {
        engine: state.engine.clone(),
        me: me.person.clone(),
        events: state.hub.events.subscribe(),
        stop: state.hub.stop.subscribe(),
        teams: me.person.teams.clone(),
        pending: VecDeque::new(),
        last: 0,
        store,
        _board: Board::open(&state.hub, &me.person.teams),
    };
    state
        .engine
        .boards_connected(&me.person.teams)
        .await
        .map_err(me.err())?;
    feed.open(resume).await.map_err(me.err())?;
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One board's stream.
struct Feed {
    /// For the audit log: every alarm position shown is recorded as read by `me`.
    engine: makker_engine::Engine,
    me: makker_store::Person,
    events: broadcast::Receiver<Arc<LiveEvent>>,
    stop: watch::Receiver<bool>,
    teams: Vec<TeamId>,
    pending: VecDeque<Event>,
    /// The newest change this stream has passed (shown or not).
    last: i64,
    store: Arc<dyn Store>,
    _board: Board,
}

impl Feed {
    /// What the board missed since `resume`, or a snapshot.
    async fn open(&mut self, resume: Option<i64>) -> Result<(), EngineError> {
        if let Some(after) = resume {
            let missed = self.store.live_since(after, BACKLOG).await?;
            if missed.len() < BACKLOG as usize {
                self.last = after;
                for row in missed {
                    self.pass(&row).await?;
                }
                return Ok(());
            }
        }
        self.snapshot().await
    }

    /// Everything now, with the id of the newest change it includes. The head is read first:
    /// a change racing the snapshot is sent again after it, never lost.
    async fn snapshot(&mut self) -> Result<(), EngineError> {
        let head = self.store.live_head().await?;
        let (mut visits, mut alarms, mut on_shift) = (Vec::new(), Vec::new(), Vec::new());
        for team in &self.teams {
            visits.extend(self.store.active_team_visits(*team).await?);
            alarms.extend(self.store.unresolved_team_alarms(*team).await?);
            let statuses = self.store.phone_statuses(*team).await?;
            for (person, shift) in self.store.on_shift(*team).await? {
                let status = statuses.iter().find(|s| s.person == person.id);
                on_shift.push(json!({
                    "person_id": person.id, "display_name": person.display_name,
                    "role": person.role, "team_id": shift.team, "started_at": shift.started_at,
                    "battery_pct": status.map(|s| s.battery_pct),
                    "charging": status.and_then(|s| s.charging),
                    "reported_at": status.map(|s| s.reported_at),
                }));
            }
        }
        self.engine
            .record_position_reads(&self.me, &alarms.iter().collect::<Vec<_>>())
            .await?;
        // Workers still waiting at a door for a lone-visit approval (`approval_request` and
        // `approval_answer` events follow).
        let approval_requests = self.engine.open_lone_asks(&self.teams).await?;
        let data = json!({
            "visits": visits, "alarms": alarms, "on_shift": on_shift, "approval_requests": approval_requests,
        });
        self.pending.clear();
        self.pending.push_back(
            Event::default()
                .id(head.to_string())
                .event("snapshot")
                .data(data.to_string()),
        );
        self.last = head;
        Ok(())
    }

    async fn pass(&mut self, row: &LiveEvent) -> Result<(), EngineError> {
        if row.id <= self.last {
            return Ok(());
        }
        self.last = row.id;
        if self.teams.contains(&row.team) {
            if row.kind == "alarm"
                && let Ok(alarm) = serde_json::from_value::<makker_domain::alarm::Alarm>(row.payload.clone())
            {
                self.engine.record_position_reads(&self.me, &[&alarm]).await?;
            }
            self.pending.push_back(
                Event::default()
                    .id(row.id.to_string())
                    .event(&row.kind)
                    .data(row.payload.to_string()),
            );
        }
        Ok(())
    }

    /// The next event, or `None` when the server stops.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            tokio::select! {
                _ = self.stop.changed() => {}
                received = self.events.recv() => match received {
                    Ok(row) => {
                        if let Err(e) = self.pass(&row).await {
                            tracing::warn!(error = %e, "a live stream could not record a position read");
                            return None;
                        }
                    }
                    // Too slow to keep up: start over from the record.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Err(e) = self.snapshot().await {
                            tracing::warn!(error = %e, "a live stream could not resync");
                            return None;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// An open stream: counted per team in the hub (someone is watching) and in
/// `makker_sse_clients`.
struct Board {
    hub: Arc<Hub>,
    teams: Vec<TeamId>,
}

impl Board {
    fn open(hub: &Arc<Hub>, teams: &[TeamId]) -> Board {
        metrics::gauge!("makker_sse_clients").increment(1.0);
        let mut boards = hub.boards();
        for team in teams {
            *boards.entry(*team).or_default() += 1;
        }
        Board {
            hub: hub.clone(),
            teams: teams.to_vec(),
        }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        metrics::gauge!("makker_sse_clients").decrement(1.0);
        let mut boards = self.hub.boards();
        for team in &self.teams {
            if let Some(n) = boards.get_mut(team) {
                *n -= 1;
                if *n == 0 {
                    boards.remove(team);
                }
            }
        }
    }
}

/// Records the teams whose boards this process serves, then tells those of teams nobody has
/// watched for too long (the loop in [`crate::launch`] runs it every [`WATCH_EVERY`]).
///
/// # Errors
/// The store fails.
pub async fn watch_once(state: &AppState) -> Result<usize, EngineError> {
    state.engine.boards_connected(&state.hub.watched_teams()).await?;
    state.engine.check_watched().await
}
