//! Phones checking in: each its own task with its own token and connection.

use std::time::{Duration, Instant};

use makker_mobile_api::EventRequest;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use crate::phone::CheckIns;

/// A phone: its device token and its active visit.
#[derive(Debug, Clone)]
pub struct Phone {
    pub token: String,
    pub visit: Uuid,
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latencies of acknowledged check-ins.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Every phone checks in until `duration` has passed: back to back (closed loop, the
/// server's ceiling) without `rate`, else paced so that all together send `rate` a second;
/// each check-in with an idempotency key of its own if `keyed`, as the app sends them.
pub async fn check_ins(
    base: &str,
    phones: &[Phone],
    duration: Duration,
    rate: Option<f64>,
    keyed: bool,
) -> Outcome {
    let request = EventRequest {
        client_time: None,
        position: None,
    };
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for (i, phone) in phones.iter().enumerate() {
        let check_ins = CheckIns::new(base, &phone.token, phone.visit, &request, keyed);
        // Each phone's share of the rate, its first send staggered across one period.
        let period = rate.map(|r| Duration::from_secs_f64(phones.len() as f64 / r));
        let offset = period.map(|p| p.mul_f64(i as f64 / phones.len() as f64));
        tasks.spawn(async move { phone_loop(check_ins?, start, end, period, offset).await });
    }
    let mut outcome = Outcome::default();
    while let Some(done) = tasks.join_next().await {
        let one = match done {
            Ok(Ok(one)) => one,
            Ok(Err(e)) => {
                outcome.first_error.get_or_insert_with(|| e.to_string());
                outcome.errors += 1;
                continue;
            }
            Err(_) => {
                outcome.errors += 1;
                continue;
            }
        };
        outcome.latencies.extend(one.latencies);
        outcome.errors += one.errors;
        outcome.first_error = outcome.first_error.or(one.first_error);
    }
    outcome.elapsed = start.elapsed().min(duration);
    outcome
}

async fn phone_loop(
    mut check_ins: CheckIns,
    start: Instant,
    end: Instant,
    period: Option<Duration>,
    offset: Option<Duration>,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut ticks = period.map(|p| {
        // A fixed schedule from the run's start: a tick missed (a phone spawned late, or
        // still waiting for its last answer) is sent at once, not the whole schedule shifted,
        // so a server that keeps pace acknowledges the whole rate offered.
        let first = tokio::time::Instant::from_std(start) + offset.unwrap_or_default();
        let mut t = tokio::time::interval_at(first, p);
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    loop {
        // A paced phone sends every tick due inside the window, even one whose timer wakes
        // it a moment after the end.
        let due = match ticks.as_mut() {
            Some(t) => t.tick().await.into_std(),
            None => Instant::now(),
        };
        if due >= end {
            return Ok(outcome);
        }
        let sent = Instant::now();
        match check_ins.send().await {
            Ok(_) => outcome.latencies.push(sent.elapsed()),
            Err(e) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert_with(|| e.to_string());
                // A failing server is not hammered in a tight loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
