//! Makker's mobile API v1: the wire contract between phones and the server.
//!
//! These types are the single source of `schemas/openapi.json` (through the server's router)
//! and of the typed [`client`] that the end-to-end tests use. Changing a field here changes
//! the contract: the drift test in `tests/` will say so.
//!
//! Conventions: ids are UUIDs; times are RFC 3339 in UTC; mutating calls accept an
//! `Idempotency-Key` header; events queued offline carry `client_time`, the phone's own time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use makker_domain::Role;
use makker_domain::alarm::AlarmKind;
use makker_domain::place::{PlaceKind, WarningKind};
use makker_domain::risk::RiskLevel;
use makker_domain::text::Lang;
use makker_domain::visit::{ParticipantRole, VisitKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[cfg(feature = "client")]
pub mod client;
/// Routes, areas, coverage and incidents (issue 4).
pub mod coverage;

/// The header that makes a mutating call safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// An RFC 9457 problem. `type` is stable; `detail` is for the person holding the phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For policy refusals: the refusal's stable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A WGS 84 position as the phone reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

/// What every event from a phone may carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// The phone's time when the event happened (queued offline); bounded by policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LatLon>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Shown in the list of my devices, e.g. "Annas telefon".
    pub device_name: String,
}

/// Signing in from a browser: the session token goes into an HttpOnly cookie, never to
/// the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub username: String,
    pub password: String,
}

/// A web session, as the page sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// Send it as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
    /// The session's device id (it is listed among my devices and can be revoked).
    pub device_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub person: PersonView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token for `Authorization: Bearer …`. Shown once.
    pub token: String,
    pub device_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub person: PersonView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub lang: Lang,
    pub teams: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftRequest {
    /// Which of my teams; my first team when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShiftView {
    pub id: Uuid,
    pub team_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// My phone's state during my shift, for the supervisors' board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// The battery level in percent.
    #[schema(minimum = 0, maximum = 100)]
    pub battery_pct: u8,
    /// Whether the phone is charging; unknown when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
}

/// A phone's state as the board sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhoneStatusView {
    pub person_id: Uuid,
    pub battery_pct: u8,
    pub charging: Option<bool>,
    pub reported_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WarningView {
    pub kind: WarningKind,
    pub text: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NearbyPlaceView {
    pub id: Uuid,
    pub name: String,
    pub kind: PlaceKind,
    pub center: LatLon,
    /// Metres from the given position to the place's edge; zero inside.
    pub distance_m: f64,
    /// Active warnings only.
    pub warnings: Vec<WarningView>,
}

/// One of a team's places, with the warnings that apply now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlaceView {
    pub id: Uuid,
    pub name: String,
    pub kind: PlaceKind,
    pub center: LatLon,
    /// Metres around the centre that count as the place; none for a drawn area.
    pub radius_m: Option<f64>,
    pub warnings: Vec<WarningView>,
}

/// One question of the quick risk assessment, in the asker's language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuestionView {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerRequest {
    pub person_id: Uuid,
    pub role: ParticipantRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVisitRequest {
    pub kind: VisitKind,
    pub place_id: Uuid,
    pub planned_minutes: u32,
    /// My role; `talker` when left out.
    #[serde(default = "talker")]
    pub role: ParticipantRole,
    #[serde(default)]
    pub partners: Vec<PartnerRequest>,
    /// Question id → yes/no. Leave out to reuse a colleague's recent assessment of the place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<BTreeMap<String, bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lone_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lone_approval_id: Option<Uuid>,
    /// The colleague told when I leave a home alone (rule 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tell_colleague_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LatLon>,
}

fn talker() -> ParticipantRole {
    ParticipantRole::Talker
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub role: ParticipantRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LatLon>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LatLon>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckOutRequest {
    /// Required when I have a PIN. The duress PIN is accepted the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LatLon>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParticipantView {
    pub person_id: Uuid,
    pub role: ParticipantRole,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VisitView {
    pub id: Uuid,
    pub kind: VisitKind,
    pub place_id: Uuid,
    /// `active` or `ended`.
    pub state: String,
    pub risk_level: RiskLevel,
    pub risk_points: u32,
    pub started_at: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    /// The latest the planned end may be extended to.
    pub max_end: DateTime<Utc>,
    pub last_check_in_at: DateTime<Utc>,
    pub check_in_due: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub participants: Vec<ParticipantView>,
    pub min_participants: u8,
    pub lone_reason: Option<String>,
}

/// My active visit, or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveVisitResponse {
    pub visit: Option<VisitView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ColleagueView {
    pub person_id: Uuid,
    pub display_name: String,
    pub team_id: Uuid,
    pub shift_started_at: DateTime<Utc>,
    pub visit_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    pub id: Uuid,
    pub kind: AlarmKind,
    /// `open`, `acknowledged` or `resolved`.
    pub state: String,
    /// The worker the alarm is about.
    pub person_id: Uuid,
    pub raised_at: DateTime<Utc>,
    pub visit_id: Option<Uuid>,
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    /// A practice alarm: its messages say so, and it never counts in alarm statistics.
    pub drill: bool,
}

/// Someone was shown my position (on an alarm): from the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LocationViewEntry {
    pub at: DateTime<Utc>,
    pub viewer_id: Option<Uuid>,
    pub viewer_name: Option<String>,
    /// The alarm whose position was shown.
    pub alarm_id: Option<String>,
}

/// One message of an alarm's escalation trail and what became of it. The text itself is left
/// out: an SMS may carry the worker's position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The outbox row's id, which the provider got as its reference.
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub recipient_name: String,
    /// `sms` or `push`.
    pub channel: String,
    /// `alarm`, `stand_down`, `follow_up`, ...
    pub kind: String,
    /// `pending`, `sent`, `failed` or `cancelled`.
    pub state: String,
    /// The provider that accepted it.
    pub provider: Option<String>,
    /// The provider's last delivery report (e.g. `delivered`, `failed`).
    pub receipt: Option<String>,
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub drill: bool,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub provider: String,
    /// `sent`, `retry` or `failed`.
    pub outcome: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// Start a drill for one worker, or for every worker on shift in a team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// e.g. `worker_safe`, `police_called`, `false_alarm`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoneApprovalRequest {
    pub worker_id: Uuid,
    pub place_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoneApprovalView {
    pub id: Uuid,
    pub worker_id: Uuid,
    pub place_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// A worker at the door asks the team's supervisors to approve a lone visit (after a start
/// was refused with `lone-approval-required`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoneApprovalAsk {
    pub place_id: Uuid,
    /// The visit the worker wants to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<VisitKind>,
    /// The risk assessment's answers (question id → yes), so the board sees the level; without
    /// them a colleague's recent assessment of the place is shown, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<BTreeMap<String, bool>>,
}

/// Where an ask for approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoneAskState {
    /// Waiting for a supervisor.
    Open,
    /// Approved: start the visit again (the approval is used by itself).
    Approved,
    /// Declined: wait for a colleague.
    Declined,
    /// Nobody answered in time.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoneApprovalAskView {
    pub request_id: Uuid,
    pub place_id: Uuid,
    pub state: LoneAskState,
    /// The approval, once approved.
    pub lone_approval_id: Option<Uuid>,
    pub risk_level: Option<RiskLevel>,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// `PushSubscription.toJSON()` from the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushSubscriptionRequest {
    pub endpoint: String,
    pub keys: PushKeys,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushUnsubscribeRequest {
    pub endpoint: String,
}

/// The `applicationServerKey` to subscribe with; none when push is not configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushKeyView {
    pub public_key: Option<String>,
}
