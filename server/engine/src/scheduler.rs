//! The deadline loop: one per process.
//!
//! Protocol: sleep until the earliest armed deadline or until woken (a change armed an
//! earlier one), at most `max_sleep`; lease the due rows in batches; for each, decide what it
//! causes and commit "armed → fired" together with those changes. A batch fires several
//! visits' or alarms' deadlines at once (each its own transaction); one visit's or alarm's
//! deadlines fire in due order, one after another. A deadline whose commit
//! fails (a crash, a concurrent change) keeps its row armed; the lease lapses and the next
//! tick, here or in another replica, fires it. Nothing that matters lives only in memory.
//!
//! INVARIANT: a deadline fires at most once (the fencing update in `Store::fire`), and every
//! due deadline fires eventually (leases expire).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use makker_domain::AlarmId;
use makker_domain::alarm::{Alarm, AlarmKind};
use makker_domain::policy::Channel;
use makker_domain::visit::VisitState;
use makker_store::{Changes, Deadline, DeadlineKind, StoreError, Versioned, WAKE_HORIZON, constraint};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::alarms::Occasion;
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

pub struct Scheduler {
    engine: Engine,
    owner: Arc<str>,
    pub batch: u32,
    /// Deadlines fired at once, each in its own transaction; those of one visit or alarm fire
    /// in order, one after another.
    pub concurrency: usize,
    pub lease: Duration,
    pub max_sleep: StdDuration,
}

impl Scheduler {
    pub fn new(engine: Engine) -> Self {
        Scheduler {
            engine,
            owner: format!("makker-{}", Uuid::now_v7()).into(),
            batch: 200,
            concurrency: 8,
            lease: Duration::seconds(10),
            // No longer: deadlines armed further ahead than the horizon wake nobody.
            max_sleep: WAKE_HORIZON,
        }
    }

    /// Fires every deadline due now (one lease batch).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn tick(&self) -> Result<Tick> {
        let now = self.engine.now();
        let due = self
            .engine
            .store
            .claim_due(now, &self.owner, now + self.lease, self.batch)
            .await?;
        if !due.is_empty() {
            // A crash test stops here: claimed, not fired, as if the process had died.
            fail::fail_point!("scheduler-claimed", |_| Ok(Tick {
                fired: 0,
                next_due: None
            }));
        }
        // The claim may have waited for the database (a pool queue, a restart): the firing
        // happens, and is stamped, now.
        let fired = self.fire_all(due, self.engine.now()).await?;
        let next_due = self.engine.store.next_due().await?;
        self.engine.health.ticked();
        Ok(Tick { fired, next_due })
    }

    /// Fires a claimed batch, `concurrency` visits or alarms at a time: one round trip after
    /// another per deadline would cap a replica at a few hundred a second.
    async fn fire_all(&self, due: Vec<Deadline>, now: DateTime<Utc>) -> Result<usize> {
        let slots = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut firing = JoinSet::new();
        for group in by_subject(due) {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("BUG: the semaphore is never closed");
            let fire = Firing {
                engine: self.engine.clone(),
                owner: self.owner.clone(),
            };
            firing.spawn(async move {
                let mut fired = 0;
                for d in &group {
                    fired += usize::from(fire.fire_logged(d, now).await);
                }
                drop(slot);
                fired
            });
        }
        let mut fired = 0;
        while let Some(done) = firing.join_next().await {
            fired += done.map_err(|e| EngineError::Invalid(format!("a firing task failed: {e}")))?;
        }
        Ok(fired)
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
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// Deadlines grouped by the visit (else the alarm) they belong to, in due order within each
/// group: one visit's reminder, overdue and escalation must see each other's commits.
fn by_subject(due: Vec<Deadline>) -> Vec<Vec<Deadline>> {
    let mut groups: Vec<Vec<Deadline>> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for d in due {
        let subject = d.visit.map(|v| v.0).or(d.alarm.map(|a| a.0));
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
            Ok(true) => {
                let lag = (now - d.due_at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::histogram!("makker_deadline_lag_seconds").record(lag);
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(deadline = d.id, error = %e, "a deadline did not fire; it stays armed");
                false
            }
        }
    }

    async fn fire(&self, d: &Deadline, now: DateTime<Utc>) -> Result<bool> {
        let changes = match (d.kind, d.alarm) {
            (DeadlineKind::Reminder, _) => self.reminder(d, now).await?,
            (DeadlineKind::Overdue | DeadlineKind::Silence, _) => self.overdue(d, now).await?,
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
        };
        match self.engine.store.fire(d.id, &self.owner, now, &changes).await {
            Err(StoreError::Conflict { constraint: c }) if c == constraint::ALARM_VERSION => Ok(false),
            r => {
                let fired = r?;
                if fired && !changes.outbox.is_empty() {
                    self.engine.outbox.notify_one();
                }
                Ok(fired)
            }
        }
    }

    async fn reminder(&self, d: &Deadline, now: DateTime<Utc>) -> Result<Changes> {
        let mut changes = Changes::default();
        let Some(visit) = d.visit else { return Ok(changes) };
        let v = self.engine.store.visit(visit).await?.value;
        // Ended, or the check-in it reminds of is already missed (a restart catching up): the
        // overdue deadline, due too, tells the worker instead.
        let missed = v.check_in_due() + Duration::minutes(v.terms.grace_minutes.into());
        if v.state == VisitState::Ended || missed <= now {
            return Ok(changes);
        }
        let mut people = Vec::new();
        for p in v.present() {
            people.push(self.engine.store.person(p.person).await?);
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

    async fn overdue(&self, d: &Deadline, now: DateTime<Utc>) -> Result<Changes> {
        let mut changes = Changes::default();
        let Some(visit) = d.visit else { return Ok(changes) };
        let v = self.engine.store.visit(visit).await?.value;
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
            .escalation_step(
                Versioned {
                    value: alarm.clone(),
                    version: 0,
                },
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
