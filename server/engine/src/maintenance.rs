//! Periodic maintenance: work that belongs to the calendar, not to a visit (per-visit timers
//! are deadline rows, never cron jobs). Runs on `tokio-cron-scheduler` in UTC, so daylight
//! saving never skips or doubles a run; on PostgreSQL an advisory lock lets one replica at a
//! time do it.
//!
//! Jobs: forget positions older than the retention time (DESIGN §8: positions are kept for a
//! configurable time, default 30 days), and the live boards' change log older than a day.

use chrono::Duration;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::error::EngineError;
use crate::service::Engine;

/// Daily at 03:15 UTC.
pub const DAILY: &str = "0 15 3 * * *";

#[derive(Clone)]
pub struct Maintenance {
    engine: Engine,
    pub position_days: u32,
}

impl Maintenance {
    pub fn new(engine: Engine, position_days: u32) -> Self {
        Maintenance {
            engine,
            position_days,
        }
    }

    /// One run: how many rows lost their position, or `None` when another replica is at it.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn run_once(&self) -> Result<Option<u64>, EngineError> {
        let now = self.engine.now();
        let before = now - Duration::days(i64::from(self.position_days));
        let positions = self.engine.store.purge_positions(before).await?;
        // The live boards' change log only serves reconnecting boards: a day is plenty.
        self.engine.store.purge_live(now - Duration::days(1)).await?;
        Ok(positions)
    }

    /// Starts the daily schedule.
    ///
    /// # Errors
    /// The scheduler cannot start.
    pub async fn start(self) -> Result<JobScheduler, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        scheduler
            .add(Job::new_async(DAILY, move |_, _| {
                let this = self.clone();
                Box::pin(async move {
                    match this.run_once().await {
                        Ok(Some(n)) => tracing::info!(rows = n, "old positions purged"),
                        Ok(None) => tracing::info!("another replica purges positions"),
                        Err(e) => tracing::error!(error = %e, "purging old positions failed"),
                    }
                })
            })?)
            .await?;
        scheduler.start().await?;
        Ok(scheduler)
    }
}
