//! Periodic maintenance: work that belongs to the calendar, not to a visit (per-visit timers
//! are deadline rows, never cron jobs). Runs on `tokio-cron-scheduler` in UTC, so daylight
//! saving never skips or doubles a run; on PostgreSQL an advisory lock lets one replica at a
//! time do it.
//!
//! Jobs: forget positions older than the retention time (DESIGN §8: positions are kept for a
//! configurable time, default 30 days), pseudonymise visit details after a longer one (default
//! 180 days), delete audit lines after a longer one still (default 730 days; the database
//! refuses any line younger than [`AUDIT_MIN_DAYS`]), and the live boards' change log older
//! than a day.

use chrono::Duration;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::error::EngineError;
use crate::service::Engine;

/// Daily at 03:15 UTC.
pub const DAILY: &str = "0 15 3 * * *";

/// The audit log's shortest retention: the database refuses to delete a younger line (its own
/// clock decides; migration 0014).
pub const AUDIT_MIN_DAYS: u32 = 365;

#[derive(Clone)]
pub struct Maintenance {
    engine: Engine,
    pub position_days: u32,
    pub visit_detail_days: u32,
    pub audit_days: u32,
}

/// What one run changed: rows per job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Visit events, alarms and SMS texts that lost their position.
    pub positions: u64,
    /// Rows whose details were blanked or whose home was replaced.
    pub visit_details: u64,
    /// Audit lines deleted.
    pub audit: u64,
}

impl Maintenance {
    /// With the default retention of visit details (180 days) and the audit log (730 days).
    pub fn new(engine: Engine, position_days: u32) -> Self {
        Maintenance {
            engine,
            position_days,
            visit_detail_days: 180,
            audit_days: 730,
        }
    }

    /// With these retention times of visit details and the audit log, in days.
    pub fn with_retention(mut self, visit_detail_days: u32, audit_days: u32) -> Self {
        self.visit_detail_days = visit_detail_days;
        self.audit_days = audit_days;
        self
    }

    /// One run: what it changed, or `None` when another replica is at it.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn run_once(&self) -> Result<Option<Purged>, EngineError> {
        let now = self.engine.now();
        let days = |d: u32| now - Duration::days(i64::from(d));
        let store = &self.engine.store;
        let Some(positions) = store.purge_positions(days(self.position_days)).await? else {
            return Ok(None);
        };
        let visit_details = store.pseudonymise_visits(days(self.visit_detail_days)).await?;
        // Never younger than the database allows: a shorter setting must not fail the run.
        let audit = store
            .purge_audit(days(self.audit_days.max(AUDIT_MIN_DAYS)))
            .await?;
        // The live boards' change log only serves reconnecting boards: a day is plenty.
        store.purge_live(now - Duration::days(1)).await?;
        Ok(Some(Purged {
            positions,
            visit_details: visit_details.unwrap_or(0),
            audit: audit.unwrap_or(0),
        }))
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
                        Ok(Some(p)) => tracing::info!(
                            positions = p.positions,
                            visit_details = p.visit_details,
                            audit = p.audit,
                            "retention: old data purged"
                        ),
                        Ok(None) => tracing::info!("another replica purges old data"),
                        Err(e) => tracing::error!(error = %e, "purging old data failed"),
                    }
                })
            })?)
            .await?;
        scheduler.start().await?;
        Ok(scheduler)
    }
}
