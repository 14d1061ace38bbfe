//! The SQL both dialects share. Each store crate includes this file with `#[path]`, after
//! defining `Db` (its sqlx database), `BEGIN_WRITE` (how to open a write transaction) and
//! `constraint_of` (the named constraint a unique violation broke). Queries use `$n`
//! placeholders, which SQLite and PostgreSQL both accept.
//!
//! INVARIANT: every write that belongs to one domain transition happens inside one
//! transaction: one opened with `BEGIN_WRITE`, or a single statement (a check-in's save on
//! PostgreSQL, its writes as data-modifying CTEs). Nothing is written outside a transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use makker_domain::alarm::{Alarm, AlarmKind, AlarmState};
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind, Warning, WarningKind};
use makker_domain::policy::Channel;
use makker_domain::risk::{Answers, Assessed, RiskLevel};
use makker_domain::route::{Route, Stop};
use makker_domain::text::Lang;
use makker_domain::visit::{Effect, Participant, ParticipantRole, Terms, Visit, VisitKind, VisitState};
use makker_domain::{
    AlarmId, AssessmentId, PersonId, PlaceId, Role, RouteId, ShiftId, TeamId, VisitId, WarningId,
};
use makker_store::{
    Assessment, Attempt, AttemptRecord, AuditEntry, Changes, Deadline, DeadlineKind, Delivery, Device, Fired,
    HandOver, Idempotency, LiveEvent, LoginFailures, LoneApproval, Message, NewDeadline, NewEvent,
    NewMessage, OpsFigures, Person, PushSubscription, Shift, SignedInToChange, Store, StoreError,
    StoreResult, Team, Versioned, VisitEvent, WatchStatus, constraint,
};
use sqlx::query_builder::Separated;
use sqlx::types::Json;
use sqlx::{FromRow, Pool, QueryBuilder, Transaction};
use uuid::Uuid;

use super::{BEGIN_WRITE, Db, SKIP_LOCKED, constraint_of};

/// Routes, areas, incidents and coverage facts (issue 4).
#[path = "coverage.rs"]
mod coverage;

#[path = "approval.rs"]
mod approval;
#[path = "retention.rs"]
mod retention;
#[path = "sso.rs"]
mod sso;
#[path = "status.rs"]
mod status;

/// Visit saves that share commits (group commit).
#[path = "group.rs"]
mod group;
/// Idempotency keys claimed and answered in batches (PostgreSQL).
#[cfg(makker_pg)]
#[path = "idempotency.rs"]
mod idempotency;
/// A check-in's save as one statement (PostgreSQL).
#[cfg(makker_pg)]
#[path = "one_statement.rs"]
mod one_statement;
/// A check-in's reads, shared by those waiting together (group reads).
#[path = "reads.rs"]
mod reads;

/// A store on one database pool.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) pool: Pool<Db>,
    /// Where visit saves queue to share a commit; `None` in the committers' own handle.
    saves: Option<group::Saves>,
    /// Where a check-in's reads queue to share a statement; `None` in the readers' own handle.
    reads: Option<Arc<HotReads>>,
    /// Where idempotency keys' claims and answers queue to share a statement; `None` in the
    /// runners' own handles.
    #[cfg(makker_pg)]
    keys: Option<Arc<idempotency::Keys>>,
    /// A reader's or committer's connection, kept between its statements: sqlx pings a
    /// connection given back to the pool, a round trip after every statement. Only in the
    /// serving store, whose pool has room for it; `None` elsewhere.
    own: Option<Arc<Kept>>,
}

/// A connection a handle keeps, and the settings it is given when taken from the pool.
#[derive(Debug)]
struct Kept {
    conn: tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<Db>>>,
    setup: &'static [&'static str],
}

/// The reads every check-in makes, by visit and by token hash, and (PostgreSQL) the two at
/// once.
#[derive(Debug)]
struct HotReads {
    visits: reads::Reads<Uuid, ToChange>,
    signed_in: reads::Reads<String, SignedIn>,
    #[cfg(makker_pg)]
    both: reads::Reads<(String, Uuid), (Option<SignedIn>, Option<ToChange>)>,
}

/// A device and its person, signed in.
type SignedIn = (Device, Person);
/// A visit to change, and whether it has alarms not resolved.
type ToChange = (Versioned<Visit>, bool);

type Tx = Transaction<'static, Db>;

fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            constraint: constraint_of(d.as_ref()),
        },
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound,
        e @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed) => {
            StoreError::Transient(e.to_string())
        }
        sqlx::Error::Database(d) if d.code().is_some_and(|c| is_transient(&c)) => {
            StoreError::Transient(d.to_string())
        }
        e => StoreError::Other(e.to_string()),
    }
}

/// Errors a retry may cure: PostgreSQL shutting down or failing over (57P01-57P03), a primary
/// turned read-only (25006), connection loss (08xxx), serialization (40001), deadlock (40P01);
/// SQLite busy or locked (5, 6 and their extended codes).
fn is_transient(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03" | "25006" | "40001" | "40P01")
        || code.starts_with("08")
        || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

fn parse<T, E: std::fmt::Display>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|e| StoreError::Other(format!("unreadable row: {e}")))
}

fn enum_str<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("BUG: enums stored as text serialize to strings")
}

fn enum_parse<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    parse(serde_json::from_value(serde_json::Value::String(s.to_owned())))
}

fn position(lat: Option<f64>, lon: Option<f64>) -> Option<Position> {
    Position::parse(lat?, lon?).ok()
}

#[derive(FromRow)]
struct TeamRow {
    team_id: Uuid,
    name: String,
    time_zone: String,
    created_at: DateTime<Utc>,
}

impl From<TeamRow> for Team {
    fn from(r: TeamRow) -> Self {
        Team {
            id: TeamId(r.team_id),
            name: r.name,
            time_zone: r.time_zone,
            created_at: r.created_at,
        }
    }
}

#[derive(FromRow)]
struct PersonRow {
    person_id: Uuid,
    username: String,
    display_name: String,
    role: String,
    phone: Option<String>,
    lang: String,
    password_hash: Option<String>,
    pin_hash: Option<String>,
    duress_pin_hash: Option<String>,
    created_at: DateTime<Utc>,
}

const PERSON_COLUMNS: &str = "p.person_id, p.username, p.display_name, p.role, p.phone, p.lang, \
     p.password_hash, p.pin_hash, p.duress_pin_hash, p.created_at";

#[derive(FromRow)]
struct DeviceRow {
    device_id: Uuid,
    person_id: Uuid,
    token_hash: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<DeviceRow> for Device {
    fn from(r: DeviceRow) -> Self {
        Device {
            id: r.device_id,
            person: PersonId(r.person_id),
            token_hash: r.token_hash,
            name: r.name,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(FromRow)]
struct ShiftRow {
    shift_id: Uuid,
    person_id: Uuid,
    team_id: Uuid,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<ShiftRow> for Shift {
    fn from(r: ShiftRow) -> Self {
        Shift {
            id: ShiftId(r.shift_id),
            person: PersonId(r.person_id),
            team: TeamId(r.team_id),
            started_at: r.started_at,
            ended_at: r.ended_at,
        }
    }
}

#[derive(FromRow)]
struct PlaceRow {
    place_id: Uuid,
    team_id: Uuid,
    name: String,
    kind: String,
    shape: Json<Shape>,
}

impl PlaceRow {
    fn into_place(self) -> StoreResult<Place> {
        Ok(Place {
            id: PlaceId(self.place_id),
            team: TeamId(self.team_id),
            name: self.name,
            kind: enum_parse::<PlaceKind>(&self.kind)?,
            shape: self.shape.0,
        })
    }
}

#[derive(FromRow)]
struct WarningRow {
    place_warning_id: Uuid,
    place_id: Uuid,
    kind: String,
    text: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct RouteRow {
    route_id: Uuid,
    team_id: Uuid,
    name: String,
    valid_from: NaiveDate,
    valid_until: Option<NaiveDate>,
}

#[derive(FromRow)]
struct StopRow {
    place_id: Uuid,
    weekday: i32,
    opens_minute: i32,
    closes_minute: i32,
}

fn minute_of_day(t: NaiveTime) -> i32 {
    i32::try_from(t.hour() * 60 + t.minute()).expect("BUG: minutes of a day fit in i32")
}

fn time_of_minute(m: i32) -> StoreResult<NaiveTime> {
    let m = to_u32(m)?;
    NaiveTime::from_hms_opt(m / 60, m % 60, 0).ok_or_else(|| StoreError::Other(format!("bad minute {m}")))
}

fn weekday(n: i32) -> StoreResult<Weekday> {
    let n = parse(u8::try_from(n))?;
    Weekday::try_from(n.wrapping_sub(1)).map_err(|_| StoreError::Other(format!("bad weekday {n}")))
}

#[derive(FromRow)]
struct AssessmentRow {
    assessment_id: Uuid,
    place_id: Uuid,
    team_id: Uuid,
    person_id: Uuid,
    answers: Json<Answers>,
    points: i32,
    level: String,
    assessed_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct ApprovalRow {
    lone_approval_id: Uuid,
    worker_id: Uuid,
    supervisor_id: Uuid,
    place_id: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct VisitRow {
    visit_id: Uuid,
    team_id: Uuid,
    place_id: Uuid,
    kind: String,
    state: String,
    points: i32,
    level: String,
    started_at: DateTime<Utc>,
    planned_end: DateTime<Utc>,
    last_check_in_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    min_participants: i32,
    check_in_minutes: i32,
    max_minutes: i32,
    grace_minutes: i32,
    tell_colleague_on_exit: bool,
    chain: String,
    lone_reason: Option<String>,
    approved_by: Option<Uuid>,
    tell_colleague: Option<Uuid>,
    alone_since: Option<DateTime<Utc>>,
    break_check_in_minutes: i32,
    version: i64,
}

/// A visit's row with one of its participants' (all `p_` columns null for none): a visit in one query.
#[derive(FromRow)]
struct VisitPartRow {
    #[sqlx(flatten)]
    visit: VisitRow,
    p_person: Option<Uuid>,
    p_role: Option<String>,
    p_joined_at: Option<DateTime<Utc>>,
    p_left_at: Option<DateTime<Utc>>,
}

/// A [`VisitPartRow`] and whether the visit has alarms not resolved.
#[derive(FromRow)]
struct AlarmedVisitRow {
    #[sqlx(flatten)]
    row: VisitPartRow,
    alarmed: bool,
}

/// `from visit v left join visit_participant vp …`: the columns of [`VisitPartRow`] past the visit's.
const PART_COLUMNS: &str =
    "vp.person_id as p_person, vp.role as p_role, vp.joined_at as p_joined_at, vp.left_at as p_left_at";

/// The visit of `rows` (those of one visit, in participant order), if any.
fn visit_of_rows(rows: Vec<VisitPartRow>) -> StoreResult<Option<Versioned<Visit>>> {
    let parts = rows
        .iter()
        .filter_map(|r| {
            Some(ParticipantRow {
                visit_id: r.visit.visit_id,
                person_id: r.p_person?,
                role: r.p_role.clone()?,
                joined_at: r.p_joined_at?,
                left_at: r.p_left_at,
            })
        })
        .collect();
    match rows.into_iter().next() {
        Some(first) => visit_with(first.visit, parts).map(Some),
        None => Ok(None),
    }
}

/// A person's row with one of their teams (`None` for none): a person in one query.
#[derive(FromRow)]
struct PersonTeamRow {
    #[sqlx(flatten)]
    person: PersonRow,
    member_of: Option<Uuid>,
}

/// A device's person with one of their teams and the device's columns, `d_`-prefixed:
/// authenticating a request in one query.
#[derive(FromRow)]
struct SignedInRow {
    #[sqlx(flatten)]
    member: PersonTeamRow,
    d_device_id: Uuid,
    d_token_hash: String,
    d_name: String,
    d_created_at: DateTime<Utc>,
    d_expires_at: DateTime<Utc>,
    d_revoked_at: Option<DateTime<Utc>>,
}

/// `rows` cut into runs of the same `key` (rows ordered by it).
fn runs<T, K: PartialEq>(rows: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    for r in rows {
        match runs.last_mut() {
            Some(run) if key(&run[0]) == key(&r) => run.push(r),
            _ => runs.push(vec![r]),
        }
    }
    runs
}

/// The person of `rows` (one per team, or one with none), if any.
fn person_of_rows(rows: Vec<PersonTeamRow>) -> StoreResult<Option<Person>> {
    let teams = rows.iter().filter_map(|r| r.member_of.map(TeamId)).collect();
    match rows.into_iter().next() {
        Some(first) => person_with(first.person, teams).map(Some),
        None => Ok(None),
    }
}

/// The device and person of `rows` (those of one token hash, in team order), if any.
fn signed_in_of_rows(rows: Vec<SignedInRow>) -> StoreResult<Option<SignedIn>> {
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let device = Device {
        id: r.d_device_id,
        person: PersonId(r.member.person.person_id),
        token_hash: r.d_token_hash.clone(),
        name: r.d_name.clone(),
        created_at: r.d_created_at,
        expires_at: r.d_expires_at,
        revoked_at: r.d_revoked_at,
    };
    let person = person_of_rows(rows.into_iter().map(|r| r.member).collect())?;
    Ok(person.map(|p| (device, p)))
}

/// The visit to change of `rows` (those of one visit, in participant order), if any.
fn to_change_of_rows(rows: Vec<AlarmedVisitRow>) -> StoreResult<Option<ToChange>> {
    let Some(alarmed) = rows.first().map(|r| r.alarmed) else {
        return Ok(None);
    };
    let visit = visit_of_rows(rows.into_iter().map(|r| r.row).collect())?;
    Ok(visit.map(|v| (v, alarmed)))
}

/// `select … from device d …`: the rows of [`SignedInRow`]; the caller adds the `where`.
fn signed_in_select() -> String {
    format!(
        "select {PERSON_COLUMNS}, m.team_id as member_of, d.device_id as d_device_id, \
         d.token_hash as d_token_hash, d.name as d_name, d.created_at as d_created_at, \
         d.expires_at as d_expires_at, d.revoked_at as d_revoked_at \
         from device d join person p on p.person_id = d.person_id \
         left join team_member m on m.person_id = p.person_id"
    )
}

/// `select … from visit v …`: the rows of [`AlarmedVisitRow`] (and `p_position`, to order
/// them by); the caller adds the `where`.
fn to_change_select() -> String {
    format!(
        "select {VISIT_COLUMNS}, {PART_COLUMNS}, vp.position as p_position, exists (select 1 from alarm a \
         where a.visit_id = v.visit_id and a.state <> 'resolved') as alarmed from visit v \
         left join visit_participant vp on vp.visit_id = v.visit_id"
    )
}

/// A row of a sign-in read joined to a visit read: the product of the person's teams and
/// the visit's participants.
#[cfg(makker_pg)]
#[derive(FromRow)]
struct BothRow {
    #[sqlx(flatten)]
    signed: SignedInRow,
    #[sqlx(flatten)]
    visit: AlarmedVisitRow,
}

/// The sign-in rows and the visit rows of one key's product: the rows with its first
/// participant (one per team) and those with its first team (one per participant).
#[cfg(makker_pg)]
fn both_of_rows(rows: Vec<BothRow>) -> (Vec<SignedInRow>, Vec<AlarmedVisitRow>) {
    let Some(first) = rows.first() else {
        return (Vec::new(), Vec::new());
    };
    let (team, participant) = (first.signed.member.member_of, first.visit.row.p_person);
    let (mut signed_in, mut to_change) = (Vec::new(), Vec::new());
    for r in rows {
        let (of_team, of_participant) = (
            r.signed.member.member_of == team,
            r.visit.row.p_person == participant,
        );
        if of_participant {
            signed_in.push(r.signed);
        }
        if of_team {
            to_change.push(r.visit);
        }
    }
    (signed_in, to_change)
}

#[derive(FromRow)]
struct ParticipantRow {
    visit_id: Uuid,
    person_id: Uuid,
    role: String,
    joined_at: DateTime<Utc>,
    left_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct EventRow {
    visit_event_id: i64,
    visit_id: Uuid,
    person_id: Option<Uuid>,
    payload: Json<Effect>,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    client_time: Option<DateTime<Utc>>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(FromRow)]
struct AlarmRow {
    alarm_id: Uuid,
    team_id: Uuid,
    person_id: Uuid,
    visit_id: Option<Uuid>,
    kind: String,
    state: String,
    raised_at: DateTime<Utc>,
    chain: String,
    step: i32,
    acknowledged_by: Option<Uuid>,
    acknowledged_at: Option<DateTime<Utc>>,
    resolved_by: Option<Uuid>,
    resolved_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    note: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    drill: bool,
    version: i32,
}

impl AlarmRow {
    fn into_alarm(self) -> StoreResult<Versioned<Alarm>> {
        let alarm = Alarm {
            id: AlarmId(self.alarm_id),
            team: TeamId(self.team_id),
            person: PersonId(self.person_id),
            visit: self.visit_id.map(VisitId),
            kind: parse(AlarmKind::parse(&self.kind))?,
            state: enum_parse::<AlarmState>(&self.state)?,
            raised_at: self.raised_at,
            chain: self.chain,
            step: to_u32(self.step)?,
            acknowledged_by: self.acknowledged_by.map(PersonId),
            acknowledged_at: self.acknowledged_at,
            resolved_by: self.resolved_by.map(PersonId),
            resolved_at: self.resolved_at,
            outcome: self.outcome,
            note: self.note,
            position: position(self.lat, self.lon),
            drill: self.drill,
        };
        Ok(Versioned {
            value: alarm,
            version: i64::from(self.version),
        })
    }
}

const ALARM_COLUMNS: &str = "alarm_id, team_id, person_id, visit_id, kind, state, raised_at, chain, step, \
     acknowledged_by, acknowledged_at, resolved_by, resolved_at, outcome, note, lat, lon, drill, version";

#[derive(FromRow)]
struct DeadlineRow {
    deadline_id: i64,
    kind: String,
    visit_id: Option<Uuid>,
    alarm_id: Option<Uuid>,
    due_at: DateTime<Utc>,
}

impl DeadlineRow {
    fn into_deadline(self) -> StoreResult<Deadline> {
        Ok(Deadline {
            id: self.deadline_id,
            kind: enum_parse::<DeadlineKind>(&self.kind)?,
            visit: self.visit_id.map(VisitId),
            alarm: self.alarm_id.map(AlarmId),
            due_at: self.due_at,
        })
    }
}

#[derive(FromRow)]
struct MessageRow {
    outbox_id: Uuid,
    dedup_key: String,
    alarm_id: Option<Uuid>,
    visit_id: Option<Uuid>,
    person_id: Uuid,
    channel: String,
    kind: String,
    body: String,
    drill: bool,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    provider: Option<String>,
    provider_ref: Option<String>,
    last_error: Option<String>,
    receipt: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl MessageRow {
    fn into_message(self) -> StoreResult<Message> {
        Ok(Message {
            message: NewMessage {
                id: self.outbox_id,
                dedup_key: self.dedup_key,
                alarm: self.alarm_id.map(AlarmId),
                visit: self.visit_id.map(VisitId),
                person: PersonId(self.person_id),
                channel: enum_parse::<Channel>(&self.channel)?,
                kind: self.kind,
                body: self.body,
                drill: self.drill,
            },
            state: self.state,
            attempts: to_u32(self.attempts)?,
            next_attempt_at: self.next_attempt_at,
            provider: self.provider,
            provider_ref: self.provider_ref,
            last_error: self.last_error,
            receipt: self.receipt,
            created_at: self.created_at,
            sent_at: self.sent_at,
        })
    }
}

const MESSAGE_COLUMNS: &str = "outbox_id, dedup_key, alarm_id, visit_id, person_id, channel, kind, body, drill, \
     state, attempts, next_attempt_at, provider, provider_ref, last_error, receipt, created_at, sent_at";

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: i32) -> StoreResult<u32> {
    parse(u32::try_from(n))
}

/// A table whose due rows are leased to one process at a time (deadlines, outbox).
struct Lease {
    table: &'static str,
    id: &'static str,
    state: &'static str,
    due: &'static str,
}

impl SqlStore {
    /// A store on `pool`, with its committers and readers started (on the current Tokio
    /// runtime); with `keep`, each keeps a connection of its own.
    pub(crate) fn new(pool: Pool<Db>, keep: bool) -> SqlStore {
        let alone = SqlStore {
            pool: pool.clone(),
            saves: None,
            reads: None,
            #[cfg(makker_pg)]
            keys: None,
            own: None,
        };
        let (store, visits) = (alone.keeping(keep), alone.keeping(keep));
        #[cfg(makker_pg)]
        let both = alone.keeping(keep);
        let reads = HotReads {
            visits: reads::Reads::start(Arc::new(move |ids| {
                let store = visits.clone();
                Box::pin(async move { store.visits_to_change(&ids).await })
            })),
            signed_in: reads::Reads::start(Arc::new(move |hashes| {
                let store = store.clone();
                Box::pin(async move { store.signed_in_many(&hashes).await })
            })),
            #[cfg(makker_pg)]
            both: reads::Reads::start(Arc::new(move |keys| {
                let store = both.clone();
                Box::pin(async move { store.signed_in_to_change_many(&keys).await })
            })),
        };
        SqlStore {
            pool,
            saves: Some(group::start(&alone, keep)),
            reads: Some(Arc::new(reads)),
            #[cfg(makker_pg)]
            keys: Some(Arc::new(idempotency::Keys::start(&alone, keep))),
            own: None,
        }
    }

    /// This handle, with a connection of its own to keep if `keep`.
    pub(crate) fn keeping(&self, keep: bool) -> SqlStore {
        self.keeping_set(keep, &[super::OWN_CONNECTION])
    }

    /// [`Self::keeping`], the kept connection set up by `setup`'s statements.
    pub(crate) fn keeping_set(&self, keep: bool, setup: &'static [&'static str]) -> SqlStore {
        let conn = tokio::sync::Mutex::default();
        SqlStore {
            own: keep.then(|| Arc::new(Kept { conn, setup })),
            ..self.clone()
        }
    }

    /// Runs `query` on this handle's own connection if it keeps one (taken from the pool and
    /// set up when it has none, closed after an error), else on the pool.
    pub(crate) async fn fetch_all<'q, R>(
        &self,
        query: sqlx::query::QueryAs<'q, Db, R, <Db as sqlx::Database>::Arguments>,
    ) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        let Some(own) = &self.own else {
            return query.fetch_all(&self.pool).await;
        };
        let mut kept = own.conn.lock().await;
        let mut conn = match kept.take() {
            Some(c) => c,
            None => {
                let mut conn = self.pool.acquire().await?;
                for &setting in own.setup.iter().filter(|s| !s.is_empty()) {
                    sqlx::raw_sql(setting).execute(&mut *conn).await?;
                }
                conn
            }
        };
        let rows = query.fetch_all(&mut *conn).await;
        match rows {
            Ok(_) => *kept = Some(conn),
            // It may be broken, and it is set for these statements alone: the pool opens
            // another in its place.
            Err(_) => drop(conn.close().await),
        }
        rows
    }

    /// Visits to change, each with whether it has alarms not resolved, by id.
    async fn visits_to_change(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, ToChange>> {
        let rows: Vec<AlarmedVisitRow> = self
            .rows_by_key(&to_change_select(), "v.visit_id", "visit_id, p_position", ids)
            .await?;
        let mut visits = HashMap::new();
        for rows in runs(rows, |r| r.row.visit.visit_id) {
            if let Some(v) = to_change_of_rows(rows)? {
                visits.insert(v.0.value.id.0, v);
            }
        }
        Ok(visits)
    }

    /// The device and person signed in with each token hash that has one.
    async fn signed_in_many(&self, hashes: &[String]) -> StoreResult<HashMap<String, SignedIn>> {
        let rows: Vec<SignedInRow> = self
            .rows_by_key(
                &signed_in_select(),
                "d.token_hash",
                "d_token_hash, member_of",
                hashes,
            )
            .await?;
        let mut signed_in = HashMap::new();
        for rows in runs(rows, |r| r.d_token_hash.clone()) {
            if let Some(found) = signed_in_of_rows(rows)? {
                signed_in.insert(found.0.token_hash.clone(), found);
            }
        }
        Ok(signed_in)
    }

    /// [`Self::signed_in_many`] and [`Self::visits_to_change`] of each (token hash, visit id)
    /// pair, in one statement when both exist (each key's rows are its person's teams times
    /// its visit's participants, a handful); a key missing either is read again alone, as a
    /// request that is refused does.
    #[cfg(makker_pg)]
    async fn signed_in_to_change_many(
        &self,
        keys: &[(String, Uuid)],
    ) -> StoreResult<HashMap<(String, Uuid), (Option<SignedIn>, Option<ToChange>)>> {
        let sql = format!(
            "select x.*, y.* from unnest($1::text[], $2::uuid[]) as k(hash, id) \
             cross join lateral ({} where d.token_hash = k.hash offset 0) as x \
             cross join lateral ({} where v.visit_id = k.id offset 0) as y \
             order by d_token_hash, visit_id, member_of, p_position",
            signed_in_select(),
            to_change_select()
        );
        let (hashes, ids): (Vec<String>, Vec<Uuid>) = keys.iter().cloned().unzip();
        let query = sqlx::query_as::<_, BothRow>(sqlx::AssertSqlSafe(sql))
            .bind(hashes)
            .bind(ids);
        let rows = self.fetch_all(query).await.map_err(db_err)?;
        let mut found = HashMap::with_capacity(keys.len());
        let key = |r: &BothRow| (r.signed.d_token_hash.clone(), r.visit.row.visit.visit_id);
        for rows in runs(rows, key) {
            let key = key(&rows[0]);
            let (signed_in, to_change) = both_of_rows(rows);
            found.insert(
                key,
                (signed_in_of_rows(signed_in)?, to_change_of_rows(to_change)?),
            );
        }
        let missing: Vec<&(String, Uuid)> = keys.iter().filter(|k| !found.contains_key(*k)).collect();
        if !missing.is_empty() {
            let hashes: Vec<String> = missing.iter().map(|k| k.0.clone()).collect();
            let ids: Vec<Uuid> = missing.iter().map(|k| k.1).collect();
            let signed_in = self.signed_in_many(&hashes).await?;
            let to_change = self.visits_to_change(&ids).await?;
            for (hash, id) in missing {
                let both = (signed_in.get(hash).cloned(), to_change.get(id).cloned());
                found.insert((hash.clone(), *id), both);
            }
        }
        Ok(found)
    }

    /// Leases up to `limit` rows due at `now` to `owner` until `until`, returning `columns`.
    ///
    /// INVARIANT: a lease is taken in one statement; PostgreSQL skips rows another replica
    /// holds, so replicas share the due rows instead of racing for them. A lapsed lease may
    /// be taken again.
    async fn lease<R>(
        &self,
        l: Lease,
        columns: &str,
        now: DateTime<Utc>,
        owner: &str,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<R>>
    where
        R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        let Lease {
            table,
            id,
            state,
            due,
        } = l;
        let sql = format!(
            "update {table} set claimed_by = $2, claim_expires_at = $3 where {id} in (\
             select {id} from {table} where state = '{state}' and {due} <= $1 \
             and (claim_expires_at is null or claim_expires_at < $1) order by {due} limit $4{SKIP_LOCKED}) \
             returning {columns}"
        );
        let mut tx = self.begin().await?;
        let rows: Vec<R> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(owner)
            .bind(until)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(rows)
    }

    /// The rows of `select` whose `key` is one of `keys`, ordered by `order` (names of its
    /// output). On PostgreSQL the keys are one array, each looked up on its own (`lateral`):
    /// one statement text for any count, and an index lookup by construction. As a join of
    /// the array (or an `in` list), the planner's default costs scanned a table of a thousand
    /// devices or participants to find a dozen of them, and planned afresh for many counts.
    /// (`offset 0` keeps the subquery from being flattened back into such a join.)
    #[cfg(makker_pg)]
    async fn rows_by_key<K, R>(&self, select: &str, key: &str, order: &str, keys: &[K]) -> StoreResult<Vec<R>>
    where
        K: Clone,
        Vec<K>: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db> + Send,
        R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        let sql = format!(
            "select x.* from unnest($1) as k(key) cross join lateral \
             ({select} where {key} = k.key offset 0) as x order by {order}"
        );
        let query = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql)).bind(keys.to_vec());
        self.fetch_all(query).await.map_err(db_err)
    }

    /// [`Self::rows_by_key`] elsewhere: an `in` list.
    #[cfg(not(makker_pg))]
    async fn rows_by_key<K, R>(&self, select: &str, key: &str, order: &str, keys: &[K]) -> StoreResult<Vec<R>>
    where
        K: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db> + Clone + Send + Sync,
        R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        let sql = format!("select * from ({select} where {key} in ({{ids}})) as x order by {order}");
        self.rows_for_ids(&sql, keys).await
    }

    /// The rows of `sql` for many keys, [`IN_LIST_MAX`] at a time: `{ids}` in `sql` becomes
    /// the placeholders of one chunk (bind arrays are PostgreSQL's alone). A chunk is padded
    /// to a power of two by repeating a key, so that a few statement texts serve every count
    /// (each text is prepared and planned on each connection).
    async fn rows_for_ids<K, R>(&self, sql: &str, ids: &[K]) -> StoreResult<Vec<R>>
    where
        K: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db> + Clone + Send + Sync,
        R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_LIST_MAX) {
            let n = chunk.len().next_power_of_two();
            let sql = sql.replace("{ids}", &placeholders(n));
            let mut query = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql));
            for id in chunk
                .iter()
                .chain(std::iter::repeat_n(&chunk[0], n - chunk.len()))
            {
                query = query.bind(id.clone());
            }
            out.extend(self.fetch_all(query).await.map_err(db_err)?);
        }
        Ok(out)
    }

    /// The rows of `sql` (a fixed text, never input) for the id it binds as `$1`.
    async fn rows_of<R>(&self, sql: String, id: Uuid) -> StoreResult<Vec<R>>
    where
        R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    /// Commits, then notifies in a statement of its own. A NOTIFY inside a write transaction
    /// holds PostgreSQL's notify lock through that commit's WAL flush, so every such commit
    /// of every process waits for the one before: a few hundred a second at most, where
    /// commits could share flushes. A notification is a hint (listeners also poll), so one
    /// that fails after the commit is logged, not an error of the committed change.
    async fn commit_then_notify(&self, tx: Tx, n: Notices) -> StoreResult<()> {
        tx.commit().await.map_err(db_err)?;
        self.notify_committed(n).await;
        Ok(())
    }

    /// Tells the other processes of what was just committed, if anything.
    async fn notify_committed(&self, n: Notices) {
        if n.statements().next().is_none() {
            return;
        }
        let sent = match self.pool.acquire().await {
            Ok(mut conn) => notify(&mut conn, n).await,
            Err(e) => Err(db_err(e)),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "committed, but could not notify the other processes");
        }
    }

    async fn begin(&self) -> StoreResult<Tx> {
        self.pool.begin_with(BEGIN_WRITE).await.map_err(db_err)
    }

    async fn person_teams(&self, person: Uuid) -> StoreResult<Vec<TeamId>> {
        let rows: Vec<(Uuid,)> =
            sqlx::query_as("select team_id from team_member where person_id = $1 order by team_id")
                .bind(person)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| TeamId(r.0)).collect())
    }

    async fn person_from(&self, r: PersonRow) -> StoreResult<Person> {
        let teams = self.person_teams(r.person_id).await?;
        person_with(r, teams)
    }

    /// The one person whose `column` (a fixed name, never input) equals `value`.
    async fn person_by(&self, column: &'static str, value: &str) -> StoreResult<Person> {
        let sql = format!("select {PERSON_COLUMNS} from person p where p.{column} = $1");
        let mut rows: Vec<PersonRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        match (rows.pop(), rows.is_empty()) {
            (Some(row), true) => self.person_from(row).await,
            // Two people sharing a phone number cannot be told apart by an SMS.
            _ => Err(StoreError::NotFound),
        }
    }

    async fn people_where(&self, condition: &'static str, id: Uuid) -> StoreResult<Vec<Person>> {
        let sql = format!("select {PERSON_COLUMNS} from person p {condition} order by p.display_name");
        let rows: Vec<PersonRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        self.with_teams(rows).await
    }

    /// Several visits with their participants in two queries (a batch of firings).
    async fn load_visits(&self, ids: &[Uuid]) -> StoreResult<Vec<Versioned<Visit>>> {
        let rows: Vec<VisitRow> = self
            .rows_for_ids(
                &format!("select {VISIT_COLUMNS} from visit v where v.visit_id in ({{ids}})"),
                ids,
            )
            .await?;
        self.with_participants(rows).await
    }

    /// The visits of `rows`, in their order, with their participants read in one query.
    async fn with_participants(&self, rows: Vec<VisitRow>) -> StoreResult<Vec<Versioned<Visit>>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.visit_id).collect();
        let parts: Vec<ParticipantRow> = self
            .rows_for_ids(
                "select visit_id, person_id, role, joined_at, left_at from visit_participant \
                 where visit_id in ({ids}) order by visit_id, position",
                &ids,
            )
            .await?;
        let mut by_visit: HashMap<Uuid, Vec<ParticipantRow>> = HashMap::new();
        for p in parts {
            by_visit.entry(p.visit_id).or_default().push(p);
        }
        rows.into_iter()
            .map(|r| {
                let parts = by_visit.remove(&r.visit_id).unwrap_or_default();
                visit_with(r, parts)
            })
            .collect()
    }

    /// Several people with their teams in two queries (a batch of firings).
    async fn load_people(&self, ids: &[Uuid]) -> StoreResult<Vec<Person>> {
        let rows: Vec<PersonRow> = self
            .rows_for_ids(
                &format!("select {PERSON_COLUMNS} from person p where p.person_id in ({{ids}})"),
                ids,
            )
            .await?;
        self.with_teams(rows).await
    }

    /// The people of `rows`, in their order, with their teams read in one query.
    async fn with_teams(&self, rows: Vec<PersonRow>) -> StoreResult<Vec<Person>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.person_id).collect();
        let members: Vec<(Uuid, Uuid)> = self
            .rows_for_ids(
                "select person_id, team_id from team_member where person_id in ({ids}) order by team_id",
                &ids,
            )
            .await?;
        let mut teams: HashMap<Uuid, Vec<TeamId>> = HashMap::new();
        for (person, team) in members {
            teams.entry(person).or_default().push(TeamId(team));
        }
        rows.into_iter()
            .map(|r| {
                let of = teams.remove(&r.person_id).unwrap_or_default();
                person_with(r, of)
            })
            .collect()
    }
}

/// A visit from its row and its participants' rows (in position order).
fn visit_with(r: VisitRow, parts: Vec<ParticipantRow>) -> StoreResult<Versioned<Visit>> {
    let mut participants = Vec::with_capacity(parts.len());
    for p in parts {
        participants.push(Participant {
            person: PersonId(p.person_id),
            role: enum_parse::<ParticipantRole>(&p.role)?,
            joined_at: p.joined_at,
            left_at: p.left_at,
        });
    }
    let visit = Visit {
        id: VisitId(r.visit_id),
        team: TeamId(r.team_id),
        kind: parse(VisitKind::parse(&r.kind))?,
        place: PlaceId(r.place_id),
        state: enum_parse::<VisitState>(&r.state)?,
        risk: Assessed {
            points: to_u32(r.points)?,
            level: parse(RiskLevel::parse(&r.level))?,
        },
        participants,
        started_at: r.started_at,
        planned_end: r.planned_end,
        last_check_in_at: r.last_check_in_at,
        last_seen_at: r.last_seen_at,
        ended_at: r.ended_at,
        terms: Terms {
            min_participants: parse(u8::try_from(r.min_participants))?,
            check_in_minutes: to_u32(r.check_in_minutes)?,
            max_minutes: to_u32(r.max_minutes)?,
            grace_minutes: to_u32(r.grace_minutes)?,
            tell_colleague_on_exit: r.tell_colleague_on_exit,
            chain: r.chain,
            break_check_in_minutes: to_u32(r.break_check_in_minutes)?,
        },
        lone_reason: r.lone_reason,
        approved_by: r.approved_by.map(PersonId),
        tell_colleague: r.tell_colleague.map(PersonId),
        alone_since: r.alone_since,
    };
    Ok(Versioned {
        value: visit,
        version: r.version,
    })
}

/// A person from its row and teams.
fn person_with(r: PersonRow, teams: Vec<TeamId>) -> StoreResult<Person> {
    Ok(Person {
        id: PersonId(r.person_id),
        username: r.username,
        display_name: r.display_name,
        role: parse(Role::parse(&r.role))?,
        phone: r.phone,
        lang: enum_parse::<Lang>(&r.lang)?,
        teams,
        password_hash: r.password_hash,
        pin_hash: r.pin_hash,
        duress_pin_hash: r.duress_pin_hash,
        created_at: r.created_at,
    })
}

const VISIT_COLUMNS: &str = "v.visit_id, v.team_id, v.place_id, v.kind, v.state, v.points, v.level, \
     v.started_at, v.planned_end, v.last_check_in_at, v.last_seen_at, v.ended_at, v.min_participants, v.check_in_minutes, \
     v.max_minutes, v.grace_minutes, v.tell_colleague_on_exit, v.chain, v.lone_reason, v.approved_by, \
     v.tell_colleague, v.alone_since, v.break_check_in_minutes, v.version";

/// Rows per multi-row insert: one statement for what would be hundreds of round trips, well
/// under SQLite's and PostgreSQL's parameter limits.
const ROWS_PER_INSERT: usize = 500;

/// Inserts `rows` with one statement per [`ROWS_PER_INSERT`]: `head` is `insert into t (…) `,
/// `tail` follows the values (`on conflict …`), `bind` pushes one row's values in order.
async fn insert_rows<T>(
    tx: &mut Tx,
    head: &str,
    tail: &str,
    rows: &[T],
    bind: impl Fn(&mut Separated<'_, Db, &'static str>, &T),
) -> StoreResult<()> {
    for mut q in inserts(head, tail, rows, bind) {
        q.build().execute(&mut **tx).await.map_err(db_err)?;
    }
    Ok(())
}

/// [`insert_rows`] for a statement whose `tail` ends in `returning …` (an insert, or an
/// update from the rows as `with … (values …)`): the rows it returns.
async fn rows_returning<T, R>(
    tx: &mut Tx,
    head: &str,
    tail: &str,
    rows: &[T],
    bind: impl Fn(&mut Separated<'_, Db, &'static str>, &T),
) -> StoreResult<Vec<R>>
where
    R: for<'r> FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
{
    let mut out = Vec::with_capacity(rows.len());
    for mut q in inserts(head, tail, rows, bind) {
        out.extend(
            q.build_query_as::<R>()
                .fetch_all(&mut **tx)
                .await
                .map_err(db_err)?,
        );
    }
    Ok(out)
}

/// The statements of [`insert_rows`], one per [`ROWS_PER_INSERT`] rows.
fn inserts<T>(
    head: &str,
    tail: &str,
    rows: &[T],
    bind: impl Fn(&mut Separated<'_, Db, &'static str>, &T),
) -> Vec<QueryBuilder<Db>> {
    rows.chunks(ROWS_PER_INSERT)
        .map(|chunk| {
            let mut q = QueryBuilder::<Db>::new(head);
            q.push_values(chunk, |mut b, row| bind(&mut b, row));
            q.push(tail);
            q
        })
        .collect()
}

/// Writes participants' presence: new ones are inserted, known ones get their `left_at`.
async fn write_participants(tx: &mut Tx, visits: &[&Visit], now: DateTime<Utc>) -> StoreResult<()> {
    let rows: Vec<(VisitId, usize, &Participant)> = visits
        .iter()
        .flat_map(|v| v.participants.iter().enumerate().map(|(i, p)| (v.id, i, p)))
        .collect();
    insert_rows(
        tx,
        "insert into visit_participant (visit_id, person_id, position, role, joined_at, left_at, created_at) ",
        // A check-in rewrites no participant that stayed as it was.
        " on conflict (visit_id, person_id) do update set left_at = excluded.left_at \
         where visit_participant.left_at is distinct from excluded.left_at",
        &rows,
        |b, (visit, position, p)| {
            b.push_bind(visit.0)
                .push_bind(p.person.0)
                .push_bind(i32::try_from(*position).unwrap_or(i32::MAX))
                .push_bind(enum_str(&p.role))
                .push_bind(p.joined_at)
                .push_bind(p.left_at)
                .push_bind(now);
        },
    )
    .await
}

/// Appends events to their visits' logs.
async fn write_events(tx: &mut Tx, events: &[&NewEvent]) -> StoreResult<()> {
    let head = format!("insert into visit_event ({EVENT_COLUMNS}) ");
    insert_rows(tx, &head, "", events, bind_event).await
}

/// The columns of a visit event, in the order [`bind_event`] binds them (the visit first).
const EVENT_COLUMNS: &str =
    "visit_id, person_id, kind, payload, occurred_at, received_at, client_time, lat, lon, created_at";

fn bind_event(b: &mut Separated<'_, Db, &'static str>, e: &&NewEvent) {
    let position = e.stamp.position;
    b.push_bind(e.visit.0)
        .push_bind(e.person.map(|p| p.0))
        .push_bind(e.effect.kind())
        .push_bind(Json(&e.effect))
        .push_bind(e.stamp.occurred_at())
        .push_bind(e.stamp.received_at)
        .push_bind(e.stamp.client_time)
        .push_bind(position.map(|p| p.lat))
        .push_bind(position.map(|p| p.lon))
        .push_bind(e.stamp.received_at);
}

async fn insert_alarms(tx: &mut Tx, alarms: &[&Alarm]) -> StoreResult<()> {
    insert_rows(
        tx,
        "insert into alarm (alarm_id, team_id, person_id, visit_id, kind, state, raised_at, chain, step, \
         lat, lon, drill, version, created_at) ",
        "",
        alarms,
        |b, a| {
            b.push_bind(a.id.0)
                .push_bind(a.team.0)
                .push_bind(a.person.0)
                .push_bind(a.visit.map(|v| v.0))
                .push_bind(a.kind.as_str())
                .push_bind(enum_str(&a.state))
                .push_bind(a.raised_at)
                .push_bind(a.chain.clone())
                .push_bind(to_i32(a.step))
                .push_bind(a.position.map(|p| p.lat))
                .push_bind(a.position.map(|p| p.lon))
                .push_bind(a.drill)
                .push_bind(1_i32)
                .push_bind(a.raised_at);
        },
    )
    .await
}

/// INVARIANT: the version check and the write are one statement (optimistic lock).
async fn save_alarm(tx: &mut Tx, a: &Alarm, version: i64) -> StoreResult<()> {
    let done = sqlx::query(
        "update alarm set state = $3, step = $4, acknowledged_by = $5, acknowledged_at = $6, resolved_by = $7, \
         resolved_at = $8, outcome = $9, note = $10, version = version + 1 \
         where alarm_id = $1 and version = $2",
    )
    .bind(a.id.0)
    .bind(i32::try_from(version).unwrap_or(i32::MAX))
    .bind(enum_str(&a.state))
    .bind(to_i32(a.step))
    .bind(a.acknowledged_by.map(|p| p.0))
    .bind(a.acknowledged_at)
    .bind(a.resolved_by.map(|p| p.0))
    .bind(a.resolved_at)
    .bind(&a.outcome)
    .bind(&a.note)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict {
            constraint: constraint::ALARM_VERSION.into(),
        });
    }
    Ok(())
}

async fn arm(tx: &mut Tx, deadlines: &[&NewDeadline], now: DateTime<Utc>) -> StoreResult<()> {
    let head = format!("insert into deadline ({DEADLINE_COLUMNS}) ");
    insert_rows(tx, &head, "", deadlines, |b, d| bind_deadline(b, d, now)).await
}

/// The columns of a new deadline, in the order [`bind_deadline`] binds them.
const DEADLINE_COLUMNS: &str = "kind, visit_id, alarm_id, due_at, state, created_at";

fn bind_deadline(b: &mut Separated<'_, Db, &'static str>, d: &NewDeadline, now: DateTime<Utc>) {
    b.push_bind(enum_str(&d.kind))
        .push_bind(d.visit.map(|v| v.0))
        .push_bind(d.alarm.map(|a| a.0))
        .push_bind(d.due_at)
        .push_bind("armed")
        .push_bind(now);
}

/// Records a change for the live boards, in the change's own transaction; other processes
/// hear of it at commit (PostgreSQL NOTIFY).
async fn live<T: serde::Serialize>(
    tx: &mut Tx,
    team: TeamId,
    kind: &str,
    payload: &T,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    live_row(tx, team, kind, payload, now).await?;
    let n = Notices {
        live: true,
        armed: false,
    };
    notify(tx, n).await
}

/// `live_event_id, team_id, kind, payload, created_at`.
type LiveRow = (i64, Uuid, String, Json<serde_json::Value>, DateTime<Utc>);

fn live_event((id, team, kind, payload, at): LiveRow) -> LiveEvent {
    LiveEvent {
        id,
        team: TeamId(team),
        kind,
        payload: payload.0,
        at,
    }
}

/// The live event's row alone; the caller notifies.
async fn live_row<T: serde::Serialize>(
    tx: &mut Tx,
    team: TeamId,
    kind: &str,
    payload: &T,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    live_rows(tx, kind, &[(team, payload)], now).await
}

/// Live events of one kind, one row per (team, payload), in one statement; the caller notifies.
async fn live_rows<T: serde::Serialize>(
    tx: &mut Tx,
    kind: &str,
    rows: &[(TeamId, &T)],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let head = format!("insert into live_event ({LIVE_COLUMNS}) ");
    insert_rows(tx, &head, "", rows, |b, (team, payload)| {
        bind_live(b, *team, kind, payload, now)
    })
    .await
}

/// The columns of a live event, in the order [`bind_live`] binds them.
const LIVE_COLUMNS: &str = "team_id, kind, payload, created_at";

fn bind_live<T: serde::Serialize>(
    b: &mut Separated<'_, Db, &'static str>,
    team: TeamId,
    kind: &str,
    payload: &T,
    now: DateTime<Utc>,
) {
    b.push_bind(team.0)
        .push_bind(kind.to_owned())
        .push_bind(Json(payload))
        .push_bind(now);
}

async fn write_audit(tx: &mut Tx, entries: &[&AuditEntry]) -> StoreResult<()> {
    insert_rows(
        tx,
        "insert into audit_log (at, actor_id, action, subject_id, object) ",
        "",
        entries,
        |b, e| {
            b.push_bind(e.at)
                .push_bind(e.actor.map(|p| p.0))
                .push_bind(e.action.clone())
                .push_bind(e.subject.map(|p| p.0))
                .push_bind(e.object.clone());
        },
    )
    .await
}

/// Ids bound per `in (…)` list: well under SQLite's and PostgreSQL's parameter limits.
const IN_LIST_MAX: usize = 500;

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Rounds of sending messages: each round counts as one attempt of its message; each
/// provider that failed over gets its own line, so supervisors see the failure even when the
/// failover delivered. One update of the messages and one insert of the lines per
/// [`ROWS_PER_INSERT`] rounds: two statements a message would cap the dispatcher at a few
/// thousand messages a second.
async fn record_deliveries(tx: &mut Tx, deliveries: &[Delivery], now: DateTime<Utc>) -> StoreResult<()> {
    for chunk in deliveries.chunks(ROWS_PER_INSERT) {
        let attempts = count_attempts(tx, chunk, now).await?;
        let lines: Vec<(Uuid, i32, &str, &str, Option<&str>)> = chunk
            .iter()
            .flat_map(|d| {
                let attempt = attempts.get(&d.message).copied().unwrap_or_default();
                let failed_over = d
                    .failed_over
                    .iter()
                    .map(|(p, e)| (p.as_str(), "failed", Some(e.as_str())));
                let (provider, outcome, detail) = match &d.attempt {
                    Attempt::Sent {
                        provider,
                        provider_ref,
                    } => (provider, "sent", provider_ref.as_deref()),
                    Attempt::Retry { provider, error, .. } => (provider, "retry", Some(error.as_str())),
                    Attempt::Failed { provider, error } => (provider, "failed", Some(error.as_str())),
                };
                failed_over
                    .chain(std::iter::once((provider.as_str(), outcome, detail)))
                    .map(move |(p, o, detail)| (d.message, attempt, p, o, detail))
            })
            .collect();
        insert_rows(
            tx,
            "insert into outbox_attempt (outbox_id, attempt, provider, outcome, detail, created_at) ",
            "",
            &lines,
            |b, (message, attempt, provider, outcome, detail)| {
                b.push_bind(*message)
                    .push_bind(*attempt)
                    .push_bind(provider.to_string())
                    .push_bind(*outcome)
                    .push_bind(detail.map(str::to_owned))
                    .push_bind(now);
            },
        )
        .await?;
    }
    Ok(())
}

/// Counts a round against each message and sets what it came to: sent, tried again at
/// `next`, or failed. Returns each message's attempt number.
async fn count_attempts(
    tx: &mut Tx,
    rounds: &[Delivery],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<Uuid, i32>> {
    let mut update =
        QueryBuilder::<Db>::new("with d (d_id, d_state, d_sent_at, d_next, d_provider, d_ref, d_error) as (");
    update.push_values(rounds, |mut b, d| {
        let (state, sent_at, next, provider, provider_ref, error) = match &d.attempt {
            Attempt::Sent {
                provider,
                provider_ref,
            } => ("sent", Some(now), None, provider, provider_ref.clone(), None),
            Attempt::Retry {
                provider,
                error,
                next,
            } => ("pending", None, Some(*next), provider, None, Some(error.clone())),
            Attempt::Failed { provider, error } => {
                ("failed", None, None, provider, None, Some(error.clone()))
            }
        };
        b.push_bind(d.message)
            .push_bind(state)
            .push_bind(sent_at)
            .push_bind(next)
            .push_bind(provider.clone())
            .push_bind(provider_ref)
            .push_bind(error);
    });
    update.push(
        ") update outbox set attempts = attempts + 1, claimed_by = null, claim_expires_at = null, \
         state = d_state, sent_at = coalesce(d_sent_at, sent_at), next_attempt_at = coalesce(d_next, next_attempt_at), \
         provider = d_provider, provider_ref = case when d_state = 'sent' then d_ref else provider_ref end, \
         last_error = coalesce(d_error, last_error) \
         from d where outbox_id = d_id returning outbox_id, attempts",
    );
    let counted: Vec<(Uuid, i32)> = update
        .build_query_as()
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
    if counted.len() < rounds.len() {
        // A message recorded must exist: the whole batch is left to its lease instead.
        return Err(StoreError::NotFound);
    }
    Ok(counted.into_iter().collect())
}

/// Writes a new visit, its assessment (unless `reused`), the approval it used, and its changes,
/// inside `tx`.
async fn write_new_visit(
    tx: &mut Tx,
    v: &Visit,
    a: &Assessment,
    reused: bool,
    approval_used: Option<Uuid>,
    changes: &Changes,
) -> StoreResult<()> {
    for p in v.present() {
        let busy: Option<(Uuid,)> =
            sqlx::query_as("select visit_id from visit_participant where person_id = $1 and left_at is null")
                .bind(p.person.0)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?;
        if busy.is_some() {
            return Err(StoreError::Conflict {
                constraint: constraint::ONE_ACTIVE_VISIT.into(),
            });
        }
    }
    if !reused {
        sqlx::query(
            "insert into assessment (assessment_id, place_id, team_id, person_id, answers, points, \
             level, assessed_at, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(a.id.0)
        .bind(a.place.0)
        .bind(a.team.0)
        .bind(a.by.0)
        .bind(Json(&a.answers))
        .bind(to_i32(a.result.points))
        .bind(a.result.level.as_str())
        .bind(a.assessed_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    if let Some(id) = approval_used {
        // INVARIANT: an approval is used once; a second use finds no unused row.
        let used = sqlx::query(
            "update lone_approval set used_at = $2 where lone_approval_id = $1 and used_at is null",
        )
        .bind(id)
        .bind(v.started_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
        if used.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                constraint: "lone_approval_used".into(),
            });
        }
    }
    sqlx::query(
        "insert into visit (visit_id, team_id, place_id, assessment_id, kind, state, points, level, \
         started_at, planned_end, last_check_in_at, ended_at, min_participants, check_in_minutes, \
         max_minutes, grace_minutes, tell_colleague_on_exit, chain, lone_reason, approved_by, \
         tell_colleague, version, created_at, last_seen_at, break_check_in_minutes) values ($1, $2, $3, $4, $5, \
         $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 1, $9, $11, $22)",
    )
    .bind(v.id.0)
    .bind(v.team.0)
    .bind(v.place.0)
    .bind(a.id.0)
    .bind(v.kind.as_str())
    .bind(enum_str(&v.state))
    .bind(to_i32(v.risk.points))
    .bind(v.risk.level.as_str())
    .bind(v.started_at)
    .bind(v.planned_end)
    .bind(v.last_check_in_at)
    .bind(v.ended_at)
    .bind(i32::from(v.terms.min_participants))
    .bind(to_i32(v.terms.check_in_minutes))
    .bind(to_i32(v.terms.max_minutes))
    .bind(to_i32(v.terms.grace_minutes))
    .bind(v.terms.tell_colleague_on_exit)
    .bind(&v.terms.chain)
    .bind(&v.lone_reason)
    .bind(v.approved_by.map(|p| p.0))
    .bind(v.tell_colleague.map(|p| p.0))
    .bind(to_i32(v.terms.break_check_in_minutes))
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    write_participants(tx, &[v], v.started_at).await?;
    apply_changes(tx, changes, v.started_at).await?;
    live(tx, v.team, "visit", v, v.started_at).await?;
    Ok(())
}

/// What a commit tells the other processes (PostgreSQL NOTIFY; nothing on SQLite).
#[derive(Debug, Clone, Copy, Default)]
struct Notices {
    /// Live events were written.
    live: bool,
    /// A deadline falls due within `WAKE_HORIZON`.
    armed: bool,
}

impl Notices {
    /// What any of `all` calls for.
    fn of_all(all: &[&Changes], now: DateTime<Utc>) -> Notices {
        all.iter().fold(Notices::default(), |n, c| {
            let m = Notices::of(c, now);
            Notices {
                live: n.live || m.live,
                armed: n.armed || m.armed,
            }
        })
    }

    fn of(c: &Changes, now: DateTime<Utc>) -> Notices {
        Notices {
            live: !c.new_alarms.is_empty() || !c.saved_alarms.is_empty(),
            armed: c.arms_soon(now),
        }
    }

    /// The statements that send these notifications (none on SQLite).
    fn statements(self) -> impl Iterator<Item = &'static str> {
        [(self.live, super::NOTIFY_LIVE), (self.armed, super::NOTIFY_ARMED)]
            .into_iter()
            .filter(|(wanted, sql)| *wanted && !sql.is_empty())
            .map(|(_, sql)| sql)
    }
}

/// Sends `n`'s notifications on `conn`: inside a transaction they go out at its commit.
async fn notify(conn: &mut <Db as sqlx::Database>::Connection, n: Notices) -> StoreResult<()> {
    for sql in n.statements() {
        sqlx::query(sql).execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// [`apply_quietly`], and the notifications at commit.
async fn apply_changes(tx: &mut Tx, c: &Changes, now: DateTime<Utc>) -> StoreResult<()> {
    apply_quietly(tx, &[c], now, None).await?;
    notify(tx, Notices::of(c, now)).await
}

/// Every item of every change, for one multi-row write per table.
fn each<'a, T>(all: &[&'a Changes], items: impl Fn(&'a Changes) -> &'a [T]) -> Vec<&'a T> {
    all.iter().flat_map(|c| items(c)).collect()
}

/// Writes what one or more transitions caused, one statement per table (and per
/// [`ROWS_PER_INSERT`] rows) however many changes: a batch of fired deadlines costs about
/// what one does. Without notifying anyone: the hot paths (check-ins, firing deadlines)
/// notify after their commit instead (`SqlStore::commit_then_notify`).
///
/// INVARIANT: the changes are of different visits and alarms (each is written as if alone),
/// and timers are cancelled before any is armed.
///
/// With `hand_over`, the messages queued are leased to its owner and returned (those
/// inserted: a dedup key already queued keeps its own row and lease).
async fn apply_quietly(
    tx: &mut Tx,
    all: &[&Changes],
    now: DateTime<Utc>,
    hand_over: Option<&HandOver>,
) -> StoreResult<Vec<Message>> {
    write_events(tx, &each(all, |c| &c.events)).await?;
    write_audit(tx, &each(all, |c| &c.audit)).await?;
    insert_alarms(tx, &each(all, |c| &c.new_alarms)).await?;
    for a in each(all, |c| &c.saved_alarms) {
        save_alarm(tx, &a.value, a.version).await?;
    }
    let alarms: Vec<(TeamId, &Alarm)> = each(all, |c| &c.new_alarms)
        .into_iter()
        .chain(each(all, |c| &c.saved_alarms).into_iter().map(|a| &a.value))
        .map(|a| (a.team, a))
        .collect();
    live_rows(tx, "alarm", &alarms, now).await?;
    let timers: Vec<&(VisitId, Vec<NewDeadline>)> =
        all.iter().filter_map(|c| c.visit_timers.as_ref()).collect();
    let unmoved = replace_visit_timers(tx, &timers).await?;
    // A visit that is over: a reminder still waiting for its provider (down, or answering 429)
    // is no longer relevant and must not reach the worker later.
    let over: Vec<Uuid> = timers
        .iter()
        .filter(|(_, t)| t.is_empty())
        .map(|(v, _)| v.0)
        .collect();
    update_in(
        tx,
        "update outbox set state = 'cancelled' where state = 'pending' and kind = 'reminder' \
         and visit_id in ({ids})",
        &over,
    )
    .await?;
    let calm: Vec<Uuid> = each(all, |c| &c.calm_alarms).iter().map(|a| a.0).collect();
    update_in(
        tx,
        "update deadline set state = 'cancelled' where state = 'armed' and alarm_id in ({ids})",
        &calm,
    )
    .await?;
    // Someone is on it: calls for help not yet sent are no longer relevant.
    update_in(
        tx,
        "update outbox set state = 'cancelled' where state = 'pending' and kind in ('alarm', 'follow_up') \
         and alarm_id in ({ids})",
        &calm,
    )
    .await?;
    let mut deadlines = unmoved;
    deadlines.extend(each(all, |c| &c.arm));
    arm(tx, &deadlines, now).await?;
    queue_messages(tx, &each(all, |c| &c.outbox), now, hand_over).await
}

/// The kinds of a visit's own timers; `visit_timers` replaces all of them.
const VISIT_TIMER_KINDS: [DeadlineKind; 3] = [
    DeadlineKind::Reminder,
    DeadlineKind::Overdue,
    DeadlineKind::Silence,
];

/// Replaces the armed timers of these visits with the given ones, in one statement: a timer
/// of a kind still needed is moved in place (one row version, not a cancelled row and a new
/// one each check-in), one of a kind no longer needed is cancelled. Answers the timers that
/// had no armed row to move, to insert.
///
/// A move clears the lease, so a firing decided on the old due time finds its fence
/// (`claimed_by`, `due_at`) broken and writes nothing, as it would for a cancelled row.
async fn replace_visit_timers<'a>(
    tx: &mut Tx,
    timers: &[&'a (VisitId, Vec<NewDeadline>)],
) -> StoreResult<Vec<&'a NewDeadline>> {
    let replaced: Vec<(Uuid, String, String)> = rows_returning(
        tx,
        "with timers (t_visit, t_kind, t_due) as (",
        &format!(") {MOVE_TIMERS}"),
        &timer_rows(timers),
        bind_timer,
    )
    .await?;
    let moved: HashSet<(Uuid, &str)> = replaced
        .iter()
        .filter(|(_, _, state)| state == "armed")
        .map(|(v, k, _)| (*v, k.as_str()))
        .collect();
    Ok(timers
        .iter()
        .flat_map(|(_, t)| t)
        .filter(|d| !d.visit.is_some_and(|v| moved.contains(&(v.0, d.kind.as_str()))))
        .collect())
}

/// A claimed idempotency key with no answer after this is taken again by the same request. A
/// handler answers within seconds (a database connection is waited for at most 10 s), so by then
/// the process that claimed it most likely died midway. Should a slow handler still be running,
/// the replay runs the request a second time (for a check-in: one more, at the phone's time).
/// Without the lapse, one crash would leave the key a 409 for good and the phone's queue stuck.
const IDEMPOTENCY_CLAIM_LAPSES: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// What became of a key already held, by a request the same as the one asking or not.
fn idempotency_of(same_request: bool, status: Option<i32>, body: Option<String>) -> StoreResult<Idempotency> {
    Ok(match (same_request, status, body) {
        (false, _, _) => Idempotency::Mismatch,
        (true, Some(status), Some(body)) => Idempotency::Done {
            status: parse(u16::try_from(status))?,
            body,
        },
        (true, _, _) => Idempotency::InProgress,
    })
}

/// Moves or cancels the armed timers named in `timers (t_visit, t_kind, t_due)`; returns
/// each row's visit, kind and state after.
const MOVE_TIMERS: &str = "update deadline set due_at = coalesce(t_due, due_at), \
     state = case when t_due is null then 'cancelled' else state end, \
     claimed_by = null, claim_expires_at = null from timers \
     where state = 'armed' and visit_id = t_visit and kind = t_kind returning visit_id, kind, state";

/// A visit's timer of one kind and its new due time, or none to cancel it.
type TimerRow = (Uuid, DeadlineKind, Option<DateTime<Utc>>);

/// Every kind of every visit's timers: its new due time, or none to cancel it.
fn timer_rows(timers: &[&(VisitId, Vec<NewDeadline>)]) -> Vec<TimerRow> {
    timers
        .iter()
        .flat_map(|(visit, wanted)| {
            VISIT_TIMER_KINDS.iter().map(|&kind| {
                let due = wanted.iter().find(|t| t.kind == kind).map(|t| t.due_at);
                (visit.0, kind, due)
            })
        })
        .collect()
}

fn bind_timer(b: &mut Separated<'_, Db, &'static str>, (visit, kind, due): &TimerRow) {
    b.push_bind(*visit).push_bind(kind.as_str()).push_bind(*due);
}

/// Queues messages, leased to `hand_over`'s owner if given; returns those leased.
///
/// INVARIANT: the dedup key makes a second (alarm, step, recipient, channel) a no-op.
async fn queue_messages(
    tx: &mut Tx,
    messages: &[&NewMessage],
    now: DateTime<Utc>,
    hand_over: Option<&HandOver>,
) -> StoreResult<Vec<Message>> {
    let head = "insert into outbox (outbox_id, dedup_key, alarm_id, visit_id, person_id, channel, kind, body, drill, \
         state, attempts, next_attempt_at, created_at, claimed_by, claim_expires_at) ";
    let tail = " on conflict (dedup_key) do nothing";
    let (owner, until) = (hand_over.map(|h| h.owner.clone()), hand_over.map(|h| h.until));
    let bind = |b: &mut Separated<'_, Db, &'static str>, m: &&NewMessage| {
        b.push_bind(m.id)
            .push_bind(m.dedup_key.clone())
            .push_bind(m.alarm.map(|a| a.0))
            .push_bind(m.visit.map(|v| v.0))
            .push_bind(m.person.0)
            .push_bind(enum_str(&m.channel))
            .push_bind(m.kind.clone())
            .push_bind(m.body.clone())
            .push_bind(m.drill)
            .push_bind("pending")
            .push_bind(0_i32)
            .push_bind(now)
            .push_bind(now)
            .push_bind(owner.clone())
            .push_bind(until);
    };
    if hand_over.is_none() {
        insert_rows(tx, head, tail, messages, bind).await?;
        return Ok(vec![]);
    }
    let returning = format!("{tail} returning {MESSAGE_COLUMNS}");
    let rows: Vec<MessageRow> = rows_returning(tx, head, &returning, messages, bind).await?;
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// Runs `sql` (with `{ids}` in an `in (…)` list) for `ids`, [`IN_LIST_MAX`] at a time, in
/// their order; rows it returns are dropped.
async fn update_in(tx: &mut Tx, sql: &str, ids: &[Uuid]) -> StoreResult<()> {
    for chunk in ids.chunks(IN_LIST_MAX) {
        let sql = sql.replace("{ids}", &placeholders(chunk.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await.map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn migrate(&self) -> StoreResult<()> {
        super::MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    async fn schema(&self) -> StoreResult<Vec<(String, Vec<String>)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(super::SCHEMA_QUERY)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        for (table, column) in rows {
            match tables.last_mut() {
                Some((t, cols)) if *t == table => cols.push(column),
                _ => tables.push((table, vec![column])),
            }
        }
        for (_, cols) in &mut tables {
            cols.sort();
        }
        Ok(tables)
    }

    async fn create_team(&self, t: &Team) -> StoreResult<()> {
        sqlx::query("insert into team (team_id, name, time_zone, created_at) values ($1, $2, $3, $4)")
            .bind(t.id.0)
            .bind(&t.name)
            .bind(&t.time_zone)
            .bind(t.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn teams(&self) -> StoreResult<Vec<Team>> {
        let rows: Vec<TeamRow> = sqlx::query_as("select * from team order by name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(Team::from).collect())
    }

    async fn team(&self, id: TeamId) -> StoreResult<Team> {
        let row: TeamRow = sqlx::query_as("select * from team where team_id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.into())
    }

    async fn create_person(&self, p: &Person) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "insert into person (person_id, username, display_name, role, phone, lang, password_hash, \
             pin_hash, duress_pin_hash, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(p.id.0)
        .bind(&p.username)
        .bind(&p.display_name)
        .bind(p.role.as_str())
        .bind(&p.phone)
        .bind(p.lang.as_str())
        .bind(&p.password_hash)
        .bind(&p.pin_hash)
        .bind(&p.duress_pin_hash)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for team in &p.teams {
            sqlx::query("insert into team_member (team_id, person_id, created_at) values ($1, $2, $3)")
                .bind(team.0)
                .bind(p.id.0)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn person(&self, id: PersonId) -> StoreResult<Person> {
        // With the teams in the same query: every authenticated request reads its person.
        let sql = format!(
            "select {PERSON_COLUMNS}, m.team_id as member_of from person p \
             left join team_member m on m.person_id = p.person_id where p.person_id = $1 order by m.team_id"
        );
        let rows: Vec<PersonTeamRow> = self.rows_of(sql, id.0).await?;
        person_of_rows(rows)?.ok_or(StoreError::NotFound)
    }

    async fn people(&self, ids: &[PersonId]) -> StoreResult<Vec<Person>> {
        self.load_people(&ids.iter().map(|p| p.0).collect::<Vec<_>>())
            .await
    }

    async fn person_by_username(&self, username: &str) -> StoreResult<Person> {
        self.person_by("username", username).await
    }

    async fn person_by_phone(&self, phone: &str) -> StoreResult<Person> {
        self.person_by("phone", phone).await
    }

    async fn team_members(&self, team: TeamId) -> StoreResult<Vec<Person>> {
        self.people_where(
            "join team_member m on m.person_id = p.person_id where m.team_id = $1",
            team.0,
        )
        .await
    }

    async fn set_password_hash(&self, id: PersonId, hash: &str) -> StoreResult<()> {
        let done = sqlx::query("update person set password_hash = $2 where person_id = $1")
            .bind(id.0)
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn set_pin_hashes(&self, id: PersonId, pin: Option<&str>, duress: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query("update person set pin_hash = $2, duress_pin_hash = $3 where person_id = $1")
            .bind(id.0)
            .bind(pin)
            .bind(duress)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn insert_device(&self, d: &Device) -> StoreResult<()> {
        sqlx::query(
            "insert into device (device_id, person_id, token_hash, name, created_at, expires_at, revoked_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(d.id)
        .bind(d.person.0)
        .bind(&d.token_hash)
        .bind(&d.name)
        .bind(d.created_at)
        .bind(d.expires_at)
        .bind(d.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn device_by_token_hash(&self, token_hash: &str) -> StoreResult<Device> {
        let row: DeviceRow = sqlx::query_as("select * from device where token_hash = $1")
            .bind(token_hash)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.into())
    }

    async fn signed_in(&self, token_hash: &str) -> StoreResult<(Device, Person)> {
        let found = match &self.reads {
            Some(r) => r.signed_in.get(token_hash.to_owned()).await?,
            None => self
                .signed_in_many(&[token_hash.to_owned()])
                .await?
                .into_values()
                .next(),
        };
        found.ok_or(StoreError::NotFound)
    }

    async fn signed_in_to_change(&self, token_hash: &str, id: VisitId) -> SignedInToChange {
        #[cfg(makker_pg)]
        if let Some(r) = &self.reads {
            return match r.both.get((token_hash.to_owned(), id.0)).await {
                Ok(found) => {
                    let (signed_in, to_change) = found.unwrap_or_default();
                    (
                        signed_in.ok_or(StoreError::NotFound),
                        to_change.ok_or(StoreError::NotFound),
                    )
                }
                Err(e) => (Err(e.clone()), Err(e)),
            };
        }
        tokio::join!(self.signed_in(token_hash), self.visit_to_change(id))
    }

    async fn devices(&self, person: PersonId) -> StoreResult<Vec<Device>> {
        let rows: Vec<DeviceRow> =
            sqlx::query_as("select * from device where person_id = $1 order by created_at")
                .bind(person.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(rows.into_iter().map(Device::from).collect())
    }

    async fn revoke_device(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("update device set revoked_at = coalesce(revoked_at, $2) where device_id = $1")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // A lost phone signed out must stop receiving alarm texts too.
        sqlx::query("delete from push_subscription where device_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn start_shift(&self, s: &Shift) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // A clear conflict in both dialects; the unique index still guards PostgreSQL races.
        let open: Option<(Uuid,)> =
            sqlx::query_as("select shift_id from shift where person_id = $1 and ended_at is null")
                .bind(s.person.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if open.is_some() {
            return Err(StoreError::Conflict {
                constraint: constraint::ONE_OPEN_SHIFT.into(),
            });
        }
        sqlx::query(
            "insert into shift (shift_id, person_id, team_id, started_at, ended_at, created_at) \
             values ($1, $2, $3, $4, $5, $4)",
        )
        .bind(s.id.0)
        .bind(s.person.0)
        .bind(s.team.0)
        .bind(s.started_at)
        .bind(s.ended_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        live(&mut tx, s.team, "shift", s, s.started_at).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn end_shift(&self, person: PersonId, at: DateTime<Utc>) -> StoreResult<Shift> {
        let mut tx = self.begin().await?;
        let row: ShiftRow = sqlx::query_as(
            "update shift set ended_at = $2 where person_id = $1 and ended_at is null \
             returning shift_id, person_id, team_id, started_at, ended_at",
        )
        .bind(person.0)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let shift = Shift::from(row);
        // Privacy: the phone's status lives only as long as the shift.
        status::forget(&mut tx, person).await?;
        live(&mut tx, shift.team, "shift", &shift, at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(shift)
    }

    async fn report_status(
        &self,
        person: PersonId,
        battery_pct: u8,
        charging: Option<bool>,
        at: DateTime<Utc>,
    ) -> StoreResult<makker_store::PhoneStatus> {
        status::report(&self.pool, person, battery_pct, charging, at).await
    }

    async fn phone_statuses(&self, team: TeamId) -> StoreResult<Vec<makker_store::PhoneStatus>> {
        status::of_team(&self.pool, team).await
    }

    async fn phone_status_of(&self, person: PersonId) -> StoreResult<Option<makker_store::PhoneStatus>> {
        status::of_person(&self.pool, person).await
    }

    async fn open_shift(&self, person: PersonId) -> StoreResult<Option<Shift>> {
        let row: Option<ShiftRow> = sqlx::query_as(
            "select shift_id, person_id, team_id, started_at, ended_at from shift \
             where person_id = $1 and ended_at is null",
        )
        .bind(person.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map(Shift::from))
    }

    async fn shifts_of(&self, person: PersonId) -> StoreResult<Vec<Shift>> {
        let rows: Vec<ShiftRow> = sqlx::query_as(
            "select shift_id, person_id, team_id, started_at, ended_at from shift \
             where person_id = $1 order by started_at",
        )
        .bind(person.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(Shift::from).collect())
    }

    async fn visits_of(&self, person: PersonId) -> StoreResult<Vec<VisitId>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "select p.visit_id from visit_participant p join visit v on v.visit_id = p.visit_id \
             where p.person_id = $1 order by v.started_at",
        )
        .bind(person.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(|(id,)| VisitId(id)).collect())
    }

    async fn messages_to(&self, person: PersonId) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "select {MESSAGE_COLUMNS} from outbox where person_id = $1 order by created_at, dedup_key"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(person.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(MessageRow::into_message).collect()
    }

    async fn on_shift(&self, team: TeamId) -> StoreResult<Vec<(Person, Shift)>> {
        let rows: Vec<ShiftRow> = sqlx::query_as(
            "select shift_id, person_id, team_id, started_at, ended_at from shift \
             where team_id = $1 and ended_at is null order by started_at",
        )
        .bind(team.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let shift = Shift::from(r);
            out.push((self.person(shift.person).await?, shift));
        }
        Ok(out)
    }

    async fn create_place(&self, p: &Place, now: DateTime<Utc>) -> StoreResult<()> {
        let center = p.shape.center();
        sqlx::query(
            "insert into place (place_id, team_id, name, kind, shape, center_lat, center_lon, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(p.id.0)
        .bind(p.team.0)
        .bind(&p.name)
        .bind(enum_str(&p.kind))
        .bind(Json(&p.shape))
        .bind(center.lat)
        .bind(center.lon)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn place(&self, id: PlaceId) -> StoreResult<Place> {
        let row: PlaceRow =
            sqlx::query_as("select place_id, team_id, name, kind, shape from place where place_id = $1")
                .bind(id.0)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
        row.into_place()
    }

    async fn places(&self, teams: &[TeamId]) -> StoreResult<Vec<Place>> {
        let mut out = Vec::new();
        for team in teams {
            let rows: Vec<PlaceRow> = sqlx::query_as(
                "select place_id, team_id, name, kind, shape from place where team_id = $1 order by name",
            )
            .bind(team.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            for r in rows {
                out.push(r.into_place()?);
            }
        }
        Ok(out)
    }

    async fn add_warning(&self, w: &Warning) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        coverage::write_warning(&mut tx, w).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn warnings(&self, place: PlaceId) -> StoreResult<Vec<Warning>> {
        self.warnings_of(&[place]).await
    }

    async fn warnings_of(&self, places: &[PlaceId]) -> StoreResult<Vec<Warning>> {
        let ids: Vec<Uuid> = places.iter().map(|p| p.0).collect();
        let rows: Vec<WarningRow> = self
            .rows_for_ids(
                "select * from place_warning where place_id in ({ids}) order by created_at",
                &ids,
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Warning {
                    id: WarningId(r.place_warning_id),
                    place: PlaceId(r.place_id),
                    kind: enum_parse::<WarningKind>(&r.kind)?,
                    text: r.text,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                })
            })
            .collect()
    }

    async fn create_route(&self, r: &Route, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        coverage::write_route(&mut tx, r, now).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn routes(&self, team: TeamId) -> StoreResult<Vec<Route>> {
        let rows: Vec<RouteRow> = sqlx::query_as(
            "select route_id, team_id, name, valid_from, valid_until from route where team_id = $1 order by name",
        )
        .bind(team.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut routes = Vec::with_capacity(rows.len());
        for r in rows {
            let stops: Vec<StopRow> = sqlx::query_as(
                "select place_id, weekday, opens_minute, closes_minute from route_stop \
                 where route_id = $1 order by position",
            )
            .bind(r.route_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            let stops = stops
                .into_iter()
                .map(|s| {
                    Ok(Stop {
                        place: PlaceId(s.place_id),
                        weekday: weekday(s.weekday)?,
                        opens: time_of_minute(s.opens_minute)?,
                        closes: time_of_minute(s.closes_minute)?,
                    })
                })
                .collect::<StoreResult<Vec<Stop>>>()?;
            routes.push(Route {
                id: RouteId(r.route_id),
                team: TeamId(r.team_id),
                name: r.name,
                valid_from: r.valid_from,
                valid_until: r.valid_until,
                stops,
            });
        }
        Ok(routes)
    }

    async fn recent_assessment(
        &self,
        team: TeamId,
        place: PlaceId,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Assessment>> {
        let row: Option<AssessmentRow> = sqlx::query_as(
            "select assessment_id, place_id, team_id, person_id, answers, points, level, assessed_at \
             from assessment where team_id = $1 and place_id = $2 and assessed_at >= $3 \
             order by assessed_at desc limit 1",
        )
        .bind(team.0)
        .bind(place.0)
        .bind(since)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Assessment {
            id: AssessmentId(r.assessment_id),
            place: PlaceId(r.place_id),
            team: TeamId(r.team_id),
            by: PersonId(r.person_id),
            answers: r.answers.0,
            result: Assessed {
                points: to_u32(r.points)?,
                level: parse(RiskLevel::parse(&r.level))?,
            },
            assessed_at: r.assessed_at,
        }))
    }

    async fn insert_lone_approval(&self, a: &LoneApproval) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        approval::insert(&mut tx, a).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn lone_approval(&self, id: Uuid) -> StoreResult<LoneApproval> {
        let r: ApprovalRow = sqlx::query_as("select * from lone_approval where lone_approval_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.into())
    }

    async fn approve_lone(
        &self,
        a: &LoneApproval,
        team: TeamId,
        answer: &serde_json::Value,
    ) -> StoreResult<()> {
        approval::approve(&self.pool, a, team, answer).await
    }

    async fn post_approval_event(
        &self,
        team: TeamId,
        answer: bool,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        approval::post(&self.pool, team, answer, payload, now).await
    }

    async fn approval_events(&self, team: TeamId, since: DateTime<Utc>) -> StoreResult<Vec<LiveEvent>> {
        approval::events(&self.pool, team, since).await
    }

    async fn usable_lone_approval(
        &self,
        worker: PersonId,
        place: PlaceId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<LoneApproval>> {
        approval::usable(&self.pool, worker, place, now).await
    }

    async fn insert_visit(
        &self,
        v: &Visit,
        a: &Assessment,
        reused: bool,
        approval_used: Option<Uuid>,
        changes: &Changes,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        write_new_visit(&mut tx, v, a, reused, approval_used, changes).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn visit(&self, id: VisitId) -> StoreResult<Versioned<Visit>> {
        let sql = format!(
            "select {VISIT_COLUMNS}, {PART_COLUMNS} from visit v \
             left join visit_participant vp on vp.visit_id = v.visit_id where v.visit_id = $1 order by vp.position"
        );
        let rows: Vec<VisitPartRow> = self.rows_of(sql, id.0).await?;
        visit_of_rows(rows)?.ok_or(StoreError::NotFound)
    }

    async fn visit_to_change(&self, id: VisitId) -> StoreResult<(Versioned<Visit>, bool)> {
        let found = match &self.reads {
            Some(r) => r.visits.get(id.0).await?,
            None => self.visits_to_change(&[id.0]).await?.into_values().next(),
        };
        found.ok_or(StoreError::NotFound)
    }

    async fn last_positions(&self, visits: &[VisitId]) -> StoreResult<Vec<(VisitId, Position)>> {
        let ids: Vec<Uuid> = visits.iter().map(|v| v.0).collect();
        // Portable SQL: every positioned event, the newest kept here (a visit has few).
        let rows: Vec<(Uuid, f64, f64)> = self
            .rows_for_ids(
                "select visit_id, lat, lon from visit_event where visit_id in ({ids}) \
                 and lat is not null and lon is not null order by visit_id, occurred_at, visit_event_id",
                &ids,
            )
            .await?;
        let mut last: HashMap<Uuid, Position> = HashMap::new();
        for (visit, lat, lon) in rows {
            last.insert(visit, Position { lat, lon });
        }
        Ok(last.into_iter().map(|(v, p)| (VisitId(v), p)).collect())
    }

    async fn visits(&self, ids: &[VisitId]) -> StoreResult<Vec<Versioned<Visit>>> {
        self.load_visits(&ids.iter().map(|v| v.0).collect::<Vec<_>>())
            .await
    }

    async fn active_visit_of(&self, person: PersonId) -> StoreResult<Option<Versioned<Visit>>> {
        let sql = format!(
            "select {VISIT_COLUMNS}, {PART_COLUMNS} from visit v join visit_participant p on p.visit_id = v.visit_id \
             left join visit_participant vp on vp.visit_id = v.visit_id \
             where p.person_id = $1 and p.left_at is null order by vp.position"
        );
        let rows: Vec<VisitPartRow> = self.rows_of(sql, person.0).await?;
        visit_of_rows(rows)
    }

    async fn save_visit(
        &self,
        v: &Visit,
        version: i64,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let save = group::Save {
            visit: v.clone(),
            version,
            changes: changes.clone(),
            now,
        };
        match &self.saves {
            Some(saves) => group::queue(saves, self, save).await,
            None => group::save_alone(self, &save).await,
        }
    }

    async fn visit_events(&self, id: VisitId) -> StoreResult<Vec<VisitEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "select visit_event_id, visit_id, person_id, payload, occurred_at, received_at, client_time, lat, lon \
             from visit_event where visit_id = $1 order by occurred_at, visit_event_id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| VisitEvent {
                seq: r.visit_event_id,
                visit: VisitId(r.visit_id),
                person: r.person_id.map(PersonId),
                effect: r.payload.0,
                occurred_at: r.occurred_at,
                received_at: r.received_at,
                client_time: r.client_time,
                position: position(r.lat, r.lon),
            })
            .collect())
    }

    async fn apply(&self, changes: &Changes, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        apply_changes(&mut tx, changes, now).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn alarm(&self, id: AlarmId) -> StoreResult<Versioned<Alarm>> {
        let sql = format!("select {ALARM_COLUMNS} from alarm where alarm_id = $1");
        let row: AlarmRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        row.into_alarm()
    }

    async fn alarms_of(&self, person: PersonId) -> StoreResult<Vec<Alarm>> {
        let sql =
            format!("select {ALARM_COLUMNS} from alarm where person_id = $1 order by raised_at, alarm_id");
        let rows: Vec<AlarmRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(person.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|r| r.into_alarm().map(|a| a.value))
            .collect()
    }

    async fn unresolved_team_alarms(&self, team: TeamId) -> StoreResult<Vec<Alarm>> {
        let sql = format!(
            "select {ALARM_COLUMNS} from alarm where team_id = $1 and state <> 'resolved' order by raised_at desc, alarm_id"
        );
        let rows: Vec<AlarmRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(team.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|r| r.into_alarm().map(|a| a.value))
            .collect()
    }

    async fn unresolved_alarms(&self, visit: VisitId) -> StoreResult<Vec<Versioned<Alarm>>> {
        let sql = format!(
            "select {ALARM_COLUMNS} from alarm where visit_id = $1 and state <> 'resolved' order by raised_at, alarm_id"
        );
        let rows: Vec<AlarmRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(visit.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(AlarmRow::into_alarm).collect()
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Deadline>> {
        let lease = Lease {
            table: "deadline",
            id: "deadline_id",
            state: "armed",
            due: "due_at",
        };
        let rows: Vec<DeadlineRow> = self
            .lease(
                lease,
                "deadline_id, kind, visit_id, alarm_id, due_at",
                now,
                owner,
                lease_until,
                limit,
            )
            .await?;
        let mut due: Vec<Deadline> = rows
            .into_iter()
            .map(DeadlineRow::into_deadline)
            .collect::<StoreResult<_>>()?;
        due.sort_by_key(|d| (d.due_at, d.id));
        Ok(due)
    }

    async fn fire(
        &self,
        deadline: &Deadline,
        owner: &str,
        now: DateTime<Utc>,
        changes: &Changes,
    ) -> StoreResult<bool> {
        Ok(!self
            .fire_many(&[(deadline, changes)], owner, now, None)
            .await?
            .deadlines
            .is_empty())
    }

    async fn fire_many(
        &self,
        fired: &[(&Deadline, &Changes)],
        owner: &str,
        now: DateTime<Utc>,
        hand_over: Option<&HandOver>,
    ) -> StoreResult<Fired> {
        if fired.is_empty() {
            return Ok(Fired::default());
        }
        let mut tx = self.begin().await?;
        // INVARIANT: armed → fired happens once, only for the lease holder and only at the due
        // time it was claimed at (a check-in moves a timer in place), in the same transaction
        // as everything the firing caused.
        let mut fence = QueryBuilder::<Db>::new("update deadline set state = 'fired', fired_at = ");
        fence
            .push_bind(now)
            .push(" where state = 'armed' and claimed_by = ")
            .push_bind(owner.to_owned());
        // The ids alone, for the primary key's index; then each with its due time.
        fence.push(" and deadline_id in (");
        let mut ids = fence.separated(", ");
        for (d, _) in fired {
            ids.push_bind(d.id);
        }
        fence.push(") and (deadline_id, due_at) in (");
        fence.push_values(fired, |mut b, (d, _)| {
            b.push_bind(d.id).push_bind(d.due_at);
        });
        fence.push(") returning deadline_id");
        let done: Vec<(i64,)> = fence.build_query_as().fetch_all(&mut *tx).await.map_err(db_err)?;
        let done: Vec<i64> = done.into_iter().map(|r| r.0).collect();
        let changes: Vec<&Changes> = fired
            .iter()
            .filter(|(d, _)| done.contains(&d.id))
            .map(|(_, c)| *c)
            .collect();
        let handed = apply_quietly(&mut tx, &changes, now, hand_over).await?;
        self.commit_then_notify(tx, Notices::of_all(&changes, now))
            .await?;
        Ok(Fired {
            deadlines: done,
            handed,
        })
    }

    async fn db_now(&self) -> StoreResult<DateTime<Utc>> {
        super::db_now(&self.pool).await
    }

    async fn watch_deadlines(&self, wake: Box<dyn Fn() + Send + Sync>) -> StoreResult<()> {
        super::watch_deadlines(&self.pool, wake).await
    }

    async fn next_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        // A lease is only ever taken on a due deadline (and moving a timer drops its lease),
        // so the leased ones are among those due by `now`: a short range of the index.
        let row: Option<(DateTime<Utc>,)> = sqlx::query_as(
            "select at from (\
             select * from (select due_at as at from deadline where state = 'armed' \
             and (claim_expires_at is null or claim_expires_at < $1) order by due_at limit 1) free \
             union all \
             select * from (select claim_expires_at as at from deadline where state = 'armed' \
             and due_at <= $1 and claim_expires_at >= $1 order by claim_expires_at limit 1) leased\
             ) next order by at limit 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| r.0))
    }

    async fn armed(&self) -> StoreResult<Vec<Deadline>> {
        let rows: Vec<DeadlineRow> = sqlx::query_as(
            "select deadline_id, kind, visit_id, alarm_id, due_at from deadline where state = 'armed' \
             order by due_at, deadline_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(DeadlineRow::into_deadline).collect()
    }

    async fn claim_messages(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let lease = Lease {
            table: "outbox",
            id: "outbox_id",
            state: "pending",
            due: "next_attempt_at",
        };
        let rows: Vec<MessageRow> = self
            .lease(lease, MESSAGE_COLUMNS, now, owner, lease_until, limit)
            .await?;
        let mut out: Vec<Message> = rows
            .into_iter()
            .map(MessageRow::into_message)
            .collect::<StoreResult<_>>()?;
        out.sort_by_key(|m| m.created_at);
        Ok(out)
    }

    async fn record_attempt(&self, message: Uuid, attempt: &Attempt, now: DateTime<Utc>) -> StoreResult<()> {
        let one = Delivery {
            message,
            failed_over: vec![],
            attempt: attempt.clone(),
        };
        self.record_deliveries(std::slice::from_ref(&one), now).await
    }

    async fn record_deliveries(&self, deliveries: &[Delivery], now: DateTime<Utc>) -> StoreResult<()> {
        // One commit for the whole batch: at thousands of sends a second, a commit each
        // would be the dispatcher's ceiling.
        let mut tx = self.begin().await?;
        record_deliveries(&mut tx, deliveries, now).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn phones(&self, people: &[PersonId]) -> StoreResult<Vec<(PersonId, String)>> {
        let ids: Vec<Uuid> = people.iter().map(|p| p.0).collect();
        let rows: Vec<(Uuid, String)> = self
            .rows_for_ids(
                "select person_id, phone from person where phone is not null and person_id in ({ids})",
                &ids,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, phone)| (PersonId(id), phone))
            .collect())
    }

    async fn record_receipt(&self, message: Uuid, status: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("update outbox set receipt = $2, receipt_at = $3 where outbox_id = $1")
            .bind(message)
            .bind(status)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn messages(&self, alarm: Option<AlarmId>) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "select {MESSAGE_COLUMNS} from outbox where ($1 is null or alarm_id = $1) order by created_at, dedup_key"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(alarm.map(|a| a.0))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(MessageRow::into_message).collect()
    }

    async fn live_since(&self, after: i64, limit: u32) -> StoreResult<Vec<LiveEvent>> {
        let rows: Vec<LiveRow> = sqlx::query_as(
            "select live_event_id, team_id, kind, payload, created_at from live_event \
             where live_event_id > $1 order by live_event_id limit $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(live_event).collect())
    }

    async fn login_failures(&self, username: &str) -> StoreResult<Option<LoginFailures>> {
        let row: Option<(i32, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "select failures, first_failed_at, locked_until from login_failure where username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|(failures, first_failed_at, locked_until)| {
            Ok(LoginFailures {
                failures: to_u32(failures)?,
                first_failed_at,
                locked_until,
            })
        })
        .transpose()
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        write_audit(&mut tx, &entries.iter().collect::<Vec<_>>()).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn audit_about(&self, subject: PersonId, action: &str) -> StoreResult<Vec<AuditEntry>> {
        type Row = (DateTime<Utc>, Option<Uuid>, String, Option<Uuid>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "select at, actor_id, action, subject_id, object from audit_log \
             where subject_id = $1 and action = $2 order by audit_log_id",
        )
        .bind(subject.0)
        .bind(action)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, action, subject, object)| AuditEntry {
                at,
                actor: actor.map(PersonId),
                action,
                subject: subject.map(PersonId),
                object,
            })
            .collect())
    }

    async fn set_login_failures(&self, username: &str, f: Option<&LoginFailures>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("delete from login_failure where username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(f) = f {
            sqlx::query(
                "insert into login_failure (username, failures, first_failed_at, locked_until) \
                 values ($1, $2, $3, $4)",
            )
            .bind(username)
            .bind(to_i32(f.failures))
            .bind(f.first_failed_at)
            .bind(f.locked_until)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn boards_seen(&self, teams: &[TeamId], at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for team in teams {
            sqlx::query(
                "insert into board_seen (team_id, seen_at) values ($1, $2) \
                 on conflict (team_id) do update set seen_at = excluded.seen_at \
                 where board_seen.seen_at < excluded.seen_at",
            )
            .bind(team.0)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn watch_status(&self) -> StoreResult<Vec<WatchStatus>> {
        let rows: Vec<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "select s.team_id, min(s.started_at), b.seen_at from shift s \
             left join board_seen b on b.team_id = s.team_id \
             where s.ended_at is null group by s.team_id, b.seen_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(team, since, seen)| WatchStatus {
                team: TeamId(team),
                on_shift_since: since,
                board_seen_at: seen,
            })
            .collect())
    }

    async fn live_head(&self) -> StoreResult<i64> {
        let (head,): (Option<i64>,) = sqlx::query_as("select max(live_event_id) from live_event")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(head.unwrap_or(0))
    }

    async fn watch_live(&self, wake: Box<dyn Fn() + Send + Sync>) -> StoreResult<()> {
        super::watch_live(&self.pool, wake).await
    }

    async fn purge_live(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("delete from live_event where created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn active_team_visits(&self, team: TeamId) -> StoreResult<Vec<Visit>> {
        let sql = format!(
            "select {VISIT_COLUMNS} from visit v where v.team_id = $1 and v.state = 'active' order by v.started_at"
        );
        let rows: Vec<VisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(team.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let visits = self.with_participants(rows).await?;
        Ok(visits.into_iter().map(|v| v.value).collect())
    }

    async fn ops_figures(&self, now: DateTime<Utc>) -> StoreResult<OpsFigures> {
        let (deadlines_due, deadlines_overdue): (i64, i64) = sqlx::query_as(
            "select count(*), coalesce(sum(case when due_at < $2 then 1 else 0 end), 0) from deadline \
             where state = 'armed' and due_at <= $1",
        )
        .bind(now)
        .bind(now - chrono::Duration::seconds(30))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let (outbox_depth, outbox_oldest): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as("select count(*), min(created_at) from outbox where state = 'pending'")
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(OpsFigures {
            deadlines_due,
            deadlines_overdue,
            outbox_depth,
            outbox_oldest,
        })
    }

    async fn attempts(&self, alarm: AlarmId) -> StoreResult<Vec<AttemptRecord>> {
        let rows: Vec<(Uuid, i32, String, String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "select a.outbox_id, a.attempt, a.provider, a.outcome, a.detail, a.created_at from outbox_attempt a \
             join outbox o on o.outbox_id = a.outbox_id where o.alarm_id = $1 order by a.outbox_attempt_id",
        )
        .bind(alarm.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|(message, attempt, provider, outcome, detail, at)| {
                Ok(AttemptRecord {
                    message,
                    attempt: to_u32(attempt)?,
                    provider,
                    outcome,
                    detail,
                    at,
                })
            })
            .collect()
    }

    async fn add_push_subscription(&self, sub: &PushSubscription, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("delete from push_subscription where endpoint = $1")
            .bind(&sub.endpoint)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "insert into push_subscription (push_subscription_id, person_id, device_id, endpoint, p256dh, auth, \
             created_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sub.id)
        .bind(sub.person.0)
        .bind(sub.device)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn push_subscriptions(&self, person: PersonId) -> StoreResult<Vec<PushSubscription>> {
        self.push_subscriptions_of(&[person]).await
    }

    async fn push_subscriptions_of(&self, people: &[PersonId]) -> StoreResult<Vec<PushSubscription>> {
        let ids: Vec<Uuid> = people.iter().map(|p| p.0).collect();
        let rows: Vec<(Uuid, Uuid, Option<Uuid>, String, String, String)> = self
            .rows_for_ids(
                "select s.push_subscription_id, s.person_id, s.device_id, s.endpoint, s.p256dh, s.auth \
                 from push_subscription s left join device d on d.device_id = s.device_id \
                 where s.person_id in ({ids}) and d.revoked_at is null order by s.created_at",
                &ids,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, person, device, endpoint, p256dh, auth)| PushSubscription {
                id,
                person: PersonId(person),
                device,
                endpoint,
                p256dh,
                auth,
            })
            .collect())
    }

    async fn remove_push_subscription(&self, endpoint: &str) -> StoreResult<()> {
        sqlx::query("delete from push_subscription where endpoint = $1")
            .bind(endpoint)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_positions(&self, before: DateTime<Utc>) -> StoreResult<Option<u64>> {
        let Some(mut tx) = retention::maintenance_tx(&self.pool).await? else {
            return Ok(None);
        };
        let events = sqlx::query(
            "update visit_event set lat = null, lon = null where received_at < $1 and lat is not null",
        )
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let alarms =
            sqlx::query("update alarm set lat = null, lon = null where raised_at < $1 and lat is not null")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        // An alarm SMS may carry the position in its text: old texts go too.
        let texts = sqlx::query(
            "update outbox set body = '' where created_at < $1 and channel = 'sms' and body <> ''",
        )
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(
            events.rows_affected() + alarms.rows_affected() + texts.rows_affected(),
        ))
    }

    async fn idempotency_begin(
        &self,
        person: PersonId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Idempotency> {
        #[cfg(makker_pg)]
        if let Some(keys) = &self.keys {
            let claim = (person, key.to_owned(), request_hash.to_owned(), now);
            return keys.claims.get(claim).await;
        }
        let claimed = sqlx::query(
            "insert into idempotency (person_id, idempotency_key, request_hash, created_at) \
             values ($1, $2, $3, $4) on conflict (person_id, idempotency_key) do update \
             set created_at = excluded.created_at where idempotency.status_code is null \
             and idempotency.request_hash = excluded.request_hash and idempotency.created_at < $5",
        )
        .bind(person.0)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(now - IDEMPOTENCY_CLAIM_LAPSES)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if claimed.rows_affected() == 1 {
            return Ok(Idempotency::Started);
        }
        let (hash, status, body): (String, Option<i32>, Option<String>) = sqlx::query_as(
            "select request_hash, status_code, response_body from idempotency \
             where person_id = $1 and idempotency_key = $2",
        )
        .bind(person.0)
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        idempotency_of(hash == request_hash, status, body)
    }

    async fn idempotency_finish(
        &self,
        person: PersonId,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        #[cfg(makker_pg)]
        if let Some(keys) = &self.keys {
            let answer = (person, key.to_owned(), status, body.to_owned());
            return keys.answers.get(answer).await;
        }
        sqlx::query(
            "update idempotency set status_code = $3, response_body = $4 \
             where person_id = $1 and idempotency_key = $2",
        )
        .bind(person.0)
        .bind(key)
        .bind(i32::from(status))
        .bind(body)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn idempotency_abandon(&self, person: PersonId, key: &str) -> StoreResult<()> {
        sqlx::query(
            "delete from idempotency where person_id = $1 and idempotency_key = $2 and status_code is null",
        )
        .bind(person.0)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn pseudonymise_visits(&self, before: DateTime<Utc>) -> StoreResult<Option<u64>> {
        retention::pseudonymise(&self.pool, before).await
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<Option<u64>> {
        retention::purge_audit(&self.pool, before).await
    }

    async fn begin_sso(&self, flow: &makker_store::SsoFlow) -> StoreResult<()> {
        sso::begin(&self.pool, flow).await
    }

    async fn take_sso(&self, state_hash: &str) -> StoreResult<makker_store::SsoFlow> {
        sso::take(&self.pool, state_hash).await
    }
}
