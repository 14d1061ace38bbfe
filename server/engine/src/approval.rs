//! A supervisor's approval of a lone visit (rule 5), asked for from the door.
//!
//! A worker whose lone start was refused with `lone-approval-required` asks; the ask is a live
//! event of the place's team (`approval_request`), so every supervisor's board shows it at
//! once. A supervisor approves (a `lone_approval` row and an `approval_answer` event in one
//! transaction) or declines (an `approval_answer` event only). Nothing else is stored: an ask
//! is worth something only while the worker waits (`approval_minutes`, as long as an approval
//! lasts), and its state is read back from the team's live events.
//!
//! Invariants:
//! - An answer about a worker and a place answers every open ask of theirs for that place,
//!   so approving from a person's row also clears the ask on every board.
//! - The approval itself is checked and used by the visit start, once (see `start_visit`).

use chrono::{DateTime, Duration, Utc};
use makker_domain::place::{PlaceKind, WarningKind};
use makker_domain::risk::{Answers, RiskLevel, assess};
use makker_domain::visit::VisitKind;
use makker_domain::{PersonId, PlaceId, Role, TeamId};
use makker_store::{LiveEvent, LoneApproval, Person};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{EngineError, Result, found};
use crate::service::Engine;

/// A worker's ask, as the boards get it (`approval_request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoneAsk {
    pub request_id: Uuid,
    pub team_id: TeamId,
    pub worker_id: PersonId,
    pub worker_name: String,
    pub place_id: PlaceId,
    pub place_name: String,
    pub place_kind: PlaceKind,
    /// The visit the worker wants to start, when the phone said.
    pub kind: Option<VisitKind>,
    /// The risk the start was assessed at (the phone's answers, or a colleague's recent
    /// assessment of the place), with the place's warnings counted.
    pub risk_level: Option<RiskLevel>,
    pub risk_points: Option<u32>,
    pub warnings: Vec<AskWarning>,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AskWarning {
    pub kind: WarningKind,
    pub text: String,
}

/// A supervisor's answer (`approval_answer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoneAnswer {
    /// The ask answered from the board; none when approved from a person's row.
    pub request_id: Option<Uuid>,
    pub worker_id: PersonId,
    pub place_id: PlaceId,
    pub approved: bool,
    pub lone_approval_id: Option<Uuid>,
    pub by: PersonId,
    pub by_name: String,
    pub at: DateTime<Utc>,
}

/// Where an ask stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskState {
    Open,
    Approved { lone_approval_id: Uuid },
    Declined,
    Expired,
}

impl Engine {
    fn ask_window(&self) -> Duration {
        Duration::minutes(i64::from(self.settings.approval_minutes))
    }

    /// Asks the supervisors of the place's team to approve a lone visit there. Asking again
    /// for the same place while an ask is open gives that ask back: nobody's board fills up
    /// with a nervous tap.
    ///
    /// # Errors
    /// An unknown place or one of another team; answers the policy does not know.
    pub async fn ask_lone_approval(
        &self,
        me: &Person,
        place: PlaceId,
        kind: Option<VisitKind>,
        answers: Option<Answers>,
    ) -> Result<(LoneAsk, AskState)> {
        let place = found(self.store.place(place).await, "place")?;
        if !me.teams.contains(&place.team) {
            return Err(EngineError::NotFound("place"));
        }
        let now = self.now();
        let warnings = self.warnings_now(place.id).await?;
        let risk = match answers {
            Some(a) => Some(assess(&self.policy, &a, warnings.len())?),
            None => {
                let since = now - Duration::minutes(i64::from(self.policy.assessment.reuse_minutes));
                match self.store.recent_assessment(place.team, place.id, since).await? {
                    Some(a) => Some(assess(&self.policy, &a.answers, warnings.len())?),
                    None => None,
                }
            }
        };
        if let Some(open) = self
            .asks(place.team, now)
            .await?
            .into_iter()
            .rev()
            .find(|(a, s)| a.worker_id == me.id && a.place_id == place.id && *s == AskState::Open)
        {
            return Ok(open);
        }
        let ask = LoneAsk {
            request_id: Uuid::now_v7(),
            team_id: place.team,
            worker_id: me.id,
            worker_name: me.display_name.clone(),
            place_id: place.id,
            place_name: place.name.clone(),
            place_kind: place.kind,
            kind,
            risk_level: risk.map(|r| r.level),
            risk_points: risk.map(|r| r.points),
            warnings: warnings
                .into_iter()
                .map(|w| AskWarning {
                    kind: w.kind,
                    text: w.text,
                })
                .collect(),
            requested_at: now,
            expires_at: now + self.ask_window(),
        };
        let payload = serde_json::to_value(&ask).expect("BUG: an ask serialises");
        self.store
            .post_approval_event(place.team, false, &payload, now)
            .await?;
        Ok((ask, AskState::Open))
    }

    /// An ask and where it stands, for the worker who asked or a supervisor of the team.
    ///
    /// # Errors
    /// Unknown, too old, or someone else's.
    pub async fn lone_ask(&self, me: &Person, id: Uuid) -> Result<(LoneAsk, AskState)> {
        let now = self.now();
        for team in &me.teams {
            let hit = self
                .asks(*team, now)
                .await?
                .into_iter()
                .find(|(a, _)| a.request_id == id);
            if let Some(hit) = hit {
                let supervisor = matches!(me.role, Role::Supervisor | Role::Admin);
                if hit.0.worker_id == me.id || supervisor {
                    return Ok(hit);
                }
            }
        }
        Err(EngineError::NotFound("request"))
    }

    /// The asks of the teams still open, oldest first: what a board shows when it opens.
    ///
    /// # Errors
    /// The store fails.
    pub async fn open_lone_asks(&self, teams: &[TeamId]) -> Result<Vec<LoneAsk>> {
        let now = self.now();
        let mut open = Vec::new();
        for team in teams {
            let asks = self.asks(*team, now).await?;
            open.extend(
                asks.into_iter()
                    .filter(|(_, s)| *s == AskState::Open)
                    .map(|(a, _)| a),
            );
        }
        Ok(open)
    }

    /// A supervisor approves one lone visit by `worker` at `place`; any open ask of theirs
    /// for the place is answered with it.
    ///
    /// # Errors
    /// Not a supervisor or admin of the worker's team.
    pub async fn approve_lone(&self, me: &Person, worker: PersonId, place: PlaceId) -> Result<LoneApproval> {
        if !matches!(me.role, Role::Supervisor | Role::Admin) {
            return Err(EngineError::Forbidden);
        }
        let worker = found(self.store.person(worker).await, "person")?;
        if !worker.teams.iter().any(|t| me.teams.contains(t)) {
            return Err(EngineError::NotFound("person"));
        }
        let place = found(self.store.place(place).await, "place")?;
        if !me.teams.contains(&place.team) {
            return Err(EngineError::NotFound("place"));
        }
        let now = self.now();
        let approval = LoneApproval {
            id: Uuid::now_v7(),
            worker: worker.id,
            supervisor: me.id,
            place: place.id,
            created_at: now,
            expires_at: now + self.ask_window(),
            used_at: None,
        };
        let request_id = self.open_ask_of(place.team, worker.id, place.id, now).await?;
        let answer = LoneAnswer {
            request_id,
            worker_id: worker.id,
            place_id: place.id,
            approved: true,
            lone_approval_id: Some(approval.id),
            by: me.id,
            by_name: me.display_name.clone(),
            at: now,
        };
        let answer = serde_json::to_value(&answer).expect("BUG: an answer serialises");
        self.store.approve_lone(&approval, place.team, &answer).await?;
        Ok(approval)
    }

    /// A supervisor declines an open ask: the worker is told to wait for a colleague.
    ///
    /// # Errors
    /// Not a supervisor or admin; no such open ask in my teams.
    pub async fn decline_lone(&self, me: &Person, id: Uuid) -> Result<()> {
        if !matches!(me.role, Role::Supervisor | Role::Admin) {
            return Err(EngineError::Forbidden);
        }
        let (ask, state) = self.lone_ask(me, id).await?;
        if state != AskState::Open {
            return Err(EngineError::NotFound("open request"));
        }
        let now = self.now();
        let answer = LoneAnswer {
            request_id: Some(id),
            worker_id: ask.worker_id,
            place_id: ask.place_id,
            approved: false,
            lone_approval_id: None,
            by: me.id,
            by_name: me.display_name.clone(),
            at: now,
        };
        let answer = serde_json::to_value(&answer).expect("BUG: an answer serialises");
        self.store
            .post_approval_event(ask.team_id, true, &answer, now)
            .await?;
        Ok(())
    }

    async fn open_ask_of(
        &self,
        team: TeamId,
        worker: PersonId,
        place: PlaceId,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>> {
        let asks = self.asks(team, now).await?;
        Ok(asks
            .into_iter()
            .rev()
            .find(|(a, s)| a.worker_id == worker && a.place_id == place && *s == AskState::Open)
            .map(|(a, _)| a.request_id))
    }

    /// The team's recent asks with their states, oldest first: expired ones stay readable for
    /// another window, so a phone that polled late learns that its ask ran out.
    async fn asks(&self, team: TeamId, now: DateTime<Utc>) -> Result<Vec<(LoneAsk, AskState)>> {
        let events = self
            .store
            .approval_events(team, now - self.ask_window() * 2)
            .await?;
        Ok(fold_asks(&events, now))
    }
}

/// Replays asks and answers in order; an answer settles every earlier open ask of the same
/// worker and place. Rows that do not parse (written by another version) are skipped.
fn fold_asks(events: &[LiveEvent], now: DateTime<Utc>) -> Vec<(LoneAsk, AskState)> {
    let mut asks: Vec<(LoneAsk, AskState)> = Vec::new();
    for e in events {
        if e.kind == "approval_request" {
            asks.extend(serde_json::from_value::<LoneAsk>(e.payload.clone()).map(|a| (a, AskState::Open)));
        } else if let Ok(answer) = serde_json::from_value::<LoneAnswer>(e.payload.clone()) {
            let settled = match answer.lone_approval_id {
                Some(id) if answer.approved => AskState::Approved { lone_approval_id: id },
                _ => AskState::Declined,
            };
            for (ask, state) in &mut asks {
                if ask.worker_id == answer.worker_id
                    && ask.place_id == answer.place_id
                    && *state == AskState::Open
                    && ask.requested_at <= answer.at
                {
                    *state = settled;
                }
            }
        }
    }
    for (ask, state) in &mut asks {
        if *state == AskState::Open && now >= ask.expires_at {
            *state = AskState::Expired;
        }
    }
    asks
}
