//! What we push, and to whom: the browser's subscription and a message whose type has no
//! room for a position.
//!
//! Invariants:
//! - A push carries a [`PushPayload`] and nothing else: kind, title, body, visit and alarm
//!   ids, urgency. There is no coordinate field and no free-form map, so no position can
//!   travel through a push service or land on a lock screen; the app fetches what it needs
//!   over the authenticated API, where reading a position is audited.
//! - The `Urgency` header is the payload's urgency, so the two cannot disagree.
//! - A subscription's endpoint and auth secret are capabilities: `Debug` masks them.

use std::fmt;
use std::time::Duration;

use makker_domain::ids::{AlarmId, VisitId};
use serde::{Deserialize, Serialize};

use super::endpoint::mask_endpoint;

pub use web_push::Urgency;

/// A browser's push subscription (`PushSubscription.toJSON()`: `endpoint` and
/// `keys.p256dh`, `keys.auth`), flattened.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The push resource at the browser's push service (RFC 8030).
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed, base64url.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("endpoint", &mask_endpoint(&self.endpoint))
            .field("p256dh", &self.p256dh)
            .field("auth", &"<redacted>")
            .finish()
    }
}

/// What a notification is about; the app's service worker picks its presentation by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// A check-in is due soon.
    CheckInDue,
    /// A check-in is overdue; escalation has begun.
    CheckInOverdue,
    /// An alarm the recipient is asked to act on.
    Alarm,
    /// Someone has taken charge of an alarm.
    AlarmAcknowledged,
    /// An alarm is over.
    AlarmResolved,
    /// Something a colleague should know about a visit (a partner left, a worker is alone).
    VisitNotice,
    /// A shift starts soon.
    ShiftReminder,
}

/// The JSON a push carries, end-to-end encrypted to the browser. By construction it holds
/// no position: see the module invariants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushPayload {
    pub kind: PushKind,
    /// Already in the recipient's language.
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_id: Option<VisitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_id: Option<AlarmId>,
    pub urgency: Urgency,
}

/// A `Topic` (RFC 8030 §5.4): a newer message with the same topic replaces one the push
/// service still holds for an offline device. At most 32 base64url characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic(String);

/// A topic that is empty, too long or not base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a push topic is 1 to 32 base64url characters, got {0:?}")]
pub struct TopicError(pub String);

impl Topic {
    /// # Errors
    /// [`TopicError`] unless `text` is 1 to 32 characters of `A–Z a–z 0–9 - _`.
    pub fn parse(text: &str) -> Result<Topic, TopicError> {
        let valid = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Topic(text.to_owned()))
        } else {
            Err(TopicError(text.to_owned()))
        }
    }

    /// One topic per alarm: an update replaces the stale alarm on a phone that was offline.
    pub fn for_alarm(id: AlarmId) -> Topic {
        Topic(id.0.simple().to_string())
    }

    /// One topic per visit, for reminders that supersede each other.
    pub fn for_visit(id: VisitId) -> Topic {
        Topic(id.0.simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One push: the payload and how the push service should treat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub payload: PushPayload,
    /// How long the push service keeps the message for a device that is offline (`TTL`).
    /// Zero means deliver now or never.
    pub ttl: Duration,
    pub topic: Option<Topic>,
}

impl PushMessage {
    /// The `Urgency` header: always the payload's.
    pub fn urgency(&self) -> Urgency {
        self.payload.urgency
    }
}
