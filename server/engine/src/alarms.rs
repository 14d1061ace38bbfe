//! Alarms: raising, escalating, acknowledging, resolving, and the stand-down. The escalation
//! itself runs from deadlines ([`crate::scheduler`]); this module decides what each step writes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use makker_domain::alarm::{Alarm, AlarmKind, AlarmState, plan_step};
use makker_domain::geo::Position;
use makker_domain::place::{Place, Warning, active_warnings};
use makker_domain::policy::{Channel, Recipient};
use makker_domain::visit::{Effect, Visit};
use makker_domain::{AlarmId, PersonId, PlaceId, Role, TeamId, VisitId};
use makker_store::{
    AttemptRecord, Changes, DeadlineKind, Message, NewDeadline, NewMessage, Person, StoreError, Versioned,
    constraint,
};
use uuid::Uuid;

use crate::audit;
use crate::error::{EngineError, Result, found};
use crate::messages::Text;
use crate::service::Engine;

/// Where the messages of one occasion come from, so none is ever queued twice.
/// A message of an alarm's trail, its recipient and its attempts.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Message,
    pub recipient: Person,
    pub attempts: Vec<AttemptRecord>,
}

pub(crate) struct Occasion<'a> {
    /// Unique per occasion, e.g. `alarm:<id>:3` or `deadline:<id>`.
    pub key: String,
    pub alarm: Option<AlarmId>,
    pub visit: Option<VisitId>,
    pub text: Text<'a>,
    /// A drill: every message says so, and is marked in the outbox.
    pub drill: bool,
}

fn drill_mark(drill: bool, lang: makker_domain::text::Lang, body: String) -> String {
    use makker_domain::text::Lang;
    if !drill {
        return body;
    }
    let mark = match lang {
        Lang::Da => "[ØVELSE]",
        Lang::Sv => "[ÖVNING]",
        Lang::En => "[DRILL]",
    };
    format!("{mark} {body}")
}

pub(crate) fn escalate_now(alarm: AlarmId, at: DateTime<Utc>) -> NewDeadline {
    NewDeadline {
        kind: DeadlineKind::Escalate,
        visit: None,
        alarm: Some(alarm),
        due_at: at,
    }
}

/// What a batch of firings read up front (in a few queries for the whole batch), so that
/// each firing need not read it again. A map left `None` was not read: each firing asks
/// the database itself.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub visits: HashMap<VisitId, Visit>,
    pub people: HashMap<PersonId, Person>,
    pub places: HashMap<PlaceId, Place>,
    pub warnings: Option<HashMap<PlaceId, Vec<Warning>>>,
    pub positions: Option<HashMap<VisitId, Position>>,
    /// The people with a push subscription.
    pub pushable: Option<HashSet<PersonId>>,
}

impl Known {
    pub(crate) async fn person(&self, engine: &Engine, id: PersonId) -> Result<Person> {
        match self.people.get(&id) {
            Some(p) => Ok(p.clone()),
            None => Ok(engine.store.person(id).await?),
        }
    }

    pub(crate) async fn visit(&self, engine: &Engine, id: VisitId) -> Result<Visit> {
        match self.visits.get(&id) {
            Some(v) => Ok(v.clone()),
            None => Ok(engine.store.visit(id).await?.value),
        }
    }

    async fn place(&self, engine: &Engine, id: PlaceId) -> Result<Place> {
        match self.places.get(&id) {
            Some(p) => Ok(p.clone()),
            None => Ok(engine.store.place(id).await?),
        }
    }

    async fn warnings(&self, engine: &Engine, place: PlaceId) -> Result<Vec<Warning>> {
        match &self.warnings {
            Some(all) => Ok(all.get(&place).cloned().unwrap_or_default()),
            None => Ok(engine.store.warnings(place).await?),
        }
    }

    async fn last_position(&self, engine: &Engine, visit: VisitId) -> Result<Option<Position>> {
        match &self.positions {
            Some(all) => Ok(all.get(&visit).copied()),
            None => Ok(engine.store.last_positions(&[visit]).await?.pop().map(|(_, p)| p)),
        }
    }

    async fn pushable(&self, engine: &Engine, person: PersonId) -> Result<bool> {
        match &self.pushable {
            Some(all) => Ok(all.contains(&person)),
            None => Ok(!engine.store.push_subscriptions(person).await?.is_empty()),
        }
    }
}

impl Engine {
    /// One message per person and channel they can receive: SMS with a phone number, push
    /// with a registered subscription (and push configured). Positions go only by SMS.
    pub(crate) async fn messages(
        &self,
        to: &[Person],
        channels: &[Channel],
        o: &Occasion<'_>,
    ) -> Result<Vec<NewMessage>> {
        self.messages_with(to, channels, o, &Known::default()).await
    }

    /// [`Self::messages`] with what a batch of firings read already.
    pub(crate) async fn messages_with(
        &self,
        to: &[Person],
        channels: &[Channel],
        o: &Occasion<'_>,
        known: &Known,
    ) -> Result<Vec<NewMessage>> {
        let mut out = Vec::new();
        for person in to {
            for channel in channels {
                let reachable = match channel {
                    Channel::Sms => person.phone.is_some(),
                    Channel::Push => {
                        self.settings.push_public_key.is_some() && known.pushable(self, person.id).await?
                    }
                };
                if !reachable {
                    continue;
                }
                let name = match channel {
                    Channel::Sms => "sms",
                    Channel::Push => "push",
                };
                out.push(NewMessage {
                    id: Uuid::now_v7(),
                    dedup_key: format!("{}:{}:{}", o.key, person.id, name),
                    alarm: o.alarm,
                    visit: o.visit,
                    person: person.id,
                    channel: *channel,
                    kind: o.text.kind().to_owned(),
                    body: drill_mark(
                        o.drill,
                        person.lang,
                        o.text.render(person.lang, *channel == Channel::Sms),
                    ),
                    drill: o.drill,
                });
            }
        }
        Ok(out)
    }

    /// Everyone on shift in the team, and the team's supervisors, except `except`.
    async fn on_duty(&self, team: TeamId, except: &[PersonId]) -> Result<Vec<Person>> {
        let mut people: Vec<Person> = self
            .store
            .on_shift(team)
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        for p in self.store.team_members(team).await? {
            if p.role == Role::Supervisor && !people.iter().any(|q| q.id == p.id) {
                people.push(p);
            }
        }
        people.retain(|p| !except.contains(&p.id));
        Ok(people)
    }

    /// Supervisors on shift in the team, or every supervisor of the team when none is.
    pub(crate) async fn supervisors(&self, team: TeamId) -> Result<Vec<Person>> {
        let on_shift: Vec<Person> = self
            .store
            .on_shift(team)
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.role == Role::Supervisor)
            .collect();
        if !on_shift.is_empty() {
            return Ok(on_shift);
        }
        let all = self.store.team_members(team).await?;
        Ok(all.into_iter().filter(|p| p.role == Role::Supervisor).collect())
    }

    async fn recipients(
        &self,
        r: Recipient,
        alarm: &Alarm,
        visit: Option<&Visit>,
        known: &Known,
    ) -> Result<Vec<Person>> {
        // Partners who already left are told too: after a two-person break the one who left is
        // the nearest help.
        let partners: Vec<PersonId> = visit
            .map(|v| {
                v.participants
                    .iter()
                    .map(|p| p.person)
                    .filter(|p| *p != alarm.person)
                    .collect()
            })
            .unwrap_or_default();
        Ok(match r {
            Recipient::Worker => vec![known.person(self, alarm.person).await?],
            Recipient::Partner => {
                let mut out = Vec::new();
                for p in &partners {
                    out.push(known.person(self, *p).await?);
                }
                out
            }
            Recipient::ColleaguesOnShift => {
                let mut except = partners.clone();
                except.push(alarm.person);
                let on_shift = self.store.on_shift(alarm.team).await?;
                on_shift
                    .into_iter()
                    .map(|(p, _)| p)
                    .filter(|p| !except.contains(&p.id) && p.role == Role::Worker)
                    .collect()
            }
            Recipient::Supervisor => self.supervisors(alarm.team).await?,
            Recipient::Manager => {
                let all = self.store.team_members(alarm.team).await?;
                all.into_iter().filter(|p| p.role == Role::Manager).collect()
            }
        })
    }

    /// The changes of escalation step `alarm.step`: its messages, the next step's deadline.
    pub(crate) async fn escalation_step(
        &self,
        alarm: Versioned<Alarm>,
        now: DateTime<Utc>,
    ) -> Result<Changes> {
        let visit = match alarm.value.visit {
            Some(v) => Some(self.store.visit(v).await?.value),
            None => None,
        };
        self.escalation_step_of(alarm, visit, &Known::default(), now)
            .await
    }

    /// [`Self::escalation_step`] with the alarm's visit already read.
    pub(crate) async fn escalation_step_of(
        &self,
        mut alarm: Versioned<Alarm>,
        visit: Option<Visit>,
        known: &Known,
        now: DateTime<Utc>,
    ) -> Result<Changes> {
        let a = &alarm.value;
        let mut changes = Changes::default();
        if a.state != AlarmState::Open {
            return Ok(changes);
        }
        let chain = self
            .policy
            .chains
            .get(&a.chain)
            .unwrap_or(&self.policy.chains[&self.policy.timers.sos_chain]);
        let plan = plan_step(chain, a.kind, a.step, a.raised_at, now);
        let mut people: Vec<Person> = Vec::new();
        if plan.everyone {
            let except: Vec<PersonId> = if a.kind.is_silent() {
                vec![a.person]
            } else {
                vec![]
            };
            people = self.on_duty(a.team, &except).await?;
        } else {
            for r in &plan.recipients {
                for p in self.recipients(*r, a, visit.as_ref(), known).await? {
                    if !people.iter().any(|q| q.id == p.id) {
                        people.push(p);
                    }
                }
            }
        }
        let worker = match people.iter().find(|p| p.id == a.person) {
            Some(p) => p.clone(),
            None => known.person(self, a.person).await?,
        };
        let (place, warnings) = match &visit {
            Some(v) => {
                let place = known.place(self, v.place).await?;
                let all = known.warnings(self, v.place).await?;
                let texts = active_warnings(&all, now)
                    .iter()
                    .map(|w| w.text.clone())
                    .collect();
                (place.name, texts)
            }
            None => (String::from("–"), vec![]),
        };
        let position = match (a.position, a.visit) {
            (Some(p), _) => Some(p),
            (None, Some(v)) => known.last_position(self, v).await?,
            (None, None) => None,
        };
        let link = format!("{}/alarms/{}", self.settings.public_url, a.id);
        let text = Text::Alarm {
            kind: a.kind,
            worker: &worker.display_name,
            place: &place,
            warnings: &warnings,
            position,
            link: &link,
        };
        let occasion = Occasion {
            key: format!("alarm:{}:{}", a.id, a.step),
            drill: a.drill,
            alarm: Some(a.id),
            visit: a.visit,
            text,
        };
        changes.outbox = self
            .messages_with(&people, &plan.channels, &occasion, known)
            .await?;
        changes.arm.push(escalate_now(a.id, plan.next_due));
        alarm.value.step += 1;
        changes.saved_alarms.push(alarm);
        Ok(changes)
    }

    /// The follow-up time passed: an acknowledged alarm that is not resolved opens again and
    /// escalation goes on from the next step; the owner and the supervisors are told.
    pub(crate) async fn follow_up(&self, mut alarm: Versioned<Alarm>, now: DateTime<Utc>) -> Result<Changes> {
        let mut changes = Changes::default();
        if alarm.value.state != AlarmState::Acknowledged {
            return Ok(changes);
        }
        let a = &alarm.value;
        let worker = self.store.person(a.person).await?;
        let mut told = self.supervisors(a.team).await?;
        if let Some(owner) = a.acknowledged_by
            && !told.iter().any(|p| p.id == owner)
        {
            told.push(self.store.person(owner).await?);
        }
        let key = format!(
            "alarm:{}:follow-up:{}",
            a.id,
            a.acknowledged_at.unwrap_or(now).timestamp()
        );
        let occasion = Occasion {
            key,
            drill: a.drill,
            alarm: Some(a.id),
            visit: a.visit,
            text: Text::FollowUp {
                worker: &worker.display_name,
            },
        };
        changes.outbox = self
            .messages(&told, &[Channel::Sms, Channel::Push], &occasion)
            .await?;
        changes.arm.push(escalate_now(a.id, now));
        alarm.value.reopen();
        changes.saved_alarms.push(alarm);
        Ok(changes)
    }

    /// "I'm on it": the first to acknowledge owns the alarm; escalation stops and the
    /// follow-up timer starts.
    ///
    /// # Errors
    /// The worker's own alarm, another team's alarm, or one already taken or resolved.
    pub async fn acknowledge(&self, me: &Person, id: AlarmId) -> Result<Alarm> {
        let mut alarm = self.team_alarm(me, id).await?;
        let now = self.now();
        alarm.value.acknowledge(me.id, now)?;
        let follow_up = now + Duration::minutes(i64::from(self.policy.timers.ack_follow_up_minutes));
        let changes = Changes {
            calm_alarms: vec![id],
            arm: vec![NewDeadline {
                kind: DeadlineKind::FollowUp,
                visit: None,
                alarm: Some(id),
                due_at: follow_up,
            }],
            saved_alarms: vec![alarm.clone()],
            audit: vec![audit::entry(
                now,
                Some(me.id),
                "alarm.acknowledge",
                Some(alarm.value.person),
                id,
            )],
            ..Changes::default()
        };
        self.apply(&changes, now).await?;
        Ok(alarm.value)
    }

    /// "TAG" by SMS: acknowledges the newest open alarm this person was sent a message about.
    ///
    /// # Errors
    /// No open alarm was sent to them, or the alarm's own refusals.
    pub(crate) async fn acknowledge_by_sms(&self, me: &Person) -> Result<Visit> {
        let mut open: Option<Alarm> = None;
        // team_alarms is newest first: the first open one the sender was told of wins.
        for a in self.team_alarms(me).await? {
            if a.state == AlarmState::Open
                && self
                    .store
                    .messages(Some(a.id))
                    .await?
                    .iter()
                    .any(|m| m.message.person == me.id)
            {
                open = Some(a);
                break;
            }
        }
        let alarm = open.ok_or(EngineError::NotFound("open alarm"))?;
        self.acknowledge(me, alarm.id).await?;
        let visit = alarm.visit.ok_or(EngineError::NotFound("visit"))?;
        Ok(self.store.visit(visit).await?.value)
    }

    /// Closes an acknowledged alarm with an outcome and a note.
    ///
    /// # Errors
    /// Not the owner, not acknowledged, already resolved, or another team's alarm.
    pub async fn resolve(
        &self,
        me: &Person,
        id: AlarmId,
        outcome: &str,
        note: Option<String>,
    ) -> Result<Alarm> {
        let mut alarm = self.team_alarm(me, id).await?;
        let now = self.now();
        alarm.value.resolve(me.id, outcome, note, now)?;
        let changes = Changes {
            calm_alarms: vec![id],
            saved_alarms: vec![alarm.clone()],
            audit: vec![audit::entry(
                now,
                Some(me.id),
                "alarm.resolve",
                Some(alarm.value.person),
                id,
            )],
            ..Changes::default()
        };
        self.apply(&changes, now).await?;
        Ok(alarm.value)
    }

    async fn team_alarm(&self, me: &Person, id: AlarmId) -> Result<Versioned<Alarm>> {
        let alarm = found(self.store.alarm(id).await, "alarm")?;
        if me.teams.contains(&alarm.value.team) {
            Ok(alarm)
        } else {
            Err(EngineError::NotFound("alarm"))
        }
    }

    /// The escalation trail of one of my teams' alarms: every message with its attempts, for
    /// supervisors, managers and admins.
    ///
    /// # Errors
    /// `Forbidden` for workers; `NotFound` for another team's alarm.
    pub async fn deliveries(&self, me: &Person, id: AlarmId) -> Result<Vec<Delivery>> {
        if me.role == Role::Worker {
            return Err(EngineError::Forbidden);
        }
        self.team_alarm(me, id).await?;
        let mut attempts = self.store.attempts(id).await?;
        let mut out = Vec::new();
        for message in self.store.messages(Some(id)).await? {
            let recipient = self.store.person(message.message.person).await?;
            let (mine, rest) = attempts
                .into_iter()
                .partition(|a| a.message == message.message.id);
            attempts = rest;
            out.push(Delivery {
                message,
                recipient,
                attempts: mine,
            });
        }
        Ok(out)
    }

    /// Unresolved alarms of my teams, newest first; never a duress alarm about me.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn team_alarms(&self, me: &Person) -> Result<Vec<Alarm>> {
        let mut out = Vec::new();
        for team in &me.teams {
            out.extend(self.store.unresolved_team_alarms(*team).await?);
        }
        // INVARIANT: a duress alarm never shows on the phone of the worker it is about: whoever
        // forced the check-out may be holding it.
        out.retain(|a| !(a.kind == AlarmKind::Duress && a.person == me.id));
        out.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
        Ok(out)
    }

    /// Applies changes, mapping a concurrent alarm change to `Busy`.
    pub(crate) async fn apply(&self, changes: &Changes, now: DateTime<Utc>) -> Result<()> {
        match self.store.apply(changes, now).await {
            Err(StoreError::Conflict { constraint: c }) if c == constraint::ALARM_VERSION => {
                Err(EngineError::Busy)
            }
            r => {
                r?;
                self.committed(changes);
                Ok(())
            }
        }
    }

    /// What a visit transition causes besides its events: the new timers, a duress alarm,
    /// the colleague told on leaving, the supervisor told of a broken pair, and the stand-down
    /// when the worker signals while an alarm is open (`alarmed`: the visit has alarms not
    /// resolved, read with the visit; without any, their read is spared).
    pub(crate) async fn consequences(
        &self,
        visit: &Visit,
        effects: &[Effect],
        alarmed: bool,
        now: DateTime<Utc>,
    ) -> Result<Changes> {
        let mut c = Changes::default();
        let timers = visit.timers(
            self.policy.timers.reminder_before_minutes,
            self.policy.timers.heartbeat_silence_minutes,
        );
        let timers = timers
            .iter()
            .map(|t| NewDeadline {
                kind: t.kind.into(),
                visit: Some(visit.id),
                alarm: None,
                due_at: t.due,
            })
            .collect();
        c.visit_timers = Some((visit.id, timers));
        let duress = effects.iter().any(|e| matches!(e, Effect::DuressAlarm { .. }));
        for e in effects {
            match e {
                Effect::DuressAlarm { person } => {
                    let alarm = Alarm::raise(
                        AlarmId(Uuid::now_v7()),
                        visit.team,
                        *person,
                        Some(visit.id),
                        AlarmKind::Duress,
                        &visit.terms.chain,
                        now,
                    );
                    c.arm.push(escalate_now(alarm.id, now));
                    c.new_alarms.push(alarm);
                }
                Effect::TellColleague { colleague, worker } => {
                    // Read here, not for every check-in: only what tells someone names the place.
                    let place = self.store.place(visit.place).await?;
                    let worker = self.store.person(*worker).await?;
                    let text = Text::TellColleague {
                        worker: &worker.display_name,
                        place: &place.name,
                    };
                    let occasion = Occasion {
                        drill: false,
                        key: format!("visit:{}:left:{}", visit.id, worker.id),
                        alarm: None,
                        visit: Some(visit.id),
                        text,
                    };
                    c.outbox.extend(
                        self.messages(
                            &[self.store.person(*colleague).await?],
                            &[Channel::Sms, Channel::Push],
                            &occasion,
                        )
                        .await?,
                    );
                }
                Effect::TwoPersonBreak { left, remaining, .. } => {
                    let place = self.store.place(visit.place).await?;
                    c.outbox
                        .extend(self.tell_of_break(visit, &place.name, *left, remaining).await?);
                }
                _ => {}
            }
        }
        if alarmed && !duress {
            let signalled = effects.iter().any(|e| {
                matches!(
                    e,
                    Effect::CheckedIn { .. } | Effect::Extended { .. } | Effect::CheckedOut { .. }
                )
            });
            self.stand_down(visit, signalled, now, &mut c).await?;
        }
        Ok(c)
    }

    /// A pair broke: the supervisors and the partner who left hear who is alone where; those
    /// left get their lone timer.
    async fn tell_of_break(
        &self,
        visit: &Visit,
        place: &str,
        left: PersonId,
        remaining: &[PersonId],
    ) -> Result<Vec<NewMessage>> {
        let minutes = visit
            .terms
            .check_in_minutes
            .min(visit.terms.break_check_in_minutes);
        let alone = self.store.person(remaining[0]).await?;
        let mut told = self.supervisors(visit.team).await?;
        if !told.iter().any(|p| p.id == left) {
            told.push(self.store.person(left).await?);
        }
        told.retain(|p| !remaining.contains(&p.id));
        fn occasion<'a>(visit: &Visit, left: PersonId, text: Text<'a>) -> Occasion<'a> {
            Occasion {
                drill: false,
                key: format!("visit:{}:break:{left}:{}", visit.id, text.kind()),
                alarm: None,
                visit: Some(visit.id),
                text,
            }
        }
        let channels = [Channel::Sms, Channel::Push];
        let break_text = Text::TwoPersonBreak {
            worker: &alone.display_name,
            place,
            minutes,
        };
        let mut out = self
            .messages(&told, &channels, &occasion(visit, left, break_text))
            .await?;
        let mut alone_people = Vec::new();
        for p in remaining {
            alone_people.push(self.store.person(*p).await?);
        }
        out.extend(
            self.messages(
                &alone_people,
                &channels,
                &occasion(visit, left, Text::LoneTimer { minutes }),
            )
            .await?,
        );
        Ok(out)
    }

    /// The worker signalled: missed check-in and check-out alarms of the visit are over (and a
    /// lost heartbeat, once the phone is heard again), and everyone who was told hears so. SOS
    /// and duress alarms stay until someone resolves them.
    async fn stand_down(
        &self,
        visit: &Visit,
        signalled: bool,
        now: DateTime<Utc>,
        c: &mut Changes,
    ) -> Result<()> {
        for mut alarm in self.store.unresolved_alarms(visit.id).await? {
            let a = &alarm.value;
            // A check-in answers a missed check-in or check-out; any sign of life answers silence.
            let answered = match a.kind {
                AlarmKind::MissedCheckIn | AlarmKind::MissedCheckOut => signalled,
                AlarmKind::LostHeartbeat => visit.last_seen_at > a.raised_at,
                AlarmKind::Sos | AlarmKind::Duress => false,
            };
            if !answered || c.saved_alarms.iter().any(|s| s.value.id == a.id) {
                continue;
            }
            let worker = self.store.person(a.person).await?;
            let mut told: Vec<Person> = Vec::new();
            for m in self.store.messages(Some(a.id)).await? {
                let reached = m.state != "cancelled";
                if reached && m.message.person != a.person && !told.iter().any(|p| p.id == m.message.person) {
                    told.push(self.store.person(m.message.person).await?);
                }
            }
            let occasion = Occasion {
                key: format!("alarm:{}:stand-down", a.id),
                drill: a.drill,
                alarm: Some(a.id),
                visit: Some(visit.id),
                text: Text::StandDown {
                    worker: &worker.display_name,
                },
            };
            c.outbox.extend(
                self.messages(&told, &[Channel::Sms, Channel::Push], &occasion)
                    .await?,
            );
            c.calm_alarms.push(a.id);
            alarm.value.stand_down(now);
            c.saved_alarms.push(alarm);
        }
        Ok(())
    }

    /// A drill: the real chain for a worker, or for each worker on shift in a team, with
    /// every message marked as a test. Supervisors and admins start drills.
    ///
    /// # Errors
    /// Another role, a worker or team not mine, or neither given.
    pub async fn start_drill(
        &self,
        me: &Person,
        worker: Option<PersonId>,
        team: Option<TeamId>,
    ) -> Result<Vec<Alarm>> {
        if !matches!(me.role, Role::Supervisor | Role::Admin) {
            return Err(EngineError::Forbidden);
        }
        let targets: Vec<(Person, TeamId)> = match (worker, team) {
            (Some(w), _) => {
                let p = found(self.store.person(w).await, "person")?;
                let shared = p
                    .teams
                    .iter()
                    .copied()
                    .find(|t| me.teams.contains(t))
                    .ok_or(EngineError::NotFound("person"))?;
                vec![(p, shared)]
            }
            (None, Some(t)) if me.teams.contains(&t) => {
                let on_shift = self.store.on_shift(t).await?;
                on_shift
                    .into_iter()
                    .map(|(p, _)| (p, t))
                    .filter(|(p, _)| p.role == Role::Worker)
                    .collect()
            }
            (None, Some(_)) => return Err(EngineError::NotFound("team")),
            (None, None) => return Err(EngineError::Invalid("a drill needs a worker or a team".into())),
        };
        let now = self.now();
        let mut changes = Changes::default();
        for (person, team) in targets {
            let visit = self.store.active_visit_of(person.id).await?.map(|v| v.value.id);
            let mut alarm = Alarm::raise(
                AlarmId(Uuid::now_v7()),
                team,
                person.id,
                visit,
                AlarmKind::Sos,
                &self.policy.timers.sos_chain,
                now,
            );
            alarm.drill = true;
            changes.arm.push(escalate_now(alarm.id, now));
            changes.new_alarms.push(alarm);
        }
        self.apply(&changes, now).await?;
        Ok(changes.new_alarms)
    }

    /// Raises an SOS now: the alarm and its first escalation step, with no reminder.
    ///
    /// # Errors
    /// Storage failures, or a person in no team.
    pub async fn sos(&self, me: &Person, stamp: makker_store::Stamp) -> Result<Alarm> {
        let visit = self.store.active_visit_of(me.id).await?.map(|v| v.value);
        let team = match &visit {
            Some(v) => v.team,
            None => me.teams.first().copied().ok_or(EngineError::Forbidden)?,
        };
        let now = stamp.received_at;
        let mut alarm = Alarm::raise(
            AlarmId(Uuid::now_v7()),
            team,
            me.id,
            visit.map(|v| v.id),
            AlarmKind::Sos,
            &self.policy.timers.sos_chain,
            now,
        );
        alarm.position = stamp.position;
        let changes = Changes {
            arm: vec![escalate_now(alarm.id, now)],
            new_alarms: vec![alarm.clone()],
            ..Changes::default()
        };
        self.apply(&changes, now).await?;
        Ok(alarm)
    }
}
