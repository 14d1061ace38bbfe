//! The access request (GDPR art. 15): everything Makker holds about the person asking, as one
//! JSON document. Others' data stays out: a shared visit's events are only the asker's own,
//! and an unresolved duress alarm is left out, since whoever holds the phone may be the threat.

use makker_domain::alarm::{AlarmKind, AlarmState};
use makker_store::Person;
use serde_json::{Value, json};

use crate::error::EngineError;
use crate::service::Engine;

impl Engine {
    /// Everything about `me`.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn export(&self, me: &Person) -> Result<Value, EngineError> {
        let store = &self.store;
        let devices: Vec<Value> = store
            .devices(me.id)
            .await?
            .into_iter()
            .map(|d| {
                json!({"id": d.id, "name": d.name, "created_at": d.created_at,
                "expires_at": d.expires_at, "revoked_at": d.revoked_at})
            })
            .collect();
        let mut visits = Vec::new();
        for id in store.visits_of(me.id).await? {
            let events: Vec<_> = store
                .visit_events(id)
                .await?
                .into_iter()
                .filter(|e| e.person == Some(me.id))
                .collect();
            visits.push(json!({"visit": store.visit(id).await?.value, "my_events": events}));
        }
        let alarms: Vec<_> = store
            .alarms_of(me.id)
            .await?
            .into_iter()
            .filter(|a| a.kind != AlarmKind::Duress || a.state == AlarmState::Resolved)
            .collect();
        let messages: Vec<Value> = store
            .messages_to(me.id)
            .await?
            .into_iter()
            .map(|m| {
                json!({"kind": m.message.kind, "channel": m.message.channel, "text": m.message.body,
                "state": m.state, "queued_at": m.created_at, "sent_at": m.sent_at})
            })
            .collect();
        let views: Vec<Value> = self
            .location_views(me)
            .await?
            .into_iter()
            .map(|v| json!({"at": v.at, "viewer": v.viewer.map(|p| p.display_name), "alarm": v.alarm}))
            .collect();
        Ok(json!({
            "exported_at": self.now(),
            "person": {"id": me.id, "username": me.username, "display_name": me.display_name,
                "role": me.role, "phone": me.phone, "lang": me.lang, "teams": me.teams,
                "created_at": me.created_at},
            "devices": devices,
            "shifts": store.shifts_of(me.id).await?,
            // Kept only for the open shift: none once it ended.
            "phone_status": store.phone_status_of(me.id).await?,
            "visits": visits,
            "alarms": alarms,
            "messages": messages,
            "location_views": views,
        }))
    }
}
