//! Makker's storage interface: narrow traits, record types and [`StoreError`].
//!
//! Invariants every implementation upholds (shown by the shared suite in `tests/`):
//! - A visit and the events its transition produced are written in one transaction; a
//!   duress check-out writes its alarm in that same transaction.
//! - Saving a visit is optimistic: it succeeds only if nobody saved it since it was read
//!   (`Conflict { constraint: VISIT_VERSION }`), so a lost update is impossible.
//! - A person is present in at most one active visit and has at most one open shift.
//! - Only the store crates name SQL. The two dialects share their query code in `sql/`.

pub mod coverage;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use makker_domain::alarm::Alarm;
use makker_domain::geo::Position;
use makker_domain::place::{Place, Warning};
use makker_domain::policy::Channel;
use makker_domain::risk::{Answers, Assessed};
use makker_domain::route::Route;
use makker_domain::text::Lang;
use makker_domain::visit::{Effect, TimerKind, Visit};
use makker_domain::{AlarmId, AssessmentId, PersonId, PlaceId, Role, ShiftId, TeamId, VisitId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Named constraints callers may expect in [`StoreError::Conflict`].
pub mod constraint {
    pub const VISIT_VERSION: &str = "visit_version";
    pub const ONE_ACTIVE_VISIT: &str = "visit_participant_one_active_key";
    pub const ONE_OPEN_SHIFT: &str = "shift_one_open_key";
    pub const USERNAME: &str = "person_username_key";
    pub const IDEMPOTENCY: &str = "idempotency_pkey";
    pub const ALARM_VERSION: &str = "alarm_version";
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    #[error("the database is unavailable: {0}")]
    Transient(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    /// IANA zone the team's times are shown in.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

/// Hashes are argon2id PHC strings, never the secret itself.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub phone: Option<String>,
    pub lang: Lang,
    pub teams: Vec<TeamId>,
    pub password_hash: Option<String>,
    pub pin_hash: Option<String>,
    pub duress_pin_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("teams", &self.teams)
            .finish_non_exhaustive()
    }
}

/// A phone's bearer token, stored as its SHA-256 (hex); the token itself is shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: Uuid,
    pub person: PersonId,
    pub token_hash: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Device {
    pub fn is_valid(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub id: ShiftId,
    pub person: PersonId,
    pub team: TeamId,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// What a worker's phone last reported about itself in the open shift, for the board's battery
/// column; also the payload of the `status` live event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneStatus {
    pub person: PersonId,
    pub team: TeamId,
    pub battery_pct: u8,
    /// `None` when the phone does not say.
    pub charging: Option<bool>,
    /// The server's time of the report.
    pub reported_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub id: AssessmentId,
    pub place: PlaceId,
    pub team: TeamId,
    pub by: PersonId,
    pub answers: Answers,
    pub result: Assessed,
    pub assessed_at: DateTime<Utc>,
}

/// A visit as read, with the version to save it against.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
}

/// When and where something happened, as the server and the phone saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub received_at: DateTime<Utc>,
    /// The phone's own time, when the event was queued offline.
    pub client_time: Option<DateTime<Utc>>,
    pub position: Option<Position>,
}

impl Stamp {
    /// The time to order events by: the phone's, when it sent one (already bounded by policy).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.client_time.unwrap_or(self.received_at)
    }
}

/// One effect of a visit transition, to be written to the visit's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub visit: VisitId,
    pub person: Option<PersonId>,
    pub effect: Effect,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitEvent {
    pub seq: i64,
    pub visit: VisitId,
    pub person: Option<PersonId>,
    pub effect: Effect,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub client_time: Option<DateTime<Utc>>,
    pub position: Option<Position>,
}

/// A supervisor's approval for one worker to make one lone visit at one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoneApproval {
    pub id: Uuid,
    pub worker: PersonId,
    pub supervisor: PersonId,
    pub place: PlaceId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    Reminder,
    Overdue,
    Silence,
    Escalate,
    FollowUp,
}

impl DeadlineKind {
    /// As stored (and as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Reminder => "reminder",
            DeadlineKind::Overdue => "overdue",
            DeadlineKind::Silence => "silence",
            DeadlineKind::Escalate => "escalate",
            DeadlineKind::FollowUp => "follow_up",
        }
    }
}

impl From<TimerKind> for DeadlineKind {
    fn from(k: TimerKind) -> Self {
        match k {
            TimerKind::Reminder => DeadlineKind::Reminder,
            TimerKind::Overdue => DeadlineKind::Overdue,
            TimerKind::Silence => DeadlineKind::Silence,
        }
    }
}

/// A timer to arm: for a visit (reminder, overdue) or an alarm (escalate, follow-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDeadline {
    pub kind: DeadlineKind,
    pub visit: Option<VisitId>,
    pub alarm: Option<AlarmId>,
    pub due_at: DateTime<Utc>,
}

/// An armed deadline claimed by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub id: i64,
    pub kind: DeadlineKind,
    pub visit: Option<VisitId>,
    pub alarm: Option<AlarmId>,
    pub due_at: DateTime<Utc>,
}

/// A message to send later, from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: Uuid,
    /// Unique: the same (alarm, step, recipient, channel) is never queued twice.
    pub dedup_key: String,
    pub alarm: Option<AlarmId>,
    pub visit: Option<VisitId>,
    pub person: PersonId,
    pub channel: Channel,
    pub kind: String,
    pub body: String,
    pub drill: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message: NewMessage,
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
    /// The provider's last delivery report.
    pub receipt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent {
        provider: String,
        provider_ref: Option<String>,
    },
    /// Try again at `next`.
    Retry {
        provider: String,
        error: String,
        next: DateTime<Utc>,
    },
    Failed {
        provider: String,
        error: String,
    },
}

/// One round of sending a message, as the dispatcher records it: the providers that failed
/// before the last one tried (failover), and what the round came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: Uuid,
    /// (provider, error) of each provider that failed before the last one was tried.
    pub failed_over: Vec<(String, String)>,
    pub attempt: Attempt,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// Who did or read it; `None` for the command line.
    pub actor: Option<PersonId>,
    /// `position.read`, `alarm.acknowledge`, `alarm.resolve`, `admin.create_person`, ...
    pub action: String,
    /// Whose data it concerns.
    pub subject: Option<PersonId>,
    /// What: an alarm id, a device id, a team's name.
    pub object: Option<String>,
}

/// A single sign-on (OpenID Connect) under way, between the redirect to the identity provider
/// and its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoFlow {
    /// SHA-256 of the OAuth `state` the browser carries there and back.
    pub state_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Our page to open once signed in (a path on this server).
    pub return_to: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Failed sign-ins of one username, for the lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub failures: u32,
    pub first_failed_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A change the live board streams: its id orders the stream and lets a board resume.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub id: i64,
    pub team: TeamId,
    /// `visit`, `alarm`, `shift`, `status`, `approval_request` or `approval_answer`.
    pub kind: String,
    /// The visit or alarm (domain JSON), or the shift, as it is after the change.
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// Figures for operators, the same from every replica: `/metrics` exports them as gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsFigures {
    /// Armed deadlines already due.
    pub deadlines_due: i64,
    /// Armed deadlines due more than 30 seconds ago: a deadline that should have fired.
    pub deadlines_overdue: i64,
    /// Messages waiting to be sent.
    pub outbox_depth: i64,
    pub outbox_oldest: Option<DateTime<Utc>>,
}

/// One recorded delivery attempt of a message, as the trail shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub message: Uuid,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub provider: String,
    /// `sent`, `retry` or `failed`.
    pub outcome: String,
    /// The provider's answer or the error.
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// Whether anyone watches a team's board while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStatus {
    pub team: TeamId,
    /// When the earliest shift still open in the team started.
    pub on_shift_since: DateTime<Utc>,
    /// When a board of the team was last seen connected, if ever.
    pub board_seen_at: Option<DateTime<Utc>>,
}

/// Everything a transition writes besides the visit or alarm itself, in the same transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub events: Vec<NewEvent>,
    /// The change left the saved visit's participants as they were read (a check-in): the
    /// save need not write them. By default they are written.
    pub same_participants: bool,
    /// Replaces the armed reminder and overdue timers of this visit.
    pub visit_timers: Option<(VisitId, Vec<NewDeadline>)>,
    /// New alarms.
    pub new_alarms: Vec<Alarm>,
    /// Changed alarms, each with the version it was read at.
    pub saved_alarms: Vec<Versioned<Alarm>>,
    /// Cancels the armed escalation and follow-up of these alarms.
    pub calm_alarms: Vec<AlarmId>,
    pub arm: Vec<NewDeadline>,
    pub outbox: Vec<NewMessage>,
    /// Audit lines, written with the change.
    pub audit: Vec<AuditEntry>,
}

/// A lease on the messages a commit queues, taken in that commit: the dispatcher `owner`
/// gets them in memory and sends them without claiming them first. Should it never send
/// them (a crash), the lease lapses at `until` and any dispatcher claims them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOver {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// What [`Store::fire_many`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fired {
    /// The deadlines that fired.
    pub deadlines: Vec<i64>,
    /// The messages queued and leased to the [`HandOver`]'s owner: only those inserted, not
    /// those a message already queued under the same dedup key kept out.
    pub handed: Vec<Message>,
}

/// How often, at the longest, every deadline loop looks for the earliest armed deadline on
/// its own. A deadline armed further ahead than this needs no wake-up (in-process or NOTIFY):
/// the loop finds it in time. Waking only for sooner ones spares every check-in a wake-up and
/// a tick of the loop in every replica.
pub const WAKE_HORIZON: std::time::Duration = std::time::Duration::from_secs(1);

impl Changes {
    /// Whether this change arms a deadline due within [`WAKE_HORIZON`] of `now`.
    pub fn arms_soon(&self, now: DateTime<Utc>) -> bool {
        let soon = now + chrono::Duration::from_std(WAKE_HORIZON).expect("BUG: one second fits");
        let timers = self.visit_timers.iter().flat_map(|(_, t)| t);
        self.arm.iter().chain(timers).any(|d| d.due_at <= soon)
    }
}

/// A browser's push subscription, registered by a signed-in phone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub id: Uuid,
    pub person: PersonId,
    pub device: Option<Uuid>,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

impl std::fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The endpoint is a capability to push to someone: never in logs.
        f.debug_struct("PushSubscription")
            .field("id", &self.id)
            .field("person", &self.person)
            .finish_non_exhaustive()
    }
}

/// What the store knows about an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Idempotency {
    /// First use: the caller goes ahead and then calls `idempotency_finish`.
    Started,
    /// A finished request with the same body: replay its answer.
    Done { status: u16, body: String },
    /// The same key is being handled right now.
    InProgress,
    /// The same key came with a different request.
    Mismatch,
}

/// [`Store::signed_in_to_change`]: who is signed in, and the visit to change.
pub type SignedInToChange = (
    StoreResult<(Device, Person)>,
    StoreResult<(Versioned<Visit>, bool)>,
);

/// Storage for everything the mobile API needs. Implemented once per SQL dialect.
#[async_trait]
pub trait Store: coverage::CoverageStore + Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Tables and their columns, sorted; used to compare the two dialects' schemas.
    async fn schema(&self) -> StoreResult<Vec<(String, Vec<String>)>>;

    async fn create_team(&self, team: &Team) -> StoreResult<()>;
    async fn teams(&self) -> StoreResult<Vec<Team>>;
    async fn team(&self, id: TeamId) -> StoreResult<Team>;

    async fn create_person(&self, person: &Person) -> StoreResult<()>;
    async fn person(&self, id: PersonId) -> StoreResult<Person>;
    /// The people of `ids` that exist, in no particular order, in a few queries.
    async fn people(&self, ids: &[PersonId]) -> StoreResult<Vec<Person>>;
    async fn person_by_username(&self, username: &str) -> StoreResult<Person>;
    /// The person with this phone number (E.164), for inbound SMS.
    async fn person_by_phone(&self, phone: &str) -> StoreResult<Person>;
    async fn team_members(&self, team: TeamId) -> StoreResult<Vec<Person>>;
    async fn set_password_hash(&self, id: PersonId, hash: &str) -> StoreResult<()>;
    async fn login_failures(&self, username: &str) -> StoreResult<Option<LoginFailures>>;
    /// Appends to the audit log (it is never changed or shortened).
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    /// The audit lines about `subject` with `action`, oldest first.
    async fn audit_about(&self, subject: PersonId, action: &str) -> StoreResult<Vec<AuditEntry>>;
    /// Replaces the username's failure record (`None` forgets it).
    async fn set_login_failures(&self, username: &str, f: Option<&LoginFailures>) -> StoreResult<()>;
    async fn set_pin_hashes(&self, id: PersonId, pin: Option<&str>, duress: Option<&str>) -> StoreResult<()>;

    async fn insert_device(&self, device: &Device) -> StoreResult<()>;
    async fn device_by_token_hash(&self, token_hash: &str) -> StoreResult<Device>;
    /// The device with this token hash and its person, in one query (every request asks).
    async fn signed_in(&self, token_hash: &str) -> StoreResult<(Device, Person)>;
    async fn devices(&self, person: PersonId) -> StoreResult<Vec<Device>>;
    /// Revokes a device; revoking twice keeps the first time.
    async fn revoke_device(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()>;

    async fn start_shift(&self, shift: &Shift) -> StoreResult<()>;
    async fn end_shift(&self, person: PersonId, at: DateTime<Utc>) -> StoreResult<Shift>;
    async fn open_shift(&self, person: PersonId) -> StoreResult<Option<Shift>>;
    /// Every shift of `person`, oldest first (the access request).
    async fn shifts_of(&self, person: PersonId) -> StoreResult<Vec<Shift>>;
    /// Replaces the phone status of `person` in their open shift and tells the shift's team's
    /// boards (a live `status` event), in one transaction. Ending the shift deletes it.
    ///
    /// # Errors
    /// `NotFound` when the person has no open shift.
    async fn report_status(
        &self,
        person: PersonId,
        battery_pct: u8,
        charging: Option<bool>,
        at: DateTime<Utc>,
    ) -> StoreResult<PhoneStatus>;
    /// The phone statuses reported in the team's open shifts (never one from an earlier shift).
    async fn phone_statuses(&self, team: TeamId) -> StoreResult<Vec<PhoneStatus>>;
    /// The phone status `person` reported in their open shift, if any (the access request).
    async fn phone_status_of(&self, person: PersonId) -> StoreResult<Option<PhoneStatus>>;
    /// Every visit `person` took part in, oldest first (the access request).
    async fn visits_of(&self, person: PersonId) -> StoreResult<Vec<VisitId>>;
    /// Every message to `person`, oldest first (the access request).
    async fn messages_to(&self, person: PersonId) -> StoreResult<Vec<Message>>;
    /// Open shifts in a team, with their people.
    async fn on_shift(&self, team: TeamId) -> StoreResult<Vec<(Person, Shift)>>;

    async fn create_place(&self, place: &Place, now: DateTime<Utc>) -> StoreResult<()>;
    async fn place(&self, id: PlaceId) -> StoreResult<Place>;
    async fn places(&self, teams: &[TeamId]) -> StoreResult<Vec<Place>>;
    async fn add_warning(&self, warning: &Warning) -> StoreResult<()>;
    async fn warnings(&self, place: PlaceId) -> StoreResult<Vec<Warning>>;
    /// The warnings of several places (expired ones too), oldest first.
    async fn warnings_of(&self, places: &[PlaceId]) -> StoreResult<Vec<Warning>>;

    async fn create_route(&self, route: &Route, now: DateTime<Utc>) -> StoreResult<()>;
    async fn routes(&self, team: TeamId) -> StoreResult<Vec<Route>>;

    /// The latest assessment of a place by anyone in `team` made at or after `since`.
    async fn recent_assessment(
        &self,
        team: TeamId,
        place: PlaceId,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Assessment>>;

    async fn insert_lone_approval(&self, approval: &LoneApproval) -> StoreResult<()>;
    async fn lone_approval(&self, id: Uuid) -> StoreResult<LoneApproval>;
    /// Writes a supervisor's approval and its `approval_answer` live event for the team's
    /// boards, in one transaction.
    async fn approve_lone(
        &self,
        approval: &LoneApproval,
        team: TeamId,
        answer: &serde_json::Value,
    ) -> StoreResult<()>;
    /// A live event only: a worker's ask for an approval (`approval_request`), or a
    /// supervisor's decline (`approval_answer` when `answer`).
    async fn post_approval_event(
        &self,
        team: TeamId,
        answer: bool,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The team's asks and answers written at or after `since`, oldest first.
    async fn approval_events(&self, team: TeamId, since: DateTime<Utc>) -> StoreResult<Vec<LiveEvent>>;
    /// The worker's approval for the place that is unused and unexpired at `now` (the one
    /// that lasts longest), if any.
    async fn usable_lone_approval(
        &self,
        worker: PersonId,
        place: PlaceId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<LoneApproval>>;

    /// Writes a new visit, its assessment (unless `reused`), the approval it used, and its events.
    ///
    /// # Errors
    /// `Conflict { constraint: ONE_ACTIVE_VISIT }` when a participant is already in an active visit.
    async fn insert_visit(
        &self,
        visit: &Visit,
        assessment: &Assessment,
        reused: bool,
        approval_used: Option<Uuid>,
        changes: &Changes,
    ) -> StoreResult<()>;
    async fn visit(&self, id: VisitId) -> StoreResult<Versioned<Visit>>;
    /// Each visit's last known position (of its events), for those of `visits` that have one.
    async fn last_positions(&self, visits: &[VisitId]) -> StoreResult<Vec<(VisitId, Position)>>;
    /// The visits of `ids` that exist, in no particular order, in a few queries.
    async fn visits(&self, ids: &[VisitId]) -> StoreResult<Vec<Versioned<Visit>>>;
    async fn active_visit_of(&self, person: PersonId) -> StoreResult<Option<Versioned<Visit>>>;
    /// Saves a changed visit read at `version`, with what the change caused.
    ///
    /// # Errors
    /// `Conflict { constraint: VISIT_VERSION }` when someone saved it in between.
    async fn save_visit(
        &self,
        visit: &Visit,
        version: i64,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The event log, in the order things happened (the phone's time where it gave one).
    async fn visit_events(&self, id: VisitId) -> StoreResult<Vec<VisitEvent>>;

    /// Writes changes that save no visit (an SOS, an acknowledgement) in one transaction.
    ///
    /// # Errors
    /// `Conflict { constraint: ALARM_VERSION }` when a saved alarm changed since it was read.
    async fn apply(&self, changes: &Changes, now: DateTime<Utc>) -> StoreResult<()>;
    async fn alarm(&self, id: AlarmId) -> StoreResult<Versioned<Alarm>>;
    async fn alarms_of(&self, person: PersonId) -> StoreResult<Vec<Alarm>>;
    /// Alarms of a team that are not resolved, newest first.
    async fn unresolved_team_alarms(&self, team: TeamId) -> StoreResult<Vec<Alarm>>;
    /// Alarms of a visit that are not resolved.
    async fn unresolved_alarms(&self, visit: VisitId) -> StoreResult<Vec<Versioned<Alarm>>>;
    /// A visit, and whether it has alarms not resolved, in one query: what a check-in reads
    /// (its alarms only when there are any).
    async fn visit_to_change(&self, id: VisitId) -> StoreResult<(Versioned<Visit>, bool)>;
    /// [`Self::signed_in`] and [`Self::visit_to_change`] at once, in one query where the
    /// database allows: what a check-in reads before anything else.
    async fn signed_in_to_change(&self, token_hash: &str, id: VisitId) -> SignedInToChange;

    /// Leases up to `limit` armed deadlines due at `now` to `owner` until `lease_until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Deadline>>;
    /// Fires claimed deadlines, each with its changes, in one transaction: those still armed,
    /// leased to `owner` and due when claimed fire with their changes; the others (cancelled,
    /// moved, fired elsewhere, lease lapsed) write nothing. Answers the ids that fired. The changes must concern
    /// different visits and alarms. An error (a version conflict) writes nothing at all.
    /// With `hand_over`, the messages this commit queues are leased in it (see [`HandOver`]).
    async fn fire_many(
        &self,
        fired: &[(&Deadline, &Changes)],
        owner: &str,
        now: DateTime<Utc>,
        hand_over: Option<&HandOver>,
    ) -> StoreResult<Fired>;
    /// Fires a claimed deadline with its changes in one transaction. `Ok(false)` when the
    /// deadline was cancelled, moved, fired elsewhere, or the lease lapsed: nothing was written.
    async fn fire(
        &self,
        deadline: &Deadline,
        owner: &str,
        now: DateTime<Utc>,
        changes: &Changes,
    ) -> StoreResult<bool>;
    /// The database's own time: the one clock replicas agree on.
    async fn db_now(&self) -> StoreResult<DateTime<Utc>>;

    /// Boards of `teams` are connected at `at` (each process's heartbeat for its boards).
    async fn boards_seen(&self, teams: &[TeamId], at: DateTime<Utc>) -> StoreResult<()>;
    /// Every team with someone on shift: since when, and when a board was last seen.
    async fn watch_status(&self) -> StoreResult<Vec<WatchStatus>>;

    /// Live changes of all teams after `after`, oldest first, at most `limit`.
    async fn live_since(&self, after: i64, limit: u32) -> StoreResult<Vec<LiveEvent>>;
    /// The newest live change's id (0 when there is none).
    async fn live_head(&self) -> StoreResult<i64>;
    /// Calls `wake` whenever another process wrote live changes (PostgreSQL LISTEN/NOTIFY),
    /// and once after each (re)connect. Returns at once where one process serves (SQLite).
    async fn watch_live(&self, wake: Box<dyn Fn() + Send + Sync>) -> StoreResult<()>;
    /// Forgets live changes older than `before`.
    async fn purge_live(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// The team's visits in progress.
    async fn active_team_visits(&self, team: TeamId) -> StoreResult<Vec<Visit>>;
    /// Deadline and outbox figures at `now`, for `/metrics`.
    async fn ops_figures(&self, now: DateTime<Utc>) -> StoreResult<OpsFigures>;
    /// Calls `wake` whenever another process armed a deadline (PostgreSQL LISTEN/NOTIFY; a
    /// hint only — the loop still polls). Runs until the store is closed; returns at once on
    /// SQLite, where one process serves.
    async fn watch_deadlines(&self, wake: Box<dyn Fn() + Send + Sync>) -> StoreResult<()>;
    /// When an armed deadline can next be claimed, seen at `now`: the earliest one free of a
    /// live lease, or the moment an earlier one's lease lapses. A deadline leased by another
    /// process (or by one that died) is not due for this one until then.
    async fn next_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>>;
    /// Armed deadlines (for tests and the board).
    async fn armed(&self) -> StoreResult<Vec<Deadline>>;

    /// Leases up to `limit` pending messages due at `now`.
    async fn claim_messages(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// Records one delivery attempt and its outcome.
    async fn record_attempt(&self, message: Uuid, attempt: &Attempt, now: DateTime<Utc>) -> StoreResult<()>;
    /// Records the rounds of a dispatcher's batch in one commit, each with its failovers.
    async fn record_deliveries(&self, deliveries: &[Delivery], now: DateTime<Utc>) -> StoreResult<()>;
    /// The phone numbers of those of `people` who have one (the dispatcher's batch lookup).
    async fn phones(&self, people: &[PersonId]) -> StoreResult<Vec<(PersonId, String)>>;
    /// The push subscriptions of `people` on devices not revoked, oldest first.
    async fn push_subscriptions_of(&self, people: &[PersonId]) -> StoreResult<Vec<PushSubscription>>;
    /// Records a provider's delivery report on a message; `NotFound` for an unknown id.
    async fn record_receipt(&self, message: Uuid, status: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Every message, oldest first, optionally of one alarm.
    async fn messages(&self, alarm: Option<AlarmId>) -> StoreResult<Vec<Message>>;
    /// Every delivery attempt of an alarm's messages, in order.
    async fn attempts(&self, alarm: AlarmId) -> StoreResult<Vec<AttemptRecord>>;

    /// Registers a subscription; the same endpoint again replaces the earlier one.
    async fn add_push_subscription(&self, sub: &PushSubscription, now: DateTime<Utc>) -> StoreResult<()>;
    async fn push_subscriptions(&self, person: PersonId) -> StoreResult<Vec<PushSubscription>>;
    /// Forgets a subscription (unsubscribed, or gone at the push service).
    async fn remove_push_subscription(&self, endpoint: &str) -> StoreResult<()>;

    /// Forgets positions recorded before `before` (visit events and alarms), keeping the rest
    /// of the record. `None` when another process holds the maintenance lock right now.
    async fn purge_positions(&self, before: DateTime<Utc>) -> StoreResult<Option<u64>>;

    /// Claims an idempotency key for `person`, or tells what became of it.
    async fn idempotency_begin(
        &self,
        person: PersonId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Idempotency>;
    async fn idempotency_finish(
        &self,
        person: PersonId,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()>;
    /// Forgets a claimed key whose request failed before changing anything.
    async fn idempotency_abandon(&self, person: PersonId, key: &str) -> StoreResult<()>;

    /// Pseudonymises visit details recorded before `before`: free text, assessment answers,
    /// message texts and the homes of ended visits go; kinds, times and counts stay. `None`
    /// when another process holds the maintenance lock right now.
    async fn pseudonymise_visits(&self, before: DateTime<Utc>) -> StoreResult<Option<u64>>;
    /// Deletes audit lines from before `before` (the database refuses any younger than a year
    /// by its own clock). `None` when another process holds the maintenance lock right now.
    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<Option<u64>>;

    /// Records a single sign-on under way, and forgets those that expired before `flow` began.
    async fn begin_sso(&self, flow: &SsoFlow) -> StoreResult<()>;
    /// Takes (and deletes) the sign-on with this state: each one finishes at most once.
    /// `NotFound` when unknown or already taken.
    async fn take_sso(&self, state_hash: &str) -> StoreResult<SsoFlow>;
}
