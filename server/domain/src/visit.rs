//! The visit state machine.
//!
//! A visit starts active with its participants and the policy terms that applied at the start
//! (a later policy change never alters a running visit). Each participant checks out on their
//! own; the visit ends when the last one is out. Every transition returns the [`Effect`]s it
//! caused; the caller persists them with the new state in one transaction.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{Lone, Policy, Rule};
use crate::refusal::Refusal;
use crate::risk::{Assessed, RiskLevel};
use crate::{PersonId, PlaceId, TeamId, VisitId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VisitKind {
    StreetContact,
    HomeVisitAnnounced,
    HomeVisitUnannounced,
    DropIn,
    Shelter,
    Park,
    Other,
}

impl VisitKind {
    pub const ALL: [VisitKind; 7] = [
        VisitKind::StreetContact,
        VisitKind::HomeVisitAnnounced,
        VisitKind::HomeVisitUnannounced,
        VisitKind::DropIn,
        VisitKind::Shelter,
        VisitKind::Park,
        VisitKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VisitKind::StreetContact => "street_contact",
            VisitKind::HomeVisitAnnounced => "home_visit_announced",
            VisitKind::HomeVisitUnannounced => "home_visit_unannounced",
            VisitKind::DropIn => "drop_in",
            VisitKind::Shelter => "shelter",
            VisitKind::Park => "park",
            VisitKind::Other => "other",
        }
    }

    /// # Errors
    /// An unknown kind name.
    pub fn parse(s: &str) -> Result<Self, crate::UnknownName> {
        VisitKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| crate::UnknownName(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ParticipantRole {
    Talker,
    Observer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitState {
    Active,
    Ended,
}

/// How a participant's check-out PIN matched. Decided by the caller (hashing is I/O-bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pin {
    Normal,
    Duress,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub person: PersonId,
    pub role: ParticipantRole,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

impl Participant {
    pub fn is_present(&self) -> bool {
        self.left_at.is_none()
    }
}

/// The policy terms copied onto a visit at its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub min_participants: u8,
    pub check_in_minutes: u32,
    pub max_minutes: u32,
    pub grace_minutes: u32,
    pub tell_colleague_on_exit: bool,
    pub chain: String,
    /// The check-in interval of a worker whose partner left early (the lone timer).
    pub break_check_in_minutes: u32,
}

impl Terms {
    fn new(r: &Rule, policy: &Policy) -> Self {
        Terms {
            min_participants: r.min_participants,
            check_in_minutes: r.check_in_minutes,
            max_minutes: r.max_minutes,
            grace_minutes: r.grace_minutes,
            tell_colleague_on_exit: r.tell_colleague_on_exit,
            chain: r.chain.clone(),
            break_check_in_minutes: policy.timers.break_check_in_minutes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub id: VisitId,
    pub team: TeamId,
    pub kind: VisitKind,
    pub place: PlaceId,
    pub state: VisitState,
    pub risk: Assessed,
    pub participants: Vec<Participant>,
    pub started_at: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    pub last_check_in_at: DateTime<Utc>,
    /// The last sign of life from any participant's phone: a check-in, an extension, a heartbeat.
    pub last_seen_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub terms: Terms,
    pub lone_reason: Option<String>,
    pub approved_by: Option<PersonId>,
    pub tell_colleague: Option<PersonId>,
    /// Since when the workers still here are fewer than the visit needs: a partner left early.
    pub alone_since: Option<DateTime<Utc>>,
}

/// What happened, as data. The visit event log and, later, the outbox are written from these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    Started {
        by: PersonId,
    },
    Joined {
        person: PersonId,
        role: ParticipantRole,
    },
    CheckedIn {
        person: PersonId,
    },
    Extended {
        person: PersonId,
        planned_end: DateTime<Utc>,
    },
    CheckedOut {
        person: PersonId,
    },
    /// Recorded for the alarm engine; never shown to the phone.
    DuressAlarm {
        person: PersonId,
    },
    /// A partner left a visit that needs more people; the others are now below the minimum
    /// and run on the lone timer: the next check-in is due at `check_in_due`.
    TwoPersonBreak {
        left: PersonId,
        remaining: Vec<PersonId>,
        check_in_due: DateTime<Utc>,
    },
    /// Rule 6: a worker alone has left the home; the named colleague is told.
    TellColleague {
        colleague: PersonId,
        worker: PersonId,
    },
    /// Rule 4: the observer decided that they leave.
    Withdrawn {
        by: PersonId,
    },
    Ended,
}

impl Effect {
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::Started { .. } => "started",
            Effect::Joined { .. } => "joined",
            Effect::CheckedIn { .. } => "checked_in",
            Effect::Extended { .. } => "extended",
            Effect::CheckedOut { .. } => "checked_out",
            Effect::DuressAlarm { .. } => "duress_alarm",
            Effect::TwoPersonBreak { .. } => "two_person_break",
            Effect::TellColleague { .. } => "tell_colleague",
            Effect::Withdrawn { .. } => "withdrawn",
            Effect::Ended => "ended",
        }
    }
}

/// A visit's timers. After every change the armed ones are replaced by [`Visit::timers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// "Remember to check in" shortly before the next check-in or check-out is due.
    Reminder,
    /// The check-in or check-out is due and the grace time has passed: an alarm.
    Overdue,
    /// No sign of life from the phones for the policy's silence time: an alarm.
    Silence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub kind: TimerKind,
    pub due: DateTime<Utc>,
}

/// Everything needed to decide whether a visit may start.
#[derive(Debug, Clone)]
pub struct StartVisit {
    pub id: VisitId,
    pub team: TeamId,
    pub kind: VisitKind,
    pub place: PlaceId,
    /// `None` when no assessment was made and none could be reused (rule 2).
    pub risk: Option<Assessed>,
    /// The starter first, then the partners who go along.
    pub participants: Vec<(PersonId, ParticipantRole)>,
    pub planned_minutes: u32,
    pub lone_reason: Option<String>,
    /// A supervisor who approved a lone visit (checked by the caller).
    pub approved_by: Option<PersonId>,
    pub tell_colleague: Option<PersonId>,
}

impl Visit {
    /// Starts a visit if the policy allows it.
    ///
    /// # Errors
    /// The policy's reason, in the order a worker would fix them: people, then timing.
    pub fn start(
        policy: &Policy,
        req: StartVisit,
        now: DateTime<Utc>,
    ) -> Result<(Visit, Vec<Effect>), Refusal> {
        let risk = req.risk.ok_or(Refusal::AssessmentMissing)?;
        let rule = policy.rule_for(req.kind, risk.level);
        check_participants(&req.participants)?;
        let count = req.participants.len();
        let lone_reason = req
            .lone_reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if count < usize::from(rule.min_participants) {
            match rule.lone {
                Lone::Refused => {
                    return Err(Refusal::TooFewParticipants {
                        min: rule.min_participants,
                        level: risk.level,
                    });
                }
                Lone::Reason if lone_reason.is_none() => return Err(Refusal::LoneReasonRequired),
                Lone::Approval if req.approved_by.is_none() => return Err(Refusal::LoneApprovalRequired),
                _ => {}
            }
        }
        let starter = req.participants[0].0;
        let tell_colleague = req.tell_colleague.filter(|c| *c != starter);
        if count == 1 && rule.tell_colleague_on_exit && tell_colleague.is_none() {
            return Err(Refusal::ColleagueToTellRequired);
        }
        if req.planned_minutes == 0 || req.planned_minutes > rule.max_minutes {
            return Err(Refusal::BadDuration {
                max_minutes: rule.max_minutes,
            });
        }
        let participants = req
            .participants
            .iter()
            .map(|&(person, role)| Participant {
                person,
                role,
                joined_at: now,
                left_at: None,
            })
            .collect();
        let visit = Visit {
            id: req.id,
            team: req.team,
            kind: req.kind,
            place: req.place,
            state: VisitState::Active,
            risk,
            participants,
            started_at: now,
            planned_end: now + minutes(req.planned_minutes),
            last_check_in_at: now,
            last_seen_at: now,
            ended_at: None,
            terms: Terms::new(rule, policy),
            lone_reason,
            approved_by: req.approved_by,
            tell_colleague,
            alone_since: None,
        };
        Ok((visit, vec![Effect::Started { by: starter }]))
    }

    /// # Errors
    /// The visit has ended, the person is already in it, or a second talker.
    pub fn join(
        &mut self,
        person: PersonId,
        role: ParticipantRole,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, Refusal> {
        self.ensure_active()?;
        if let Some(p) = self.participants.iter().find(|p| p.person == person) {
            return Err(if p.is_present() {
                Refusal::AlreadyParticipant
            } else {
                Refusal::AlreadyCheckedOut
            });
        }
        if role == ParticipantRole::Talker && self.present().any(|p| p.role == ParticipantRole::Talker) {
            return Err(Refusal::OneTalker);
        }
        self.participants.push(Participant {
            person,
            role,
            joined_at: now,
            left_at: None,
        });
        Ok(vec![Effect::Joined { person, role }])
    }

    /// # Errors
    /// The visit has ended or the person is not (or no longer) in it.
    pub fn check_in(&mut self, person: PersonId, now: DateTime<Utc>) -> Result<Vec<Effect>, Refusal> {
        self.present_participant(person)?;
        self.last_check_in_at = now;
        self.last_seen_at = now;
        Ok(vec![Effect::CheckedIn { person }])
    }

    /// A heartbeat from a participant's phone: a sign of life, not a check-in. Returns no
    /// effect: heartbeats are not logged, they only move the silence timer.
    ///
    /// # Errors
    /// Not a present participant, or the visit has ended.
    pub fn heartbeat(&mut self, person: PersonId, now: DateTime<Utc>) -> Result<Vec<Effect>, Refusal> {
        self.present_participant(person)?;
        self.last_seen_at = self.last_seen_at.max(now);
        Ok(vec![])
    }

    /// Moves the planned end `by_minutes` past the later of now and the current planned end,
    /// never beyond the policy's maximum duration.
    ///
    /// # Errors
    /// Not a present participant, or the maximum duration would be exceeded.
    pub fn extend(
        &mut self,
        person: PersonId,
        by_minutes: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, Refusal> {
        self.present_participant(person)?;
        let max_end = self.started_at + minutes(self.terms.max_minutes);
        let planned_end = self.planned_end.max(now) + minutes(by_minutes);
        if by_minutes == 0 || planned_end > max_end {
            return Err(Refusal::TooLong {
                max_minutes: self.terms.max_minutes,
            });
        }
        self.planned_end = planned_end;
        self.last_check_in_at = now;
        self.last_seen_at = now;
        Ok(vec![Effect::Extended { person, planned_end }])
    }

    /// One participant checks out. A duress PIN checks out exactly like a normal one, and
    /// adds a [`Effect::DuressAlarm`].
    ///
    /// # Errors
    /// Not a present participant, or the visit has ended.
    pub fn check_out(
        &mut self,
        person: PersonId,
        pin: Pin,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, Refusal> {
        self.present_participant(person)?;
        let was_alone = self.present().count() == 1;
        self.leave(person, now);
        let mut effects = vec![Effect::CheckedOut { person }];
        if pin == Pin::Duress {
            effects.push(Effect::DuressAlarm { person });
        }
        let remaining: Vec<PersonId> = self.present().map(|p| p.person).collect();
        if !remaining.is_empty()
            && remaining.len() < usize::from(self.terms.min_participants)
            && self.alone_since.is_none()
        {
            effects.push(self.break_pair(person, remaining, now));
        }
        if was_alone
            && pin == Pin::Normal
            && (self.terms.tell_colleague_on_exit || self.alone_since.is_some())
            && let Some(colleague) = self.tell_colleague
        {
            effects.push(Effect::TellColleague {
                colleague,
                worker: person,
            });
        }
        effects.extend(self.end_if_empty(now));
        Ok(effects)
    }

    /// The pair broke: those left start their lone timer now, and unless a colleague was
    /// already named, the partner who left is the one told when they are out (as in rule 6).
    fn break_pair(&mut self, left: PersonId, remaining: Vec<PersonId>, now: DateTime<Utc>) -> Effect {
        self.alone_since = Some(now);
        self.last_check_in_at = now;
        self.tell_colleague = self.tell_colleague.or(Some(left));
        Effect::TwoPersonBreak {
            left,
            remaining,
            check_in_due: self.check_in_due(),
        }
    }

    /// Rule 4: the observer decides that the pair leaves; everyone is checked out.
    ///
    /// # Errors
    /// The person is not a present observer.
    pub fn withdraw(&mut self, person: PersonId, now: DateTime<Utc>) -> Result<Vec<Effect>, Refusal> {
        if self.present_participant(person)?.role != ParticipantRole::Observer {
            return Err(Refusal::OnlyObserverWithdraws);
        }
        let present: Vec<PersonId> = self.present().map(|p| p.person).collect();
        let mut effects = vec![Effect::Withdrawn { by: person }];
        for p in present {
            self.leave(p, now);
            effects.push(Effect::CheckedOut { person: p });
        }
        effects.extend(self.end_if_empty(now));
        Ok(effects)
    }

    /// When the next check-in is due: the interval after the last one (the shorter lone timer
    /// once the pair broke), or the planned end if that comes first.
    pub fn check_in_due(&self) -> DateTime<Utc> {
        let interval = match self.alone_since {
            Some(_) => self.terms.check_in_minutes.min(self.terms.break_check_in_minutes),
            None => self.terms.check_in_minutes,
        };
        (self.last_check_in_at + minutes(interval)).min(self.planned_end)
    }

    /// The timers this visit needs now: a reminder `reminder_before_minutes` before the next
    /// check-in (or the check-out, when that comes first), the overdue alarm after the grace
    /// time, and, when the policy asks for heartbeats, the silence alarm. None once ended.
    pub fn timers(&self, reminder_before_minutes: u32, silence_minutes: u32) -> Vec<Timer> {
        if self.state == VisitState::Ended {
            return vec![];
        }
        let due = self.check_in_due();
        let mut timers = vec![
            Timer {
                kind: TimerKind::Reminder,
                due: due - minutes(reminder_before_minutes),
            },
            Timer {
                kind: TimerKind::Overdue,
                due: due + minutes(self.terms.grace_minutes),
            },
        ];
        if silence_minutes > 0 {
            timers.push(Timer {
                kind: TimerKind::Silence,
                due: self.last_seen_at + minutes(silence_minutes),
            });
        }
        timers
    }

    /// What a missed deadline means now: a missed check-out when the planned end is due.
    pub fn overdue_alarm(&self) -> crate::alarm::AlarmKind {
        if self.check_in_due() == self.planned_end {
            crate::alarm::AlarmKind::MissedCheckOut
        } else {
            crate::alarm::AlarmKind::MissedCheckIn
        }
    }

    pub fn present(&self) -> impl Iterator<Item = &Participant> {
        self.participants.iter().filter(|p| p.is_present())
    }

    pub fn risk_level(&self) -> RiskLevel {
        self.risk.level
    }

    fn ensure_active(&self) -> Result<(), Refusal> {
        match self.state {
            VisitState::Active => Ok(()),
            VisitState::Ended => Err(Refusal::VisitEnded),
        }
    }

    fn present_participant(&self, person: PersonId) -> Result<&Participant, Refusal> {
        self.ensure_active()?;
        match self.participants.iter().find(|p| p.person == person) {
            None => Err(Refusal::NotParticipant),
            Some(p) if !p.is_present() => Err(Refusal::AlreadyCheckedOut),
            Some(p) => Ok(p),
        }
    }

    fn leave(&mut self, person: PersonId, now: DateTime<Utc>) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.person == person) {
            p.left_at = Some(now);
        }
    }

    fn end_if_empty(&mut self, now: DateTime<Utc>) -> Option<Effect> {
        if self.present().next().is_some() {
            return None;
        }
        self.state = VisitState::Ended;
        self.ended_at = Some(now);
        Some(Effect::Ended)
    }
}

/// Refuses duplicates, and with two or more people anything but exactly one talker (rule 4).
fn check_participants(participants: &[(PersonId, ParticipantRole)]) -> Result<(), Refusal> {
    if participants.is_empty() {
        return Err(Refusal::NotParticipant);
    }
    let mut people: Vec<PersonId> = participants.iter().map(|p| p.0).collect();
    people.sort();
    people.dedup();
    if people.len() != participants.len() {
        return Err(Refusal::DuplicateParticipant);
    }
    let talkers = participants
        .iter()
        .filter(|p| p.1 == ParticipantRole::Talker)
        .count();
    if participants.len() > 1 && talkers != 1 {
        return Err(Refusal::OneTalker);
    }
    Ok(())
}

fn minutes(m: u32) -> Duration {
    Duration::minutes(i64::from(m))
}

#[cfg(test)]
#[path = "visit_tests.rs"]
mod tests;
