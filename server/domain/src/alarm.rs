//! Alarms and their escalation.
//!
//! An alarm is open until someone acknowledges it ("Jeg tager den"); the first to acknowledge
//! owns it; nobody acknowledges their own alarm. An acknowledged alarm must be resolved within
//! the policy's follow-up time, or it is opened again and escalation goes on. Escalation walks
//! the chain's steps; after the last one everyone on duty is told, again and again, until
//! someone acknowledges.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{Chain, Channel, Recipient};
use crate::refusal::Refusal;
use crate::{AlarmId, PersonId, TeamId, VisitId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    MissedCheckIn,
    MissedCheckOut,
    Sos,
    Duress,
    /// The phone stopped sending heartbeats during a visit (when the policy asks for them).
    LostHeartbeat,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 5] = [
        AlarmKind::MissedCheckIn,
        AlarmKind::MissedCheckOut,
        AlarmKind::Sos,
        AlarmKind::Duress,
        AlarmKind::LostHeartbeat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::MissedCheckIn => "missed_check_in",
            AlarmKind::MissedCheckOut => "missed_check_out",
            AlarmKind::Sos => "sos",
            AlarmKind::Duress => "duress",
            AlarmKind::LostHeartbeat => "lost_heartbeat",
        }
    }

    /// # Errors
    /// An unknown kind name.
    pub fn parse(s: &str) -> Result<Self, crate::UnknownName> {
        AlarmKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| crate::UnknownName(s.to_owned()))
    }

    /// A silent alarm never tells the worker's own phone: someone may be watching it.
    pub fn is_silent(self) -> bool {
        self == AlarmKind::Duress
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Open,
    Acknowledged,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: AlarmId,
    pub team: TeamId,
    /// The worker the alarm is about.
    pub person: PersonId,
    pub visit: Option<VisitId>,
    pub kind: AlarmKind,
    pub state: AlarmState,
    pub raised_at: DateTime<Utc>,
    /// The escalation chain (from the visit's terms, or the policy's SOS chain).
    pub chain: String,
    /// The next escalation step to run.
    pub step: u32,
    pub acknowledged_by: Option<PersonId>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<PersonId>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    /// Where the worker was when it was raised, if known.
    pub position: Option<crate::geo::Position>,
    /// A drill runs the real chain with every message marked as a test, and never counts in
    /// the real alarm statistics.
    pub drill: bool,
}

impl Alarm {
    pub fn raise(
        id: AlarmId,
        team: TeamId,
        person: PersonId,
        visit: Option<VisitId>,
        kind: AlarmKind,
        chain: &str,
        now: DateTime<Utc>,
    ) -> Alarm {
        Alarm {
            id,
            team,
            person,
            visit,
            kind,
            state: AlarmState::Open,
            raised_at: now,
            chain: chain.to_owned(),
            step: 0,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            outcome: None,
            note: None,
            position: None,
            drill: false,
        }
    }

    /// "I'm on it". The first to acknowledge owns the alarm.
    ///
    /// # Errors
    /// The worker's own alarm, one already acknowledged by someone else, or a resolved one.
    pub fn acknowledge(&mut self, by: PersonId, now: DateTime<Utc>) -> Result<(), Refusal> {
        if by == self.person {
            return Err(Refusal::OwnAlarm);
        }
        match self.state {
            AlarmState::Resolved => Err(Refusal::AlarmResolved),
            AlarmState::Acknowledged if self.acknowledged_by != Some(by) => Err(Refusal::AlarmTaken),
            AlarmState::Acknowledged => Ok(()),
            AlarmState::Open => {
                self.state = AlarmState::Acknowledged;
                self.acknowledged_by = Some(by);
                self.acknowledged_at = Some(now);
                Ok(())
            }
        }
    }

    /// Closes the alarm with an outcome and a note. Only its owner may, or anyone when the
    /// alarm resolves itself (`by` = the worker checking out normally).
    ///
    /// # Errors
    /// Already resolved, or someone else owns it.
    pub fn resolve(
        &mut self,
        by: PersonId,
        outcome: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        match self.state {
            AlarmState::Resolved => return Err(Refusal::AlarmResolved),
            AlarmState::Acknowledged if self.acknowledged_by != Some(by) => return Err(Refusal::AlarmTaken),
            AlarmState::Open if by != self.person => return Err(Refusal::AcknowledgeFirst),
            _ => {}
        }
        self.state = AlarmState::Resolved;
        self.resolved_by = Some(by);
        self.resolved_at = Some(now);
        self.outcome = Some(outcome.to_owned());
        self.note = note;
        Ok(())
    }

    /// The worker signalled (checked in, extended or checked out): a missed check-in or
    /// check-out is over. Returns whether the alarm was still unresolved.
    pub fn stand_down(&mut self, now: DateTime<Utc>) -> bool {
        if self.state == AlarmState::Resolved {
            return false;
        }
        self.state = AlarmState::Resolved;
        self.resolved_by = Some(self.person);
        self.resolved_at = Some(now);
        self.outcome = Some("worker_signalled".into());
        true
    }

    /// The follow-up time passed without a resolution: open again, escalation goes on.
    pub fn reopen(&mut self) {
        if self.state == AlarmState::Acknowledged {
            self.state = AlarmState::Open;
            self.acknowledged_by = None;
            self.acknowledged_at = None;
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == AlarmState::Open
    }
}

/// Who is told, how, and when the next step is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub recipients: Vec<Recipient>,
    pub channels: Vec<Channel>,
    /// When the step after this one is due.
    pub next_due: DateTime<Utc>,
    /// Past the chain's last step: everyone on duty is told.
    pub everyone: bool,
}

/// The plan for escalation step `step` of an alarm raised at `raised_at`, run at `now`.
/// Steps are timed from the alarm; after the last, repeats are timed from `now`.
pub fn plan_step(
    chain: &Chain,
    kind: AlarmKind,
    step: u32,
    raised_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StepPlan {
    let i = step as usize;
    let repeat = now + Duration::minutes(i64::from(chain.repeat_minutes));
    let Some(s) = chain.steps.get(i) else {
        return StepPlan {
            recipients: vec![],
            channels: vec![Channel::Push, Channel::Sms],
            next_due: repeat,
            everyone: true,
        };
    };
    let next_due = chain.steps.get(i + 1).map_or(repeat, |n| {
        (raised_at + Duration::minutes(i64::from(n.after_minutes))).max(now)
    });
    let recipients = s
        .notify
        .iter()
        .copied()
        .filter(|r| !(kind.is_silent() && *r == Recipient::Worker))
        .collect();
    StepPlan {
        recipients,
        channels: s.channels.clone(),
        next_due,
        everyone: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn p(n: u128) -> PersonId {
        PersonId(Uuid::from_u128(n))
    }

    fn alarm(kind: AlarmKind) -> Alarm {
        Alarm::raise(
            AlarmId(Uuid::nil()),
            TeamId(Uuid::nil()),
            p(1),
            None,
            kind,
            "standard",
            t(0),
        )
    }

    #[test]
    fn the_first_to_acknowledge_owns_the_alarm_and_nobody_acknowledges_their_own() {
        let mut a = alarm(AlarmKind::MissedCheckOut);
        assert_eq!(a.acknowledge(p(1), t(1)), Err(Refusal::OwnAlarm));
        a.acknowledge(p(2), t(1)).unwrap();
        assert_eq!(a.acknowledge(p(3), t(2)), Err(Refusal::AlarmTaken));
        assert_eq!(a.resolve(p(3), "ok", None, t(3)), Err(Refusal::AlarmTaken));
        a.resolve(p(2), "worker_safe", Some("Ringede op".into()), t(3))
            .unwrap();
        assert_eq!(a.state, AlarmState::Resolved);
        assert_eq!(a.acknowledge(p(3), t(4)), Err(Refusal::AlarmResolved));
    }

    #[test]
    fn an_open_alarm_must_be_acknowledged_before_it_is_resolved_except_by_the_worker_checking_out() {
        let mut a = alarm(AlarmKind::MissedCheckIn);
        assert_eq!(a.resolve(p(2), "ok", None, t(1)), Err(Refusal::AcknowledgeFirst));
        a.resolve(p(1), "checked_out", None, t(1)).unwrap();
    }

    #[test]
    fn reopening_clears_the_owner() {
        let mut a = alarm(AlarmKind::Sos);
        a.acknowledge(p(2), t(1)).unwrap();
        a.reopen();
        assert!(a.is_open());
        a.acknowledge(p(3), t(2)).unwrap();
    }

    #[test]
    fn the_chain_runs_its_steps_on_time_then_repeats_to_everyone() {
        let policy = Policy::default();
        let chain = &policy.chains["standard"];
        let first = plan_step(chain, AlarmKind::MissedCheckOut, 0, t(0), t(0));
        assert_eq!(first.recipients, vec![Recipient::Worker]);
        assert_eq!(first.next_due, t(5));
        let last = plan_step(chain, AlarmKind::MissedCheckOut, 3, t(0), t(20));
        assert_eq!(last.recipients, vec![Recipient::Manager]);
        assert_eq!(last.next_due, t(30), "after the last step, the repeat interval");
        let beyond = plan_step(chain, AlarmKind::MissedCheckOut, 4, t(0), t(30));
        assert!(beyond.everyone);
        assert_eq!(beyond.next_due, t(40));
    }

    #[test]
    fn a_duress_alarm_never_tells_the_workers_phone() {
        let policy = Policy::default();
        let step = plan_step(&policy.chains["urgent"], AlarmKind::Duress, 0, t(0), t(0));
        assert_eq!(step.recipients, vec![Recipient::Partner]);
    }

    #[test]
    fn a_late_tick_never_schedules_the_next_step_in_the_past() {
        let policy = Policy::default();
        let late = plan_step(&policy.chains["standard"], AlarmKind::Sos, 0, t(0), t(7));
        assert_eq!(late.next_due, t(7));
    }
}
