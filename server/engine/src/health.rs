//! What this process knows of its own health: when its deadline loop last completed a tick.
//! `/readyz` and the watchdog read it, so a process whose loop is stuck stops looking healthy.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Health {
    last_tick: Mutex<Option<Instant>>,
}

impl Health {
    /// The deadline loop completed a tick.
    pub fn ticked(&self) {
        *self
            .last_tick
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// The deadline loop completed a tick within `within`.
    pub fn loop_alive(&self, within: Duration) -> bool {
        self.last_tick
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| t.elapsed() <= within)
    }
}
