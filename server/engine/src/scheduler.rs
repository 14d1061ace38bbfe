//! The deadline loop: one per process.
//!
//! Protocol: sleep until the earliest armed deadline or until woken (a change armed an
//! earlier one), at most `max_sleep`; lease the due rows in batches (while a full batch
//! fires, the next is leased and fires beside it); for each, decide what it causes and
//! commit "armed → fired" together with those changes. Deadlines of different visits and
//! alarms are decided concurrently and committed together, up to [`COMMIT_BATCH`] in one
//! transaction; one visit's or alarm's deadlines fire in due order, one after another. A
//! deadline whose commit fails (a crash, a concurrent change) keeps its row armed; the lease
//! lapses and the next tick, here or in another replica, fires it.
//! Nothing that matters lives only in memory.
//!
//! INVARIANT: a deadline fires at most once (the fencing update in `Store::fire`), and every
//! due deadline fires eventually (leases expire).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use makker_domain::alarm::{Alarm, AlarmKind};
use makker_domain::place::Warning;
use makker_domain::policy::Channel;
use makker_domain::visit::VisitState;
use makker_domain::{AlarmId, PersonId, PlaceId, TeamId, VisitId};
use makker_store::{Changes, Deadline, DeadlineKind, StoreError, Versioned, WAKE_HORIZON, constraint};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::alarms::{Known, Occasion};
use crate::dispatcher::Relay;
use crate::error::EngineError;
use crate::messages::Text;
use crate::service::Engine;

type Result<T> = std::result::Result<T, EngineError>;

/// What one tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub fired: usize,
    pub next_due: Option<DateTime<Utc>>,
}

/// Deadlines of different visits and alarms committed in one transaction.
pub const COMMIT_BATCH: usize = 100;
/// From how many deadlines due together their reads are made for the whole batch at once.
const READ_AHEAD_FROM: usize = 8;

#[derive(Clone)]
pub struct Scheduler {
    engine: Engine,
    owner: Arc<str>,
    pub batch: u32,
    /// Deadlines decided at once; those of one visit or alarm fire in order, one after another.
    pub concurrency: usize,
    pub lease: Duration,
    pub max_sleep: StdDuration,
    /// This process's dispatcher: what firing queues is leased to it in the same commit.
    pub relay: Option<Relay>,
}

impl Scheduler {
    pub fn new(engine: Engine) -> Self {
        Scheduler {
            engine,
            owner: format!("makker-{}", Uuid::now_v7()).into(),
            batch: 500,
            concurrency: 8,
            lease: Duration::seconds(10),
            // No longer: deadlines armed further ahead than the horizon wake nobody.
            max_sleep: WAKE_HORIZON,
            relay: None,
        }
    }

    /// Fires every deadline due now, a lease batch at a time.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn tick(&self) -> Result<Tick> {
        let Some(fired) = self.fire_due().await? else {
            return Ok(Tick {
                fired: 0,
                next_due: None,
            });
        };
        let next_due = self.engine.store.next_due(self.engine.now()).await?;
        self.engine.health.ticked();
        Ok(Tick { fired, next_due })
    }

    /// Claims and fires until a claim finds less than a full batch. A full batch means more
    /// are due: the next is claimed while it fires and fires beside it (see [`Firings`]),
    /// [`FIRING_AT_ONCE`] batches at most. Waits for every batch it started; none when a crash
    /// test stopped it.
    async fn fire_due(&self) -> Result<Option<usize>> {
        let mut firings = Firings::default();
        loop {
            if firings.running.len() >= FIRING_AT_ONCE {
                firings.finish_one().await;
                continue;
            }
            let due = match self.claim().await {
                Ok(due) => {
                    // A long catch-up is one tick: the loop is alive while it claims.
                    self.engine.health.ticked();
                    due
                }
                Err(e) => {
                    firings.finish_all().await?;
                    return Err(e);
                }
            };
            if !due.is_empty() && stops_after_claiming() {
                firings.finish_all().await?;
                return Ok(None);
            }
            let full = due.len() >= self.batch as usize;
            if !due.is_empty() {
                firings.start(self, due);
            }
            if !full {
                return firings.finish_all().await.map(Some);
            }
        }
    }

    /// Leases what is due now, up to a batch.
    async fn claim(&self) -> Result<Vec<Deadline>> {
        let now = self.engine.now();
        Ok(self
            .engine
            .store
            .claim_due(now, &self.owner, now + self.lease, self.batch)
            .await?)
    }

    /// Fires a claimed batch. The first deadline of each visit or alarm is decided
    /// `concurrency` at a time and committed [`COMMIT_BATCH`] at a time, in one transaction
    /// each, all of these transactions at once: one transaction per deadline would cap a
    /// replica at a few hundred a second, and one transaction after another leaves the
    /// database waiting for the loop's round trips. The later deadlines of a visit or alarm
    /// must see the earlier ones' commits, so they fire afterwards, one after another.
    async fn fire_all(&self, due: Vec<Deadline>, now: DateTime<Utc>) -> Result<usize> {
        let mut groups = by_subject(due);
        let heads: Vec<Vec<Deadline>> = groups
            .iter_mut()
            .map(|g| g.remove(0))
            .collect::<Vec<_>>()
            .chunks(COMMIT_BATCH)
            .map(<[Deadline]>::to_vec)
            .collect();
        let this = self.clone();
        let mut fired = self
            .each_bounded(heads.len(), heads, move |chunk| {
                let this = this.clone();
                async move { this.fire_together(&chunk, now).await }
            })
            .await?
            .into_iter()
            .sum::<Result<usize>>()?;
        let rest: Vec<Vec<Deadline>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
        let firing = self.firing();
        fired += self
            .each_bounded(self.concurrency, rest, move |group| {
                let fire = firing.clone();
                async move {
                    let mut fired = 0;
                    for d in &group {
                        fired += usize::from(fire.fire_logged(d, now).await);
                    }
                    fired
                }
            })
            .await?
            .into_iter()
            .sum::<usize>();
        Ok(fired)
    }

    /// Decides what each of `due` (of different visits and alarms) causes, then fires them in
    /// one transaction. Should that fail (an alarm changed meanwhile), each fires on its own.
    async fn fire_together(&self, due: &[Deadline], now: DateTime<Utc>) -> Result<usize> {
        // A few due at once decide as quickly by reading only what each needs.
        let known = Arc::new(if due.len() >= READ_AHEAD_FROM {
            self.known(due).await?
        } else {
            Known::default()
        });
        let firing = self.firing();
        let decided = self
            .each_bounded(self.concurrency, due.to_vec(), move |d| {
                let fire = firing.clone();
                let known = known.clone();
                async move {
                    match fire.decide(&d, &known, now).await {
                        Ok(changes) => Some((d, changes)),
                        Err(e) => {
                            tracing::warn!(deadline = d.id, error = %e, "a deadline did not fire; it stays armed");
                            None
                        }
                    }
                }
            })
            .await?;
        let decided: Vec<(Deadline, Changes)> = decided.into_iter().flatten().collect();
        let batch: Vec<(&Deadline, &Changes)> = decided.iter().map(|(d, c)| (d, c)).collect();
        let lease = self.relay.as_ref().map(|r| r.lease(now));
        match self
            .engine
            .store
            .fire_many(&batch, &self.owner, now, lease.as_ref())
            .await
        {
            Ok(fired) => {
                if let (Some(relay), Some(lease)) = (&self.relay, &lease) {
                    relay.hand(lease, fired.handed);
                }
                let ids = fired.deadlines;
                for (d, changes) in decided.iter().filter(|(d, _)| ids.contains(&d.id)) {
                    self.firing().fired(d, changes, now);
                }
                Ok(ids.len())
            }
            Err(e) => {
                tracing::info!(error = %e, n = batch.len(), "a batch of deadlines fires one by one");
                let firing = self.firing();
                let one_by_one = self
                    .each_bounded(self.concurrency, decided, move |(d, _)| {
                        let fire = firing.clone();
                        async move { usize::from(fire.fire_logged(&d, now).await) }
                    })
                    .await?;
                Ok(one_by_one.into_iter().sum())
            }
        }
    }

    /// What deciding `due` reads, for the whole batch at once: the visits, then at once the
    /// people on them, their places and warnings, last positions and push subscriptions.
    async fn known(&self, due: &[Deadline]) -> Result<Known> {
        let store = &self.engine.store;
        let ids: Vec<VisitId> = due.iter().filter_map(|d| d.visit).collect();
        let visits = store.visits(&ids).await?;
        let mut people: Vec<PersonId> = visits
            .iter()
            .flat_map(|v| v.value.participants.iter().map(|p| p.person))
            .collect();
        people.dedup();
        let mut teams: Vec<TeamId> = visits.iter().map(|v| v.value.team).collect();
        teams.sort_unstable_by_key(|t| t.0);
        teams.dedup();
        let places_and_warnings = async {
            let places = store.places(&teams).await?;
            let place_ids: Vec<PlaceId> = places.iter().map(|p| p.id).collect();
            let mut warnings: HashMap<PlaceId, Vec<Warning>> = HashMap::new();
            for w in store.warnings_of(&place_ids).await? {
                warnings.entry(w.place).or_default().push(w);
            }
            Ok::<_, StoreError>((places, warnings))
        };
        let ((places, warnings), subscriptions, positions, persons) = tokio::try_join!(
            places_and_warnings,
            store.push_subscriptions_of(&people),
            store.last_positions(&ids),
            store.people(&people),
        )?;
        Ok(Known {
            visits: visits.into_iter().map(|v| (v.value.id, v.value)).collect(),
            people: persons.into_iter().map(|p| (p.id, p)).collect(),
            places: places.into_iter().map(|p| (p.id, p)).collect(),
            warnings: Some(warnings),
            positions: Some(positions.into_iter().collect()),
            pushable: Some(subscriptions.into_iter().map(|s| s.person).collect()),
        })
    }

    fn firing(&self) -> Firing {
        Firing {
            engine: self.engine.clone(),
            owner: self.owner.clone(),
        }
    }

    /// `task` for each item, `limit` at a time; the answers in no particular order.
    async fn each_bounded<T, R, F, Fut>(&self, limit: usize, items: Vec<T>, task: F) -> Result<Vec<R>>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> Fut,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        let slots = Arc::new(Semaphore::new(limit.max(1)));
        let mut running = JoinSet::new();
        for item in items {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("BUG: the semaphore is never closed");
            let work = task(item);
            running.spawn(async move {
                let answer = work.await;
                drop(slot);
                answer
            });
        }
        let mut answers = Vec::new();
        while let Some(done) = running.join_next().await {
            answers.push(done.map_err(|e| EngineError::Invalid(format!("a firing task failed: {e}")))?);
        }
        Ok(answers)
    }

    /// Ticks until nothing is due at the clock's current time (tests, and catching up after
    /// a restart).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn run_due(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let tick = self.tick().await?;
            total += tick.fired;
            let more = tick.next_due.is_some_and(|d| d <= self.engine.now());
            if tick.fired == 0 || !more {
                return Ok(total);
            }
        }
    }

    /// The loop, until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let sleep = match self.tick().await {
                Ok(Tick {
                    next_due: Some(next), ..
                }) => (next - self.engine.now())
                    .to_std()
                    .unwrap_or(StdDuration::ZERO)
                    .min(self.max_sleep),
                Ok(_) => self.max_sleep,
                Err(e) => {
                    tracing::error!(error = %e, "the deadline loop could not tick");
                    self.max_sleep
                }
            };
            if sleep.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.engine.wake.notified() => {}
                _ = stop.changed() => {}
            }
            if crate::stopping(&stop) {
                return;
            }
        }
    }
}

/// Whether a crash test stops here: claimed, not fired, as if the process had died.
fn stops_after_claiming() -> bool {
    fail::fail_point!("scheduler-claimed", |_| true);
    false
}

/// Claimed batches firing at most this many at once: while one commits, the next is claimed
/// and decided. (A claim is a fifth of a batch's time; one batch after another left the
/// database waiting for it, and for each batch's slowest commit.)
const FIRING_AT_ONCE: usize = 2;

/// The claimed batches firing. A batch starts at once, except the deadlines of a visit or
/// alarm that a batch claimed before it holds: those fire after every earlier batch is done,
/// so that one visit's or alarm's deadlines still fire in due order, each seeing the last.
#[derive(Default)]
struct Firings {
    running: JoinSet<Result<usize>>,
    /// The visits and alarms of the batches firing, each with the last batch that holds it.
    held: Arc<Mutex<HashMap<Uuid, u64>>>,
    /// One per batch that may still be firing; closed when it is done.
    earlier: Vec<watch::Receiver<()>>,
    batches: u64,
    fired: usize,
    failed: Option<EngineError>,
}

impl Firings {
    fn start(&mut self, scheduler: &Scheduler, due: Vec<Deadline>) {
        let batch = self.batches;
        self.batches += 1;
        let (now_free, after_earlier): (Vec<Deadline>, Vec<Deadline>) = {
            let mut held = self.held.lock().expect("BUG: never poisoned");
            let taken: HashSet<Uuid> = due
                .iter()
                .filter_map(subject)
                .filter(|s| held.contains_key(s))
                .collect();
            held.extend(due.iter().filter_map(subject).map(|s| (s, batch)));
            due.into_iter()
                .partition(|d| subject(d).is_none_or(|s| !taken.contains(&s)))
        };
        self.earlier.retain(|e| e.has_changed().is_ok());
        let earlier = if after_earlier.is_empty() {
            vec![]
        } else {
            self.earlier.clone()
        };
        let (done, watched) = watch::channel(());
        self.earlier.push(watched);
        let (this, held) = (scheduler.clone(), self.held.clone());
        self.running.spawn(async move {
            let mut fired = this.fire_all(now_free, this.engine.now()).await;
            if !after_earlier.is_empty() {
                for mut e in earlier {
                    // Closed when that batch is done: nothing is ever sent.
                    let _ = e.changed().await;
                }
                let later = this.fire_all(after_earlier, this.engine.now()).await;
                fired = fired.and_then(|n| Ok(n + later?));
            }
            held.lock()
                .expect("BUG: never poisoned")
                .retain(|_, b| *b != batch);
            drop(done);
            fired
        });
    }

    /// Waits for one batch; keeps its count or its failure.
    async fn finish_one(&mut self) {
        match self.running.join_next().await {
            Some(Ok(Ok(n))) => self.fired += n,
            Some(Ok(Err(e))) => self.failed = Some(e),
            Some(Err(e)) => self.failed = Some(EngineError::Invalid(format!("a firing task failed: {e}"))),
            None => {}
        }
    }

    /// Waits for every batch: how many fired, or the last failure.
    async fn finish_all(mut self) -> Result<usize> {
        while !self.running.is_empty() {
            self.finish_one().await;
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.fired),
        }
    }
}

/// The visit (else the alarm) a deadline belongs to.
fn subject(d: &Deadline) -> Option<Uuid> {
    d.visit.map(|v| v.0).or(d.alarm.map(|a| a.0))
}

/// Deadlines grouped by the visit (else the alarm) they belong to, in due order within each
/// group: one visit's reminder, overdue and escalation must see each other's commits.
fn by_subject(due: Vec<Deadline>) -> Vec<Vec<Deadline>> {
    let mut groups: Vec<Vec<Deadline>> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for d in due {
        let subject = subject(&d);
        match subject.and_then(|s| index.get(&s).copied()) {
            Some(i) => groups[i].push(d),
            None => {
                if let Some(s) = subject {
                    index.insert(s, groups.len());
                }
                groups.push(vec![d]);
            }
        }
    }
    groups
}

/// What fires one deadline; cloned into each firing task.
#[derive(Clone)]
struct Firing {
    engine: Engine,
    owner: Arc<str>,
}

impl Firing {
    /// Fires `d`; whether it fired. A failure is logged and leaves the deadline armed.
    async fn fire_logged(&self, d: &Deadline, now: DateTime<Utc>) -> bool {
        match self.fire(d, now).await {
            Ok(true) => true,
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(deadline = d.id, error = %e, "a deadline did not fire; it stays armed");
                false
            }
        }
    }

    async fn fire(&self, d: &Deadline, now: DateTime<Utc>) -> Result<bool> {
        let changes = self.decide(d, &Known::default(), now).await?;
        match self.engine.store.fire(d, &self.owner, now, &changes).await {
            Err(StoreError::Conflict { constraint: c }) if c == constraint::ALARM_VERSION => Ok(false),
            r => {
                let fired = r?;
                if fired {
                    self.fired(d, &changes, now);
                }
                Ok(fired)
            }
        }
    }

    /// After the commit: the lag for operators, and the dispatcher woken for the messages.
    fn fired(&self, d: &Deadline, changes: &Changes, now: DateTime<Utc>) {
        let lag = (now - d.due_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("makker_deadline_lag_seconds").record(lag);
        if !changes.outbox.is_empty() {
            self.engine.outbox.notify_one();
        }
    }

    /// What firing `d` causes, read from the database as it is now.
    async fn decide(&self, d: &Deadline, known: &Known, now: DateTime<Utc>) -> Result<Changes> {
        Ok(match (d.kind, d.alarm) {
            (DeadlineKind::Reminder, _) => self.reminder(d, known, now).await?,
            (DeadlineKind::Overdue | DeadlineKind::Silence, _) => self.overdue(d, known, now).await?,
            (DeadlineKind::Escalate, Some(a)) => {
                self.engine
                    .escalation_step(self.engine.store.alarm(a).await?, now)
                    .await?
            }
            (DeadlineKind::FollowUp, Some(a)) => {
                self.engine
                    .follow_up(self.engine.store.alarm(a).await?, now)
                    .await?
            }
            (_, None) => Changes::default(),
        })
    }

    async fn reminder(&self, d: &Deadline, known: &Known, now: DateTime<Utc>) -> Result<Changes> {
        let mut changes = Changes::default();
        let Some(visit) = d.visit else { return Ok(changes) };
        let v = known.visit(&self.engine, visit).await?;
        // Ended, or the check-in it reminds of is already missed (a restart catching up): the
        // overdue deadline, due too, tells the worker instead.
        let missed = v.check_in_due() + Duration::minutes(v.terms.grace_minutes.into());
        if v.state == VisitState::Ended || missed <= now {
            return Ok(changes);
        }
        let mut people = Vec::new();
        for p in v.present() {
            people.push(known.person(&self.engine, p.person).await?);
        }
        let minutes = self.engine.policy.timers.reminder_before_minutes;
        let occasion = Occasion {
            drill: false,
            key: format!("deadline:{}", d.id),
            alarm: None,
            visit: Some(visit),
            text: Text::Reminder { minutes },
        };
        changes.outbox = self
            .engine
            .messages(&people, &[Channel::Push, Channel::Sms], &occasion)
            .await?;
        Ok(changes)
    }

    async fn overdue(&self, d: &Deadline, known: &Known, now: DateTime<Utc>) -> Result<Changes> {
        let mut changes = Changes::default();
        let Some(visit) = d.visit else { return Ok(changes) };
        let v = known.visit(&self.engine, visit).await?;
        let Some(worker) = v.present().next().map(|p| p.person) else {
            return Ok(changes);
        };
        let alarm = Alarm::raise(
            AlarmId(Uuid::now_v7()),
            v.team,
            worker,
            Some(v.id),
            match d.kind {
                DeadlineKind::Silence => AlarmKind::LostHeartbeat,
                _ => v.overdue_alarm(),
            },
            &v.terms.chain,
            now,
        );
        // The first step runs in this same transaction: no extra round trip before the worker hears.
        let first = self
            .engine
            .escalation_step_of(
                Versioned {
                    value: alarm.clone(),
                    version: 0,
                },
                Some(v),
                known,
                now,
            )
            .await?;
        changes.outbox = first.outbox;
        changes.arm = first.arm;
        let mut raised = alarm;
        raised.step = 1;
        changes.new_alarms.push(raised);
        Ok(changes)
    }
}
