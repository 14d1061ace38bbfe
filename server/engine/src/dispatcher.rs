//! The outbox dispatcher: drains queued messages through the channel's providers.
//!
//! Protocol: lease a batch of due messages (or take one the deadline loop handed over,
//! leased in the commit that queued it: see [`Relay`]); look up their recipients in one query
//! per channel; send them all at once, as far as the channel's slots allow, outside any
//! transaction (sends are slow and must not hold locks); record every attempt and its outcome
//! in one commit per batch. Several batches send at once, so a slow provider does not hold up
//! the next lease. An SMS goes to the primary provider and, when that fails, to the failover
//! in the same attempt (the primary's failure is recorded too). A failure that may pass is
//! tried again later with exponential backoff and ±20 % jitter, never sooner than the provider's
//! `Retry-After`, up to `max_attempts`; then the message is marked failed, visibly.
//!
//! INVARIANT: a message is its own outbox row, queued once per (occasion, recipient, channel)
//! by its dedup key; the row id travels as the provider's reference. A crash between a send
//! and its record may send that one message again (at least once); nothing else does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use makker_domain::PersonId;
use makker_domain::policy::Channel;
use makker_notify::push::{
    PROVIDER, PushError, PushKind, PushMessage, PushPayload, Subscription, Topic, Urgency, WebPush,
};
use makker_notify::sms::{Sms, SmsProvider};
use makker_notify::{SendError, mask_phone};
use makker_store::{Attempt, Delivery, HandOver, Message, PushSubscription};
use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::error::EngineError;
use crate::service::Engine;

pub struct Dispatcher {
    engine: Engine,
    /// Primary first, then failover.
    sms: Vec<Arc<dyn SmsProvider>>,
    push: Option<WebPush>,
    owner: String,
    pub batch: u32,
    /// Batches this dispatcher claimed sending at once in `run` (handed-over ones take none).
    pub in_flight: usize,
    pub lease: Duration,
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub max_sleep: StdDuration,
    /// Batches the deadline loop handed over (see [`Dispatcher::relay`]).
    relayed: Option<Mutex<mpsc::UnboundedReceiver<Leased>>>,
    /// Sends in flight at once, per channel (see [`Dispatcher::limit_sends`]).
    sends: Sends,
}

/// Sends in flight per channel by default: a burst of alarms needs as many connections (and
/// open files) as it has sends in flight; at 200 ms per answer, 4,096 hand over 20,000 a second.
pub const SENDS_IN_FLIGHT: usize = 4096;

/// A slot for each send in flight, per channel: a slow or hanging SMS provider never holds up
/// push, and neither can open more connections than the process has files for.
struct Sends {
    sms: Arc<Semaphore>,
    push: Arc<Semaphore>,
}

impl Sends {
    fn new(per_channel: usize) -> Self {
        let slots = || Arc::new(Semaphore::new(per_channel.max(1)));
        Sends {
            sms: slots(),
            push: slots(),
        }
    }

    fn of(&self, channel: Channel) -> Arc<Semaphore> {
        match channel {
            Channel::Sms => self.sms.clone(),
            Channel::Push => self.push.clone(),
        }
    }
}

/// The deadline loop's line to this process's dispatcher. The messages a firing queues are
/// leased to the dispatcher in that same commit and handed over in memory: no claim
/// statement, no wait for the dispatcher's next lease. Nothing lives only in memory: a batch
/// that is never sent (a crash) waits in the outbox for its lease to lapse.
#[derive(Clone)]
pub struct Relay {
    owner: String,
    lease: Duration,
    line: mpsc::UnboundedSender<Leased>,
}

/// Messages leased to the dispatcher until `until`.
struct Leased {
    until: DateTime<Utc>,
    messages: Vec<Message>,
}

impl Relay {
    /// The lease for the messages a commit at `now` queues.
    pub fn lease(&self, now: DateTime<Utc>) -> HandOver {
        HandOver {
            owner: self.owner.clone(),
            until: now + self.lease,
        }
    }

    /// Hands over `messages`, leased by `lease` in a commit that succeeded.
    pub fn hand(&self, lease: &HandOver, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let until = lease.until;
        if self.line.send(Leased { until, messages }).is_err() {
            tracing::warn!(%until, "the dispatcher has stopped: messages wait for their lease to lapse");
        }
    }
}

/// The delay before attempt `attempts + 1`: doubling from `first`, capped, jittered ±20 %,
/// and never shorter than what the provider asked for.
pub fn backoff(
    first: Duration,
    max: Duration,
    attempts: u32,
    retry_after: Option<StdDuration>,
    jitter: f64,
) -> Duration {
    let doubled = first.num_milliseconds().saturating_mul(1i64 << attempts.min(20));
    let capped = doubled.min(max.num_milliseconds());
    let jittered = (capped as f64 * (1.0 + jitter.clamp(-0.2, 0.2))) as i64;
    let asked = retry_after
        .and_then(|d| Duration::from_std(d).ok())
        .unwrap_or_else(Duration::zero);
    Duration::milliseconds(jittered).max(asked)
}

impl Dispatcher {
    pub fn new(engine: Engine, sms: Vec<Arc<dyn SmsProvider>>) -> Self {
        Dispatcher {
            engine,
            sms,
            push: None,
            owner: format!("dispatch-{}", Uuid::now_v7()),
            batch: 500,
            // A provider that takes 200 ms to answer: 16 batches of hundreds in flight hand
            // over thousands a second.
            in_flight: 16,
            lease: Duration::seconds(30),
            max_attempts: 8,
            first_backoff: Duration::seconds(10),
            max_backoff: Duration::minutes(10),
            max_sleep: StdDuration::from_millis(500),
            relayed: None,
            sends: Sends::new(SENDS_IN_FLIGHT),
        }
    }

    /// At most `per_channel` SMS and as many pushes in flight at once (at least one). A
    /// message whose turn comes after half its lease is left to the lease: it may be claimed
    /// again meanwhile, and must not be sent twice.
    pub fn limit_sends(&mut self, per_channel: usize) {
        self.sends = Sends::new(per_channel);
    }

    /// A line for this process's deadline loop to hand over what it queues (call after
    /// setting `lease`).
    pub fn relay(&mut self) -> Relay {
        let (line, relayed) = mpsc::unbounded_channel();
        self.relayed = Some(Mutex::new(relayed));
        Relay {
            owner: self.owner.clone(),
            lease: self.lease,
            line,
        }
    }

    /// Sends push messages through `push` (without it, push messages fail visibly).
    pub fn with_push(mut self, push: WebPush) -> Self {
        self.push = Some(push);
        self
    }

    /// Sends what is due now (one lease batch), concurrently; returns how many messages were
    /// attempted.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn tick(&self) -> Result<usize, EngineError> {
        let due = match self.next_relayed() {
            Some(handed) => handed,
            None => self.claim().await?,
        };
        self.send(due).await
    }

    /// The next batch handed over whose lease leaves time to send it. A batch that waited
    /// for half its lease is left to lapse: its messages may be claimed again meanwhile.
    fn next_relayed(&self) -> Option<Leased> {
        let mut relayed = self.relayed.as_ref()?.lock().expect("BUG: never poisoned");
        while let Ok(handed) = relayed.try_recv() {
            if let Some(handed) = self.sendable(handed) {
                return Some(handed);
            }
        }
        None
    }

    /// `handed`, unless its lease is too far gone to send it.
    fn sendable(&self, handed: Leased) -> Option<Leased> {
        if !in_time(&self.engine, handed.until, self.lease) {
            let (until, n) = (handed.until, handed.messages.len());
            tracing::warn!(%until, n, "handed over too late to send; left to its lease");
            return None;
        }
        // A crash test stops here: committed and leased, not sent.
        fail::fail_point!("dispatcher-claimed", |_| None);
        Some(handed)
    }

    async fn claim(&self) -> Result<Leased, EngineError> {
        let now = self.engine.now();
        let until = now + self.lease;
        let messages = self
            .engine
            .store
            .claim_messages(now, &self.owner, until, self.batch)
            .await?;
        if !messages.is_empty() {
            // A crash test stops here: committed and claimed, not sent.
            fail::fail_point!("dispatcher-claimed", |_| Ok(Leased {
                until,
                messages: vec![]
            }));
        }
        Ok(Leased { until, messages })
    }

    /// Sends one leased batch, every message at once as far as the channel's slots allow
    /// (over the providers' kept-alive connections), and records every outcome in one commit.
    /// Returns how many were attempted.
    async fn send(&self, Leased { until, messages: due }: Leased) -> Result<usize, EngineError> {
        let (phones, mut subscriptions) = self.recipients(&due).await?;
        let mut sends = JoinSet::new();
        for m in due {
            let to = phones.get(&m.message.person).cloned();
            let subs = match m.message.channel {
                Channel::Push => subscriptions.remove(&m.message.person).unwrap_or_default(),
                Channel::Sms => vec![],
            };
            let providers = self.sms.clone();
            let push = self.push.clone();
            let (slots, engine, lease) = (self.sends.of(m.message.channel), self.engine.clone(), self.lease);
            sends.spawn(async move {
                let _slot = slots
                    .acquire_owned()
                    .await
                    .expect("BUG: the semaphore is never closed");
                if !in_time(&engine, until, lease) {
                    return None;
                }
                let (outcome, gone) = match m.message.channel {
                    Channel::Sms => (deliver(&providers, &m, to.as_deref()).await, vec![]),
                    Channel::Push => {
                        let (outcome, gone) = deliver_push(push.as_ref(), &m, &subs).await;
                        ((outcome, vec![]), gone)
                    }
                };
                Some((m, outcome, gone))
            });
        }
        let sends_total = sends.len();
        let mut done = Vec::with_capacity(sends_total);
        while let Some(sent) = sends.join_next().await {
            let sent = sent.map_err(|e| EngineError::Invalid(format!("a send task failed: {e}")))?;
            let Some((m, (outcome, failed_over), gone)) = sent else {
                continue;
            };
            for endpoint in gone {
                self.engine.store.remove_push_subscription(&endpoint).await?;
            }
            let attempt = self.attempt(&m, outcome, self.engine.now());
            count_delivery(m.message.channel, &attempt);
            done.push(Delivery {
                message: m.message.id,
                failed_over,
                attempt,
            });
        }
        if done.len() < sends_total {
            let left = sends_total - done.len();
            tracing::warn!(%until, left, "no send slot within half the lease; left to the lease");
        }
        self.engine
            .store
            .record_deliveries(&done, self.engine.now())
            .await?;
        Ok(done.len())
    }

    /// The batch's phone numbers and push subscriptions, in two queries (not two per message).
    async fn recipients(
        &self,
        due: &[Message],
    ) -> Result<(Recipients<String>, Recipients<Vec<PushSubscription>>), EngineError> {
        let people = |channel: Channel| -> Vec<PersonId> {
            let mut ids: Vec<PersonId> = due
                .iter()
                .filter(|m| m.message.channel == channel)
                .map(|m| m.message.person)
                .collect();
            ids.sort_unstable_by_key(|p| p.0);
            ids.dedup();
            ids
        };
        let phones = self.engine.store.phones(&people(Channel::Sms)).await?;
        let mut subscriptions: Recipients<Vec<PushSubscription>> = HashMap::new();
        let push = people(Channel::Push);
        if !push.is_empty() {
            for sub in self.engine.store.push_subscriptions_of(&push).await? {
                subscriptions.entry(sub.person).or_default().push(sub);
            }
        }
        Ok((phones.into_iter().collect(), subscriptions))
    }

    fn attempt(&self, m: &Message, outcome: Outcome, now: DateTime<Utc>) -> Attempt {
        match outcome {
            Outcome::Sent {
                provider,
                provider_ref,
            } => Attempt::Sent {
                provider,
                provider_ref,
            },
            Outcome::Failed {
                provider,
                error,
                retry_after: Some(after),
            } if m.attempts + 1 < self.max_attempts => {
                let jitter = rand::rng().random_range(-0.2..=0.2);
                let delay = backoff(self.first_backoff, self.max_backoff, m.attempts, after, jitter);
                Attempt::Retry {
                    provider,
                    error,
                    next: now + delay,
                }
            }
            Outcome::Failed { provider, error, .. } => Attempt::Failed { provider, error },
        }
    }

    /// The loop, until `stop` turns true. Up to `in_flight` leased batches are sending at
    /// once: the next lease does not wait for a slow provider's answers to the last one.
    /// Batches the deadline loop hands over send as they come (see [`Dispatcher::send_handed`]).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let line = self
            .relayed
            .take()
            .map(|r| r.into_inner().expect("BUG: never poisoned"));
        let slots = Arc::new(Semaphore::new(self.in_flight.max(1)));
        let this = Arc::new(self);
        let handing = line.map(|line| tokio::spawn(this.clone().send_handed(line, stop.clone())));
        loop {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("BUG: the semaphore is never closed");
            let full = match this.claim().await {
                Ok(due) if due.messages.is_empty() => {
                    drop(slot);
                    false
                }
                Ok(due) => {
                    let full = due.messages.len() >= this.batch as usize;
                    let batch = this.clone();
                    tokio::spawn(async move {
                        batch.send_logged(due).await;
                        drop(slot);
                    });
                    full
                }
                Err(e) => {
                    drop(slot);
                    tracing::error!(error = %e, "the dispatcher could not tick");
                    false
                }
            };
            if full && !crate::stopping(&stop) {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(this.max_sleep) => {}
                () = this.engine.outbox.notified() => {}
                _ = stop.changed() => {}
            }
            if crate::stopping(&stop) {
                // Let the batches in flight record what they sent (this loop holds no slot
                // here: each was dropped or moved into its batch).
                let _ = slots.acquire_many(this.in_flight.max(1) as u32).await;
                if let Some(handing) = handing {
                    let _ = handing.await;
                }
                return;
            }
        }
    }

    /// Sends each batch the deadline loop hands over the moment it comes, until `stop`, then
    /// lets those in flight record what they sent. A handed-over batch is leased already, so
    /// it takes none of the `in_flight` slots that bound claiming: with a provider that takes
    /// 200 ms to answer, those slots would cap a burst at a few batches per 200 ms, while its
    /// sends are bounded anyway by the channel's send slots.
    async fn send_handed(
        self: Arc<Self>,
        mut line: mpsc::UnboundedReceiver<Leased>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut batches = JoinSet::new();
        loop {
            tokio::select! {
                handed = line.recv() => match handed.map(|h| self.sendable(h)) {
                    Some(Some(handed)) => {
                        let this = self.clone();
                        batches.spawn(async move { this.send_logged(handed).await });
                    }
                    Some(None) => {}
                    None => break,
                },
                Some(_) = batches.join_next(), if !batches.is_empty() => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
        }
        while batches.join_next().await.is_some() {}
    }

    async fn send_logged(&self, due: Leased) {
        if let Err(e) = self.send(due).await {
            tracing::error!(error = %e, "the dispatcher could not record a batch; its lease will lapse");
        }
    }
}

type Recipients<T> = HashMap<PersonId, T>;

/// Whether a lease running `until` leaves time to send: at least half of it is left.
fn in_time(engine: &Engine, until: DateTime<Utc>, lease: Duration) -> bool {
    until - engine.now() >= lease / 2
}

/// `makker_deliveries_total{channel, provider, outcome}`: what alert rules watch.
fn count_delivery(channel: Channel, attempt: &Attempt) {
    let (provider, outcome) = match attempt {
        Attempt::Sent { provider, .. } => (provider, "sent"),
        Attempt::Retry { provider, .. } => (provider, "retry"),
        Attempt::Failed { provider, .. } => (provider, "failed"),
    };
    metrics::counter!(
        "makker_deliveries_total",
        "channel" => channel.as_str(),
        "provider" => provider.clone(),
        "outcome" => outcome
    )
    .increment(1);
}

enum Outcome {
    Sent {
        provider: String,
        provider_ref: Option<String>,
    },
    /// `retry_after`: `Some` when trying again may help (with the provider's wish, if any).
    Failed {
        provider: String,
        error: String,
        retry_after: Option<Option<StdDuration>>,
    },
}

impl Outcome {
    /// (provider, error) of a failure.
    fn failure(&self) -> Option<(String, String)> {
        match self {
            Outcome::Failed { provider, error, .. } => Some((provider.clone(), error.clone())),
            Outcome::Sent { .. } => None,
        }
    }
}

fn fail(provider: &str, error: &str, retry_after: Option<Option<StdDuration>>) -> Outcome {
    Outcome::Failed {
        provider: provider.into(),
        error: error.into(),
        retry_after,
    }
}

/// Pushes to every subscription of the recipient; sent when one accepts. Returns the
/// endpoints the push service says are gone, to forget.
async fn deliver_push(
    push: Option<&WebPush>,
    m: &Message,
    subscriptions: &[PushSubscription],
) -> (Outcome, Vec<String>) {
    let Some(push) = push else {
        return (fail(PROVIDER, "Web Push is not configured", None), vec![]);
    };
    let (kind, urgency) = match m.message.kind.as_str() {
        "reminder" => (PushKind::CheckInDue, Urgency::Normal),
        "alarm" | "follow_up" => (PushKind::Alarm, Urgency::High),
        "stand_down" => (PushKind::AlarmResolved, Urgency::High),
        _ => (PushKind::VisitNotice, Urgency::Normal),
    };
    let payload = PushPayload {
        kind,
        title: "Makker".into(),
        body: m.message.body.clone(),
        visit_id: m.message.visit,
        alarm_id: m.message.alarm,
        urgency,
    };
    let topic = m
        .message
        .alarm
        .map(Topic::for_alarm)
        .or_else(|| m.message.visit.map(Topic::for_visit));
    let message = PushMessage {
        payload,
        ttl: StdDuration::from_secs(3600),
        topic,
    };
    let (mut last, mut gone) = (fail(PROVIDER, "no push subscription", None), vec![]);
    for sub in subscriptions {
        let target = Subscription {
            endpoint: sub.endpoint.clone(),
            p256dh: sub.p256dh.clone(),
            auth: sub.auth.clone(),
        };
        let sent = matches!(last, Outcome::Sent { .. });
        match push.send(&target, &message).await {
            Ok(receipt) => {
                last = Outcome::Sent {
                    provider: PROVIDER.into(),
                    provider_ref: receipt.provider_id,
                }
            }
            Err(PushError::Gone { reason }) => {
                gone.push(sub.endpoint.clone());
                if !sent {
                    last = fail(PROVIDER, &reason, None);
                }
            }
            Err(PushError::Send(SendError::Retry { after, reason })) if !sent => {
                last = fail(PROVIDER, &reason, Some(after))
            }
            Err(PushError::Send(e)) if !sent => last = fail(PROVIDER, &e.to_string(), None),
            Err(_) => {}
        }
    }
    (last, gone)
}

/// Sends an SMS through the providers in order until one accepts. Returns the outcome and
/// the providers that failed before it (recorded too: supervisors see a primary that is down
/// even while the failover delivers).
async fn deliver(
    providers: &[Arc<dyn SmsProvider>],
    m: &Message,
    to: Option<&str>,
) -> (Outcome, Vec<(String, String)>) {
    let Some(to) = to else {
        return (fail("none", "no phone number", None), vec![]);
    };
    let sms = Sms {
        to: to.to_owned(),
        text: m.message.body.clone(),
        reference: m.message.id.to_string(),
    };
    let mut failures = Vec::new();
    for provider in providers {
        match provider.send(&sms).await {
            Ok(receipt) => {
                let sent = Outcome::Sent {
                    provider: receipt.provider.to_owned(),
                    provider_ref: receipt.provider_id,
                };
                return (sent, failures.iter().filter_map(Outcome::failure).collect());
            }
            Err(SendError::Retry { after, reason }) => {
                tracing::warn!(provider = provider.name(), to = %mask_phone(to), %reason, "SMS failed; trying the next provider");
                failures.push(fail(provider.name(), &reason, Some(after)));
            }
            Err(SendError::Permanent { reason }) => {
                tracing::warn!(provider = provider.name(), to = %mask_phone(to), %reason, "SMS refused; trying the next provider");
                failures.push(fail(provider.name(), &reason, None));
            }
        }
    }
    // All failed: the round is the last failure that may pass (it is retried), else the last.
    let may_pass = |f: &Outcome| {
        matches!(
            f,
            Outcome::Failed {
                retry_after: Some(_),
                ..
            }
        )
    };
    match failures
        .iter()
        .rposition(may_pass)
        .or(failures.len().checked_sub(1))
    {
        Some(i) => {
            let last = failures.remove(i);
            (last, failures.iter().filter_map(Outcome::failure).collect())
        }
        None => (fail("none", "no SMS provider configured", None), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_jittered_and_honours_retry_after() {
        let (first, max) = (Duration::seconds(10), Duration::minutes(10));
        assert_eq!(backoff(first, max, 0, None, 0.0), Duration::seconds(10));
        assert_eq!(backoff(first, max, 3, None, 0.0), Duration::seconds(80));
        assert_eq!(backoff(first, max, 12, None, 0.0), Duration::minutes(10));
        assert_eq!(backoff(first, max, 0, None, 0.2), Duration::seconds(12));
        assert_eq!(
            backoff(first, max, 0, None, 0.9),
            Duration::seconds(12),
            "jitter is bounded"
        );
        assert_eq!(
            backoff(first, max, 0, Some(StdDuration::from_secs(120)), 0.0),
            Duration::seconds(120)
        );
    }
}
