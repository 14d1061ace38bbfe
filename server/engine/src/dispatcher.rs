//! The outbox dispatcher: drains queued messages through the channel's providers.
//!
//! Protocol: lease due messages; send each outside any transaction (sends are slow and must
//! not hold locks); record the attempt and its outcome. An SMS goes to the primary provider
//! and, when that fails, to the failover in the same attempt. A failure that may pass is tried
//! again later with exponential backoff and ±20 % jitter, never sooner than the provider's
//! `Retry-After`, up to `max_attempts`; then the message is marked failed, visibly.
//!
//! INVARIANT: a message is its own outbox row, queued once per (occasion, recipient, channel)
//! by its dedup key; the row id travels as the provider's reference. A crash between a send
//! and its record may send that one message again (at least once); nothing else does.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use makker_domain::policy::Channel;
use makker_notify::push::{
    PROVIDER, PushError, PushKind, PushMessage, PushPayload, Subscription, Topic, Urgency, WebPush,
};
use makker_notify::sms::{Sms, SmsProvider};
use makker_notify::{SendError, mask_phone};
use makker_store::{Attempt, Message, PushSubscription};
use rand::Rng;
use tokio::sync::watch;
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
    pub lease: Duration,
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub max_sleep: StdDuration,
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
            batch: 200,
            lease: Duration::seconds(30),
            max_attempts: 8,
            first_backoff: Duration::seconds(10),
            max_backoff: Duration::minutes(10),
            max_sleep: StdDuration::from_millis(500),
        }
    }

    /// Sends push messages through `push` (without it, push messages fail visibly).
    pub fn with_push(mut self, push: WebPush) -> Self {
        self.push = Some(push);
        self
    }

    /// Sends what is due now, concurrently; returns how many messages were attempted.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn tick(&self) -> Result<usize, EngineError> {
        let now = self.engine.now();
        let due = self
            .engine
            .store
            .claim_messages(now, &self.owner, now + self.lease, self.batch)
            .await?;
        if !due.is_empty() {
            // A crash test stops here: committed and claimed, not sent.
            fail::fail_point!("dispatcher-claimed", |_| Ok(0));
        }
        let count = due.len();
        let mut sends = JoinSet::new();
        for m in due {
            let to = self.engine.store.person(m.message.person).await?.phone;
            let subscriptions = match m.message.channel {
                Channel::Push => self.engine.store.push_subscriptions(m.message.person).await?,
                Channel::Sms => vec![],
            };
            let providers = self.sms.clone();
            let push = self.push.clone();
            sends.spawn(async move {
                let (outcome, gone) = match m.message.channel {
                    Channel::Sms => (deliver(&providers, &m, to.as_deref()).await, vec![]),
                    Channel::Push => deliver_push(push.as_ref(), &m, &subscriptions).await,
                };
                (m, outcome, gone)
            });
        }
        while let Some(done) = sends.join_next().await {
            let (m, outcome, gone) =
                done.map_err(|e| EngineError::Invalid(format!("a send task failed: {e}")))?;
            for endpoint in gone {
                self.engine.store.remove_push_subscription(&endpoint).await?;
            }
            let attempt = self.attempt(&m, outcome, self.engine.now());
            count_delivery(m.message.channel, &attempt);
            self.engine
                .store
                .record_attempt(m.message.id, &attempt, self.engine.now())
                .await?;
        }
        Ok(count)
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

    /// The loop, until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let busy = match self.tick().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::error!(error = %e, "the dispatcher could not tick");
                    false
                }
            };
            if busy && !*stop.borrow() {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(self.max_sleep) => {}
                () = self.engine.outbox.notified() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }
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

async fn deliver(providers: &[Arc<dyn SmsProvider>], m: &Message, to: Option<&str>) -> Outcome {
    let Some(to) = to else {
        return fail("none", "no phone number", None);
    };
    let sms = Sms {
        to: to.to_owned(),
        text: m.message.body.clone(),
        reference: m.message.id.to_string(),
    };
    let mut last = fail("none", "no SMS provider configured", None);
    for provider in providers {
        match provider.send(&sms).await {
            Ok(receipt) => {
                return Outcome::Sent {
                    provider: receipt.provider.to_owned(),
                    provider_ref: receipt.provider_id,
                };
            }
            Err(SendError::Retry { after, reason }) => {
                tracing::warn!(provider = provider.name(), to = %mask_phone(to), %reason, "SMS failed; trying the next provider");
                last = fail(provider.name(), &reason, Some(after));
            }
            Err(SendError::Permanent { reason }) => {
                tracing::warn!(provider = provider.name(), to = %mask_phone(to), %reason, "SMS refused; trying the next provider");
                if !matches!(
                    last,
                    Outcome::Failed {
                        retry_after: Some(_),
                        ..
                    }
                ) {
                    last = fail(provider.name(), &reason, None);
                }
            }
        }
    }
    last
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
