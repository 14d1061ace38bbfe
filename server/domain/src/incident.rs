//! Incidents: threats, violence, offensive acts and near misses against staff, reported from
//! the phone or the board, tied to a place (and the visit, when there was one).
//!
//! A report may put a warning on the place (12 months unless said otherwise), and it tracks
//! the Danish deadlines until each is marked done:
//! - notice to the working-environment authority (Arbejdstilsynet) within 9 days of the first
//!   day of absence, when absence follows;
//! - a police report within 72 hours, when one is to be made.

use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Serialize};

use crate::place::WarningKind;
use crate::{IncidentId, PersonId, PlaceId, TeamId, VisitId, WarningId};

/// Days after the first day of absence for the notice to the authority.
pub const AUTHORITY_DAYS: i64 = 9;
/// Hours after the incident for the police report.
pub const POLICE_HOURS: i64 = 72;
/// A place warning from an incident lasts this long unless the reporter says otherwise.
pub const WARNING_MONTHS: u32 = 12;
/// Longest description we keep.
pub const MAX_DESCRIPTION: usize = 4000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IncidentKind {
    Threat,
    Violence,
    OffensiveAct,
    NearMiss,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 4] = [
        IncidentKind::Threat,
        IncidentKind::Violence,
        IncidentKind::OffensiveAct,
        IncidentKind::NearMiss,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Threat => "threat",
            IncidentKind::Violence => "violence",
            IncidentKind::OffensiveAct => "offensive_act",
            IncidentKind::NearMiss => "near_miss",
        }
    }

    /// # Errors
    /// An unknown kind name.
    pub fn parse(s: &str) -> Result<Self, crate::UnknownName> {
        IncidentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| crate::UnknownName(s.to_owned()))
    }

    /// The warning a place gets from this kind of incident.
    pub fn warning_kind(self) -> WarningKind {
        match self {
            IncidentKind::Threat => WarningKind::Threat,
            IncidentKind::Violence => WarningKind::Violence,
            IncidentKind::OffensiveAct | IncidentKind::NearMiss => WarningKind::Other,
        }
    }

    /// Whether a police report is expected unless the reporter says otherwise.
    pub fn police_by_default(self) -> bool {
        matches!(self, IncidentKind::Threat | IncidentKind::Violence)
    }
}

/// Which deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Duty {
    /// Notice to the working-environment authority (absence followed).
    AuthorityNotice,
    PoliceReport,
}

/// One deadline of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub due_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeadlineState {
    Open,
    Overdue,
    Done,
}

impl Deadline {
    pub fn state(&self, now: DateTime<Utc>) -> DeadlineState {
        match self.done_at {
            Some(_) => DeadlineState::Done,
            None if now > self.due_at => DeadlineState::Overdue,
            None => DeadlineState::Open,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub team: TeamId,
    pub place: PlaceId,
    pub visit: Option<VisitId>,
    pub reported_by: PersonId,
    pub kind: IncidentKind,
    pub description: String,
    pub occurred_at: DateTime<Utc>,
    pub reported_at: DateTime<Utc>,
    pub authority: Option<Deadline>,
    pub police: Option<Deadline>,
    /// The warning this report put on the place.
    pub warning: Option<WarningId>,
}

/// A report as asked for, before it has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub kind: IncidentKind,
    pub description: String,
    pub occurred_at: DateTime<Utc>,
    /// The first day of absence, when absence follows.
    pub absence_from: Option<DateTime<Utc>>,
    /// `None`: as the kind suggests.
    pub police_report: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadIncident {
    #[error("an incident cannot have happened in the future")]
    InTheFuture,
    #[error("an incident is reported within five years")]
    TooLongAgo,
    #[error("absence starts within a year of the incident")]
    AbsenceTooLate,
    #[error("absence cannot start before the incident")]
    AbsenceBeforeIncident,
    #[error("the description must be 1 to 4000 characters")]
    Description,
    #[error("a warning must expire after it is made, within five years")]
    WarningExpiry,
    #[error("this incident has no such deadline")]
    NoSuchDeadline,
}

/// Absence starts at the earliest the day before the incident (a date read at midnight) and
/// within a year of it.
fn check_absence(occurred_at: DateTime<Utc>, from: DateTime<Utc>) -> Result<(), BadIncident> {
    if from < occurred_at - Duration::days(1) {
        return Err(BadIncident::AbsenceBeforeIncident);
    }
    if from > occurred_at + Duration::days(366) {
        return Err(BadIncident::AbsenceTooLate);
    }
    Ok(())
}

/// The deadline for the authority's notice, from the first day of absence.
pub fn authority_deadline(absence_from: DateTime<Utc>) -> Deadline {
    Deadline {
        due_at: absence_from + Duration::days(AUTHORITY_DAYS),
        done_at: None,
    }
}

impl Report {
    /// The incident this report makes, at `now`.
    ///
    /// # Errors
    /// A time in the future, absence before the incident, or an empty or overlong description.
    pub fn accept(
        self,
        id: IncidentId,
        team: TeamId,
        place: PlaceId,
        visit: Option<VisitId>,
        by: PersonId,
        now: DateTime<Utc>,
    ) -> Result<Incident, BadIncident> {
        if self.occurred_at > now {
            return Err(BadIncident::InTheFuture);
        }
        if self.occurred_at < now - Duration::days(5 * 366) {
            return Err(BadIncident::TooLongAgo);
        }
        if let Some(a) = self.absence_from {
            check_absence(self.occurred_at, a)?;
        }
        let description = self.description.trim();
        if description.is_empty()
            || description.chars().count() > MAX_DESCRIPTION
            || description.contains('\0')
        {
            return Err(BadIncident::Description);
        }
        let police = self.police_report.unwrap_or(self.kind.police_by_default());
        Ok(Incident {
            id,
            team,
            place,
            visit,
            reported_by: by,
            kind: self.kind,
            description: description.to_owned(),
            occurred_at: self.occurred_at,
            reported_at: now,
            authority: self.absence_from.map(authority_deadline),
            police: police.then(|| Deadline {
                due_at: self.occurred_at + Duration::hours(POLICE_HOURS),
                done_at: None,
            }),
            warning: None,
        })
    }
}

/// The warning text a place gets when the reporter gives none: what happened, never to whom.
pub fn default_warning_text(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Threat => "Trusler mod personale",
        IncidentKind::Violence => "Vold mod personale",
        IncidentKind::OffensiveAct => "Krænkende handlinger mod personale",
        IncidentKind::NearMiss => "Nærved-hændelse",
    }
}

/// When a warning from an incident reported at `now` expires: as asked, or in 12 months.
///
/// # Errors
/// An expiry not after `now`.
pub fn warning_expiry(
    asked: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, BadIncident> {
    match asked {
        Some(t) if t <= now || t > now + Duration::days(5 * 366) => Err(BadIncident::WarningExpiry),
        Some(t) => Ok(t),
        None => Ok(now
            .checked_add_months(Months::new(WARNING_MONTHS))
            .expect("BUG: a year from now is a valid time")),
    }
}

impl Incident {
    /// Marks a deadline done at `now`; marking it again keeps the first time.
    ///
    /// # Errors
    /// The incident has no such deadline.
    pub fn mark_done(&mut self, duty: Duty, now: DateTime<Utc>) -> Result<(), BadIncident> {
        let d = match duty {
            Duty::AuthorityNotice => self.authority.as_mut(),
            Duty::PoliceReport => self.police.as_mut(),
        }
        .ok_or(BadIncident::NoSuchDeadline)?;
        d.done_at = d.done_at.or(Some(now));
        Ok(())
    }

    /// Absence followed after the report: the authority's notice is now due.
    /// A second call keeps the first deadline.
    ///
    /// # Errors
    /// Absence from before the incident, or over a year after it.
    pub fn absence_from(&mut self, from: DateTime<Utc>) -> Result<(), BadIncident> {
        check_absence(self.occurred_at, from)?;
        self.authority = self.authority.or(Some(authority_deadline(from)));
        Ok(())
    }

    /// Deadlines not done, each with its state at `now`.
    pub fn pending(&self, now: DateTime<Utc>) -> Vec<(Duty, Deadline, DeadlineState)> {
        [
            (Duty::AuthorityNotice, self.authority),
            (Duty::PoliceReport, self.police),
        ]
        .into_iter()
        .filter_map(|(duty, d)| d.map(|d| (duty, d, d.state(now))))
        .filter(|(_, _, s)| *s != DeadlineState::Done)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn t(day: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, h, 0, 0).unwrap()
    }

    fn report(kind: IncidentKind, absence: Option<DateTime<Utc>>) -> Report {
        Report {
            kind,
            description: "Råbte og truede med at slå".into(),
            occurred_at: t(2, 10),
            absence_from: absence,
            police_report: None,
        }
    }

    fn accept(r: Report, now: DateTime<Utc>) -> Result<Incident, BadIncident> {
        let id = Uuid::nil();
        r.accept(IncidentId(id), TeamId(id), PlaceId(id), None, PersonId(id), now)
    }

    #[test]
    fn violence_with_absence_gets_both_danish_deadlines() {
        let i = accept(report(IncidentKind::Violence, Some(t(3, 0))), t(2, 12)).unwrap();
        assert_eq!(
            i.authority.unwrap().due_at,
            t(12, 0),
            "9 days after the first day of absence"
        );
        assert_eq!(i.police.unwrap().due_at, t(5, 10), "72 hours after the incident");
    }

    #[test]
    fn a_near_miss_without_absence_has_no_deadline() {
        let i = accept(report(IncidentKind::NearMiss, None), t(2, 12)).unwrap();
        assert_eq!((i.authority, i.police), (None, None));
        assert!(i.pending(t(20, 0)).is_empty());
    }

    #[test]
    fn deadlines_turn_overdue_and_stay_done_once_marked() {
        let mut i = accept(report(IncidentKind::Threat, None), t(2, 12)).unwrap();
        assert_eq!(i.pending(t(4, 0))[0].2, DeadlineState::Open);
        assert_eq!(i.pending(t(6, 0))[0].2, DeadlineState::Overdue);
        assert_eq!(
            i.mark_done(Duty::AuthorityNotice, t(6, 0)),
            Err(BadIncident::NoSuchDeadline)
        );
        i.mark_done(Duty::PoliceReport, t(6, 0)).unwrap();
        i.mark_done(Duty::PoliceReport, t(9, 0)).unwrap();
        assert_eq!(i.police.unwrap().done_at, Some(t(6, 0)), "the first time is kept");
        assert!(i.pending(t(30, 0)).is_empty());
        i.absence_from(t(4, 0)).unwrap();
        assert_eq!(i.pending(t(30, 0))[0].0, Duty::AuthorityNotice);
    }

    #[test]
    fn bad_reports_are_refused() {
        assert_eq!(
            accept(report(IncidentKind::Threat, None), t(1, 0)),
            Err(BadIncident::InTheFuture)
        );
        assert_eq!(
            accept(report(IncidentKind::Threat, Some(t(1, 0))), t(3, 0)),
            Err(BadIncident::AbsenceBeforeIncident)
        );
        let mut empty = report(IncidentKind::Threat, None);
        empty.description = "  ".into();
        assert_eq!(accept(empty, t(3, 0)), Err(BadIncident::Description));
    }

    #[test]
    fn a_warning_lasts_twelve_months_unless_told_otherwise() {
        let now = t(2, 12);
        assert_eq!(
            warning_expiry(None, now).unwrap(),
            Utc.with_ymd_and_hms(2027, 3, 2, 12, 0, 0).unwrap()
        );
        assert_eq!(warning_expiry(Some(t(9, 0)), now).unwrap(), t(9, 0));
        assert_eq!(
            warning_expiry(Some(t(1, 0)), now),
            Err(BadIncident::WarningExpiry)
        );
    }
}
