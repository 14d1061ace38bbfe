//! The outbound heartbeat: while this process is healthy — the database answers and the
//! deadline loop ticks — it calls an outside watchdog every interval. When Makker dies, hangs
//! or loses its database the calls stop, and the watchdog tells a human. Nothing inside
//! Makker can report its own death.

use std::time::Duration;

use makker_engine::Engine;
use makker_http::ops::LOOP_STALE;
use tokio::sync::watch;

pub struct Watchdog {
    pub engine: Engine,
    pub url: String,
    pub interval: Duration,
    pub http: reqwest::Client,
}

impl Watchdog {
    /// Calls the watchdog now and every interval until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if self.healthy().await {
                let outcome = match self.ping().await {
                    Ok(()) => "ok",
                    Err(e) => {
                        tracing::warn!(error = %e, "the watchdog could not be reached");
                        "failed"
                    }
                };
                metrics::counter!("makker_watchdog_pings_total", "outcome" => outcome).increment(1);
            } else {
                tracing::warn!("unhealthy: the watchdog is not called");
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => {}
            }
            if makker_engine::stopping(&stop) {
                return;
            }
        }
    }

    async fn healthy(&self) -> bool {
        self.engine.store.db_now().await.is_ok() && self.engine.health.loop_alive(LOOP_STALE)
    }

    async fn ping(&self) -> Result<(), reqwest::Error> {
        self.http
            .get(&self.url)
            .timeout(Duration::from_secs(10))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
