//! The services behind every API call and CLI command.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use makker_domain::geo::Position;
use makker_domain::place::{Place, Warning, active_warnings};
use makker_domain::policy::Policy;
use makker_domain::risk::{Answers, assess};
use makker_domain::text::Lang;
use makker_domain::visit::{Effect, ParticipantRole, Pin, StartVisit, Visit, VisitKind};
use makker_domain::{AssessmentId, PersonId, PlaceId, Refusal, Role, ShiftId, TeamId, VisitId};
use makker_store::{
    Assessment, Device, NewEvent, Person, Shift, Stamp, Store, StoreError, Versioned, constraint,
};
use uuid::Uuid;

use crate::auth;
use crate::clock::Clock;
use crate::error::{EngineError, Result, found};

/// Tunables that are configuration, not policy.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub token_days: u32,
    pub approval_minutes: u32,
    pub max_nearby_m: f64,
    /// Where people open links from messages (e.g. to acknowledge an alarm).
    pub public_url: String,
    /// Our VAPID public key when Web Push is configured; without it nothing is pushed.
    pub push_public_key: Option<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            token_days: 90,
            approval_minutes: 30,
            max_nearby_m: 5_000.0,
            public_url: "http://localhost:8080".into(),
            push_public_key: None,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    /// Shared: an engine is cloned for every request.
    pub settings: Arc<EngineSettings>,
    /// Wakes this process's deadline loop when a change armed a deadline.
    pub wake: Arc<tokio::sync::Notify>,
    /// Wakes this process's dispatcher when a change queued messages (its own `Notify`: one
    /// shared with the deadline loop would wake only one of the two).
    pub outbox: Arc<tokio::sync::Notify>,
    pub health: Arc<crate::health::Health>,
}

/// A worker's request to start a visit.
#[derive(Debug, Clone)]
pub struct StartCommand {
    pub kind: VisitKind,
    pub place: PlaceId,
    pub planned_minutes: u32,
    pub role: ParticipantRole,
    pub partners: Vec<(PersonId, ParticipantRole)>,
    /// `None` asks to reuse a colleague's recent assessment of the same place.
    pub answers: Option<Answers>,
    pub lone_reason: Option<String>,
    pub lone_approval: Option<Uuid>,
    pub tell_colleague: Option<PersonId>,
}

impl StartCommand {
    /// A lone visit as the talker, every assessment question answered "no": what the demo,
    /// the process tests and the benchmarks start.
    pub fn lone(kind: VisitKind, place: PlaceId, planned_minutes: u32, policy: &Policy) -> Self {
        let answers = policy
            .assessment
            .questions
            .iter()
            .map(|q| (q.id.clone(), false))
            .collect();
        StartCommand {
            kind,
            place,
            planned_minutes,
            role: ParticipantRole::Talker,
            partners: vec![],
            answers: Some(answers),
            lone_reason: None,
            lone_approval: None,
            tell_colleague: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NearbyPlace {
    pub place: Place,
    pub distance_m: f64,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone)]
pub struct Colleague {
    pub person: Person,
    pub shift: Shift,
    pub visit: Option<VisitId>,
}

#[derive(Debug, Clone)]
pub struct NewPersonInput {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub teams: Vec<TeamId>,
    pub phone: Option<String>,
    pub lang: Lang,
    pub password: Option<String>,
    pub pin: Option<String>,
    pub duress_pin: Option<String>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, policy: Arc<Policy>, clock: Arc<dyn Clock>) -> Self {
        Engine {
            store,
            policy,
            clock,
            settings: Arc::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            outbox: Arc::new(tokio::sync::Notify::new()),
            health: Arc::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// After a commit: wake the deadline loop for new deadlines and the dispatcher for new
    /// messages, so neither waits for its poll.
    pub fn committed(&self, changes: &makker_store::Changes) {
        // A check-in arms deadlines minutes ahead: the loop finds those without a wake-up.
        if changes.arms_soon(self.now()) {
            self.wake.notify_one();
        }
        if !changes.outbox.is_empty() {
            self.outbox.notify_one();
        }
    }

    /// Stamps an incoming event with the server's time, and the phone's when it gave one within
    /// the policy's bounds.
    ///
    /// # Errors
    /// `ClockSkew` when the phone's time is too far behind or ahead.
    pub fn stamp(&self, client_time: Option<DateTime<Utc>>, position: Option<Position>) -> Result<Stamp> {
        let now = self.now();
        if let Some(t) = client_time {
            let bounds = &self.policy.clock;
            let earliest = now - Duration::minutes(i64::from(bounds.max_client_lag_minutes));
            let latest = now + Duration::minutes(i64::from(bounds.max_client_lead_minutes));
            if t < earliest || t > latest {
                return Err(EngineError::ClockSkew);
            }
        }
        Ok(Stamp {
            received_at: now,
            client_time,
            position,
        })
    }

    // --- people and devices -------------------------------------------------------------

    /// # Errors
    /// A taken username, an unknown team or a malformed PIN.
    pub async fn create_person(&self, input: NewPersonInput) -> Result<Person> {
        let username = input.username.trim().to_lowercase();
        if username.is_empty() || username.len() > 64 {
            return Err(EngineError::Invalid("a username is 1 to 64 characters".into()));
        }
        for pin in [&input.pin, &input.duress_pin].into_iter().flatten() {
            if !auth::is_valid_pin(pin) {
                return Err(EngineError::Invalid("a PIN is 4 to 8 digits".into()));
            }
        }
        if input.pin.is_some() && input.pin == input.duress_pin {
            return Err(EngineError::Invalid(
                "the duress PIN must differ from the PIN".into(),
            ));
        }
        for team in &input.teams {
            found(self.store.team(*team).await, "team")?;
        }
        let person = Person {
            id: PersonId(Uuid::now_v7()),
            username,
            display_name: input.display_name.trim().to_owned(),
            role: input.role,
            phone: input.phone,
            lang: input.lang,
            teams: input.teams,
            password_hash: input.password.as_deref().map(auth::hash_secret),
            pin_hash: input.pin.as_deref().map(auth::hash_secret),
            duress_pin_hash: input.duress_pin.as_deref().map(auth::hash_secret),
            created_at: self.now(),
        };
        match self.store.create_person(&person).await {
            Err(StoreError::Conflict { constraint: c }) if c == constraint::USERNAME => Err(
                EngineError::Invalid(format!("the username {:?} is taken", person.username)),
            ),
            r => r.map(|()| person).map_err(EngineError::from),
        }
    }

    /// Issues a new device token for `person`. The token is returned once and stored hashed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn issue_token(&self, person: PersonId, device_name: &str) -> Result<(String, Device)> {
        let now = self.now();
        let token = auth::new_token();
        let device = Device {
            id: Uuid::now_v7(),
            person,
            token_hash: auth::token_hash(&token),
            name: device_name.trim().chars().take(100).collect(),
            created_at: now,
            expires_at: now + Duration::days(i64::from(self.settings.token_days)),
            revoked_at: None,
        };
        self.store.insert_device(&device).await?;
        Ok((token, device))
    }

    /// Checks a username and password and issues a device token.
    ///
    /// # Errors
    /// `Unauthorized` for an unknown user or a wrong password (the same answer for both).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<(Person, String, Device)> {
        let username = username.trim().to_lowercase();
        let now = self.now();
        // Failures are kept under a hash: a password typed into the username field is not stored.
        let failure_key = auth::token_hash(&username);
        let failures = self.store.login_failures(&failure_key).await?;
        if let Some(until) = failures.and_then(|f| f.locked_until).filter(|u| *u > now) {
            return Err(EngineError::LockedOut { until });
        }
        let person = match self.store.person_by_username(&username).await {
            Ok(p) => Some(p),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let hash = person.as_ref().and_then(|p| p.password_hash.clone());
        // Hash even for unknown users, so timing does not tell which usernames exist.
        let ok = match &hash {
            Some(h) => auth::verify_secret(password, h),
            None => {
                auth::hash_secret(password);
                false
            }
        };
        let Some(person) = person.filter(|_| ok) else {
            // Unknown usernames count too: the lockout must not tell which ones exist.
            let after = auth::one_more_failure(failures, now);
            self.store.set_login_failures(&failure_key, Some(&after)).await?;
            return Err(match after.locked_until {
                Some(until) => EngineError::LockedOut { until },
                None => EngineError::Unauthorized,
            });
        };
        if failures.is_some() {
            self.store.set_login_failures(&failure_key, None).await?;
        }
        let (token, device) = self.issue_token(person.id, device_name).await?;
        Ok((person, token, device))
    }

    /// Finds the person behind a bearer token.
    ///
    /// # Errors
    /// `Unauthorized` for an unknown, expired or revoked token.
    pub async fn authenticate(&self, token: &str) -> Result<(Person, Device)> {
        let signed_in = self.store.signed_in(&auth::token_hash(token)).await;
        self.valid_sign_in(signed_in)
    }

    /// [`Self::authenticate`], and the visit `id` read for the change the caller asks for, at
    /// once (in one query where the store can): what a change to a visit reads first. Nothing
    /// of the visit reaches anyone until the change has checked that the caller may see it.
    ///
    /// # Errors
    /// As [`Self::authenticate`].
    pub async fn authenticate_to_change(
        &self,
        token: &str,
        id: VisitId,
    ) -> (Result<(Person, Device)>, ToChange) {
        let (signed_in, read) = self.store.signed_in_to_change(&auth::token_hash(token), id).await;
        let to_change = ToChange { id, read: Some(read) };
        (self.valid_sign_in(signed_in), to_change)
    }

    /// The person and device of a sign-in read, if the device is valid now.
    fn valid_sign_in(
        &self,
        read: std::result::Result<(Device, Person), StoreError>,
    ) -> Result<(Person, Device)> {
        let (device, person) = match read {
            Ok(signed_in) => signed_in,
            Err(StoreError::NotFound) => return Err(EngineError::Unauthorized),
            Err(e) => return Err(e.into()),
        };
        if !device.is_valid(self.now()) {
            return Err(EngineError::Unauthorized);
        }
        Ok((person, device))
    }

    /// Revokes a device: by its owner, or by an admin.
    ///
    /// # Errors
    /// `NotFound` for someone else's device when not an admin.
    pub async fn revoke_device(&self, by: &Person, device: Uuid) -> Result<()> {
        if by.role != Role::Admin {
            let own = self.store.devices(by.id).await?;
            if !own.iter().any(|d| d.id == device) {
                return Err(EngineError::NotFound("device"));
            }
        }
        found(self.store.revoke_device(device, self.now()).await, "device")
    }

    // --- shifts -------------------------------------------------------------------------

    /// # Errors
    /// Not a member of the team, or already on shift.
    pub async fn start_shift(&self, me: &Person, team: Option<TeamId>) -> Result<Shift> {
        let team = self.my_team(me, team)?;
        let shift = Shift {
            id: ShiftId(Uuid::now_v7()),
            person: me.id,
            team,
            started_at: self.now(),
            ended_at: None,
        };
        match self.store.start_shift(&shift).await {
            Err(StoreError::Conflict { constraint: c }) if c == constraint::ONE_OPEN_SHIFT => {
                Err(Refusal::AlreadyOnShift.into())
            }
            r => r.map(|()| shift).map_err(EngineError::from),
        }
    }

    /// # Errors
    /// Not on shift, or still in an active visit.
    pub async fn end_shift(&self, me: &Person) -> Result<Shift> {
        if self.store.active_visit_of(me.id).await?.is_some() {
            return Err(Refusal::AlreadyInVisit.into());
        }
        match self.store.end_shift(me.id, self.now()).await {
            Err(StoreError::NotFound) => Err(Refusal::NotOnShift.into()),
            r => r.map_err(EngineError::from),
        }
    }

    /// Records my phone's battery for the boards of my shift's team. Best effort on the phone:
    /// never queued, so the latest report is the only one.
    ///
    /// # Errors
    /// A level over 100, or not on shift.
    pub async fn report_status(
        &self,
        me: &Person,
        battery_pct: u8,
        charging: Option<bool>,
    ) -> Result<makker_store::PhoneStatus> {
        if battery_pct > 100 {
            return Err(EngineError::Invalid(format!(
                "battery_pct is a percentage (0 to 100), not {battery_pct}"
            )));
        }
        match self
            .store
            .report_status(me.id, battery_pct, charging, self.now())
            .await
        {
            Err(StoreError::NotFound) => Err(Refusal::NotOnShift.into()),
            r => r.map_err(EngineError::from),
        }
    }

    /// Everyone else on shift in my teams, with the visit they are in.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn colleagues(&self, me: &Person) -> Result<Vec<Colleague>> {
        let mut out = Vec::new();
        for team in &me.teams {
            for (person, shift) in self.store.on_shift(*team).await? {
                if person.id == me.id || out.iter().any(|c: &Colleague| c.person.id == person.id) {
                    continue;
                }
                let visit = self.store.active_visit_of(person.id).await?.map(|v| v.value.id);
                out.push(Colleague { person, shift, visit });
            }
        }
        Ok(out)
    }

    fn my_team(&self, me: &Person, team: Option<TeamId>) -> Result<TeamId> {
        match team {
            Some(t) if me.teams.contains(&t) => Ok(t),
            Some(_) => Err(EngineError::NotFound("team")),
            None => me.teams.first().copied().ok_or(EngineError::Forbidden),
        }
    }

    // --- places -------------------------------------------------------------------------

    /// My teams' places within `radius_m` of `at`, nearest first, with their active warnings.
    ///
    /// # Errors
    /// A radius out of range.
    pub async fn places_near(&self, me: &Person, at: Position, radius_m: f64) -> Result<Vec<NearbyPlace>> {
        if !(radius_m > 0.0 && radius_m <= self.settings.max_nearby_m) {
            return Err(EngineError::Invalid(format!(
                "the radius must be between 1 and {} metres",
                self.settings.max_nearby_m
            )));
        }
        let mut near = Vec::new();
        for place in self.store.places(&me.teams).await? {
            let distance_m = place.shape.distance_m(at);
            if distance_m <= radius_m {
                let warnings = self.warnings_now(place.id).await?;
                near.push(NearbyPlace {
                    place,
                    distance_m,
                    warnings,
                });
            }
        }
        near.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        Ok(near)
    }

    /// The warnings of a place that apply now.
    pub(crate) async fn warnings_now(&self, place: PlaceId) -> Result<Vec<Warning>> {
        let all = self.store.warnings(place).await?;
        Ok(active_warnings(&all, self.now()).into_iter().cloned().collect())
    }

    async fn my_place(&self, me: &Person, id: PlaceId) -> Result<Place> {
        let place = found(self.store.place(id).await, "place")?;
        if me.teams.contains(&place.team) {
            Ok(place)
        } else {
            Err(EngineError::NotFound("place"))
        }
    }

    // --- visits -------------------------------------------------------------------------

    /// Starts a visit, if the policy allows it.
    ///
    /// # Errors
    /// The policy's refusal, not on shift, already in a visit, or unknown place or partner.
    pub async fn start_visit(
        &self,
        me: &Person,
        cmd: StartCommand,
        stamp: Stamp,
    ) -> Result<Versioned<Visit>> {
        let now = stamp.received_at;
        let place = self.my_place(me, cmd.place).await?;
        self.store.open_shift(me.id).await?.ok_or(Refusal::NotOnShift)?;
        for (partner, _) in &cmd.partners {
            let p = found(self.store.person(*partner).await, "partner")?;
            if !p.teams.contains(&place.team) {
                return Err(EngineError::NotFound("partner"));
            }
        }
        if let Some(c) = cmd.tell_colleague {
            let colleague = found(self.store.person(c).await, "colleague")?;
            if !colleague.teams.contains(&place.team) {
                return Err(EngineError::NotFound("colleague"));
            }
        }
        if self.store.active_visit_of(me.id).await?.is_some() {
            return Err(Refusal::AlreadyInVisit.into());
        }
        let warnings = self.store.warnings(place.id).await?;
        let active = active_warnings(&warnings, now).len();
        let (assessment, reused) = match cmd.answers {
            Some(answers) => {
                let result = assess(&self.policy, &answers, active)?;
                let a = Assessment {
                    id: AssessmentId(Uuid::now_v7()),
                    place: place.id,
                    team: place.team,
                    by: me.id,
                    answers,
                    result,
                    assessed_at: now,
                };
                (Some(a), false)
            }
            None => {
                let since = now - Duration::minutes(i64::from(self.policy.assessment.reuse_minutes));
                let recent = self.store.recent_assessment(place.team, place.id, since).await?;
                // A reused assessment is scored again: warnings added since then still count.
                let rescored = match recent {
                    Some(mut a) => {
                        a.result = assess(&self.policy, &a.answers, active)?;
                        Some(a)
                    }
                    None => None,
                };
                (rescored, true)
            }
        };
        let explicit = match cmd.lone_approval {
            Some(id) => Some((id, self.check_approval(me, id, place.id, now).await?)),
            None => None,
        };
        let mut participants = vec![(me.id, cmd.role)];
        participants.extend(cmd.partners.iter().copied());
        let req = StartVisit {
            id: VisitId(Uuid::now_v7()),
            team: place.team,
            kind: cmd.kind,
            place: place.id,
            risk: assessment.as_ref().map(|a| a.result),
            participants,
            planned_minutes: cmd.planned_minutes,
            lone_reason: cmd.lone_reason,
            approved_by: explicit.map(|(_, by)| by),
            tell_colleague: cmd.tell_colleague,
        };
        let (visit, effects, approval_used) = match Visit::start(&self.policy, req.clone(), now) {
            // The worker asked from the door and taps Start again: a valid approval for this
            // place is used without its id, and only when the policy needs one.
            Err(Refusal::LoneApprovalRequired) if explicit.is_none() => {
                let approval = self.store.usable_lone_approval(me.id, place.id, now).await?;
                let approval = approval.ok_or(Refusal::LoneApprovalRequired)?;
                let req = StartVisit {
                    approved_by: Some(approval.supervisor),
                    ..req
                };
                let (visit, effects) = Visit::start(&self.policy, req, now)?;
                (visit, effects, Some(approval.id))
            }
            started => {
                let (visit, effects) = started?;
                (visit, effects, explicit.map(|(id, _)| id))
            }
        };
        let assessment = assessment.expect("BUG: Visit::start refuses a visit without an assessment");
        // A visit just started has no alarms yet.
        let mut changes = self.consequences(&visit, &effects, false, now).await?;
        changes.events = self.events(me.id, visit.id, effects, stamp);
        let inserted = self
            .store
            .insert_visit(&visit, &assessment, reused, approval_used, &changes)
            .await;
        self.committed(&changes);
        match inserted {
            Err(StoreError::Conflict { constraint: c }) if c == constraint::ONE_ACTIVE_VISIT => {
                Err(Refusal::AlreadyInVisit.into())
            }
            Err(StoreError::Conflict { .. }) => Err(Refusal::LoneApprovalRequired.into()),
            r => r
                .map(|()| Versioned {
                    value: visit,
                    version: 1,
                })
                .map_err(EngineError::from),
        }
    }

    async fn check_approval(
        &self,
        me: &Person,
        id: Uuid,
        place: PlaceId,
        now: DateTime<Utc>,
    ) -> Result<PersonId> {
        let approval = match self.store.lone_approval(id).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => return Err(Refusal::LoneApprovalRequired.into()),
            Err(e) => return Err(e.into()),
        };
        let valid = approval.worker == me.id
            && approval.place == place
            && approval.used_at.is_none()
            && now < approval.expires_at;
        if valid {
            Ok(approval.supervisor)
        } else {
            Err(Refusal::LoneApprovalRequired.into())
        }
    }

    /// # Errors
    /// See [`Visit::join`]; a visit of another team is not found.
    pub async fn join(
        &self,
        me: &Person,
        visit: VisitId,
        role: ParticipantRole,
        stamp: Stamp,
    ) -> Result<Visit> {
        if self
            .store
            .active_visit_of(me.id)
            .await?
            .is_some_and(|v| v.value.id != visit)
        {
            return Err(Refusal::AlreadyInVisit.into());
        }
        self.change(me, visit, stamp, |v, now| v.join(me.id, role, now))
            .await
    }

    /// # Errors
    /// See [`Visit::check_in`].
    pub async fn check_in(&self, me: &Person, visit: impl Into<ToChange>, stamp: Stamp) -> Result<Visit> {
        self.change(me, visit, stamp, |v, now| v.check_in(me.id, now))
            .await
    }

    /// A heartbeat from my phone during a visit: moves the silence timer only.
    ///
    /// # Errors
    /// See [`Visit::heartbeat`].
    pub async fn heartbeat(&self, me: &Person, visit: impl Into<ToChange>, stamp: Stamp) -> Result<Visit> {
        self.change(me, visit, stamp, |v, now| v.heartbeat(me.id, now))
            .await
    }

    /// # Errors
    /// See [`Visit::extend`].
    pub async fn extend(
        &self,
        me: &Person,
        visit: impl Into<ToChange>,
        minutes: u32,
        stamp: Stamp,
    ) -> Result<Visit> {
        self.change(me, visit, stamp, |v, now| v.extend(me.id, minutes, now))
            .await
    }

    /// Checks out with the PIN; the duress PIN is accepted exactly like the normal one.
    ///
    /// # Errors
    /// A wrong or missing PIN (when the person has one), or see [`Visit::check_out`].
    pub async fn check_out(
        &self,
        me: &Person,
        visit: impl Into<ToChange>,
        pin: Option<&str>,
        stamp: Stamp,
    ) -> Result<Visit> {
        let pin = match (&me.pin_hash, pin) {
            (None, _) => Pin::Normal,
            (Some(_), None) => return Err(Refusal::WrongPin.into()),
            (Some(normal), Some(given)) => {
                if auth::verify_secret(given, normal) {
                    Pin::Normal
                } else if me
                    .duress_pin_hash
                    .as_deref()
                    .is_some_and(|d| auth::verify_secret(given, d))
                {
                    Pin::Duress
                } else {
                    return Err(Refusal::WrongPin.into());
                }
            }
        };
        self.change(me, visit, stamp, |v, now| v.check_out(me.id, pin, now))
            .await
    }

    /// # Errors
    /// See [`Visit::withdraw`].
    pub async fn withdraw(&self, me: &Person, visit: impl Into<ToChange>, stamp: Stamp) -> Result<Visit> {
        self.change(me, visit, stamp, |v, now| v.withdraw(me.id, now))
            .await
    }

    /// # Errors
    /// Storage failures.
    pub async fn active_visit(&self, me: &Person) -> Result<Option<Visit>> {
        Ok(self.store.active_visit_of(me.id).await?.map(|v| v.value))
    }

    /// A visit I may see: one of my teams'.
    ///
    /// # Errors
    /// `NotFound` for unknown visits and other teams' visits alike.
    pub async fn visit(&self, me: &Person, id: VisitId) -> Result<Versioned<Visit>> {
        let v = found(self.store.visit(id).await, "visit")?;
        of_my_teams(me, &v.value)?;
        Ok(v)
    }

    /// Read, transition, save; again from the read when someone else saved in between.
    async fn change<F>(
        &self,
        me: &Person,
        visit: impl Into<ToChange>,
        stamp: Stamp,
        transition: F,
    ) -> Result<Visit>
    where
        F: Fn(&mut Visit, DateTime<Utc>) -> std::result::Result<Vec<Effect>, Refusal> + Send + Sync,
    {
        let ToChange { id, mut read } = visit.into();
        for _ in 0..8 {
            let read = match read.take() {
                Some(ahead) => ahead,
                None => self.store.visit_to_change(id).await,
            };
            let (
                Versioned {
                    value: mut visit,
                    version,
                },
                alarmed,
            ) = found(read, "visit")?;
            of_my_teams(me, &visit)?;
            let read = visit.participants.clone();
            let effects = transition(&mut visit, stamp.received_at)?;
            let mut changes = self
                .consequences(&visit, &effects, alarmed, stamp.received_at)
                .await?;
            changes.events = self.events(me.id, visit.id, effects, stamp);
            changes.same_participants = visit.participants == read;
            match self
                .store
                .save_visit(&visit, version, &changes, stamp.received_at)
                .await
            {
                Ok(()) => {
                    self.committed(&changes);
                    return Ok(visit);
                }
                Err(StoreError::Conflict { constraint: c }) if c == constraint::ALARM_VERSION => continue,
                Err(StoreError::Conflict { constraint: c }) if c == constraint::VISIT_VERSION => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Busy)
    }

    fn events(&self, person: PersonId, visit: VisitId, effects: Vec<Effect>, stamp: Stamp) -> Vec<NewEvent> {
        effects
            .into_iter()
            .map(|effect| NewEvent {
                visit,
                person: Some(person),
                effect,
                stamp,
            })
            .collect()
    }
}

/// The visit a change is about: its id, and its state when read ahead, beside the caller's
/// sign-in so that the two reads go at once rather than one after the other. Only the first
/// try uses it; a try that meets a newer version reads again.
#[derive(Debug)]
pub struct ToChange {
    id: VisitId,
    read: Option<std::result::Result<(Versioned<Visit>, bool), StoreError>>,
}

impl From<VisitId> for ToChange {
    fn from(id: VisitId) -> Self {
        ToChange { id, read: None }
    }
}

/// Another team's visit does not exist for me, as an unknown one does not.
fn of_my_teams(me: &Person, visit: &Visit) -> Result<()> {
    if me.teams.contains(&visit.team) {
        Ok(())
    } else {
        Err(EngineError::NotFound("visit"))
    }
}

impl Engine {
    /// A command by SMS: "OK" checks in, "OUT <pin>" checks out (the duress PIN works here
    /// too), "TAG" acknowledges the newest open alarm the sender was told of. The sender is
    /// known by their phone number.
    ///
    /// # Errors
    /// `Unauthorized` for an unknown sender; `Invalid` for a text that is no command; the
    /// visit's refusals (no active visit, wrong PIN).
    pub async fn sms_command(
        &self,
        from: &str,
        command: makker_notify::sms::InboundCommand,
    ) -> Result<Visit> {
        use makker_notify::sms::InboundCommand;
        let me = match self.store.person_by_phone(from).await {
            Ok(p) => p,
            Err(StoreError::NotFound) => return Err(EngineError::Unauthorized),
            Err(e) => return Err(e.into()),
        };
        if command == InboundCommand::Acknowledge {
            return self.acknowledge_by_sms(&me).await;
        }
        let visit = self
            .store
            .active_visit_of(me.id)
            .await?
            .ok_or(EngineError::NotFound("active visit"))?;
        let stamp = self.stamp(None, None)?;
        match command {
            InboundCommand::CheckIn => self.check_in(&me, visit.value.id, stamp).await,
            InboundCommand::CheckOut { pin } => {
                self.check_out(&me, visit.value.id, Some(pin.expose()), stamp)
                    .await
            }
            InboundCommand::Acknowledge | InboundCommand::Unknown => {
                Err(EngineError::Invalid("send OK, or OUT and your PIN".into()))
            }
        }
    }
}

impl Engine {
    /// Registers this phone's push subscription for me.
    ///
    /// # Errors
    /// An endpoint that is not an http(s) URL, or keys that are not base64url.
    pub async fn register_push(
        &self,
        me: &Person,
        device: Uuid,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<()> {
        let url_ok =
            (endpoint.starts_with("https://") || endpoint.starts_with("http://")) && endpoint.len() <= 2048;
        let key_ok = |k: &str| {
            (1..=256).contains(&k.len())
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        };
        if !url_ok || !key_ok(p256dh) || !key_ok(auth) {
            return Err(EngineError::Invalid(
                "a push subscription needs an http(s) endpoint and base64url keys".into(),
            ));
        }
        let sub = makker_store::PushSubscription {
            id: Uuid::now_v7(),
            person: me.id,
            device: Some(device),
            endpoint: endpoint.to_owned(),
            p256dh: p256dh.to_owned(),
            auth: auth.to_owned(),
        };
        Ok(self.store.add_push_subscription(&sub, self.now()).await?)
    }

    /// Forgets one of my push subscriptions.
    ///
    /// # Errors
    /// `NotFound` unless the endpoint is one of mine.
    pub async fn unregister_push(&self, me: &Person, endpoint: &str) -> Result<()> {
        let mine = self.store.push_subscriptions(me.id).await?;
        if !mine.iter().any(|s| s.endpoint == endpoint) {
            return Err(EngineError::NotFound("push subscription"));
        }
        Ok(self.store.remove_push_subscription(endpoint).await?)
    }
}
