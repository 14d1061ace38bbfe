//! The audit log (DESIGN §8): who read whose positions, who acknowledged and resolved what,
//! and every administrative change. Lines about a change are written in the change's own
//! transaction ([`Changes::audit`](makker_store::Changes)); reads and command-line actions are
//! appended on their own. A worker can see who viewed their location.

use chrono::{DateTime, Utc};
use makker_domain::PersonId;
use makker_domain::alarm::Alarm;
use makker_store::{AuditEntry, Person};

use crate::error::EngineError;
use crate::service::Engine;

/// Someone saw a worker's position on an alarm.
pub const POSITION_READ: &str = "position.read";

pub fn entry(
    at: DateTime<Utc>,
    actor: Option<PersonId>,
    action: &str,
    subject: Option<PersonId>,
    object: impl ToString,
) -> AuditEntry {
    AuditEntry {
        at,
        actor,
        action: action.to_owned(),
        subject,
        object: Some(object.to_string()),
    }
}

/// One viewing of my location: when, by whom, on which alarm.
#[derive(Debug, Clone)]
pub struct LocationView {
    pub at: DateTime<Utc>,
    pub viewer: Option<Person>,
    pub alarm: Option<String>,
}

impl Engine {
    /// Records that `me` was shown the positions of these alarms (those that have one).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn record_position_reads(&self, me: &Person, alarms: &[&Alarm]) -> Result<(), EngineError> {
        let now = self.now();
        let entries: Vec<AuditEntry> = alarms
            .iter()
            .filter(|a| a.position.is_some())
            .map(|a| entry(now, Some(me.id), POSITION_READ, Some(a.person), a.id))
            .collect();
        if !entries.is_empty() {
            self.store.append_audit(&entries).await?;
        }
        Ok(())
    }

    /// An administrative change from the command line (no signed-in actor).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn audit_admin(
        &self,
        action: &str,
        subject: Option<PersonId>,
        object: impl ToString,
    ) -> Result<(), EngineError> {
        let line = entry(self.now(), None, &format!("admin.{action}"), subject, object);
        Ok(self.store.append_audit(&[line]).await?)
    }

    /// Who viewed my location, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn location_views(&self, me: &Person) -> Result<Vec<LocationView>, EngineError> {
        let mut out = Vec::new();
        for line in self.store.audit_about(me.id, POSITION_READ).await? {
            let viewer = match line.actor {
                Some(p) => Some(self.store.person(p).await?),
                None => None,
            };
            out.push(LocationView {
                at: line.at,
                viewer,
                alarm: line.object,
            });
        }
        Ok(out)
    }
}
