//! The demo's SMS provider: it sends nothing, logs each message and remembers the last few.
//!
//! Invariants:
//! - Every send succeeds, with a receipt id `log-<n>` counting up from 1.
//! - At most `capacity` messages are kept, oldest dropped first, so a long demo cannot grow
//!   memory without bound.
//! - The log line masks the number (the text is shown: this provider is for demos).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{Sms, SmsProvider};
use crate::{Receipt, SendError, mask_phone};

/// Logs messages instead of sending them, and keeps the most recent in memory.
#[derive(Debug)]
pub struct LogProvider {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    recent: VecDeque<Sms>,
    sent: u64,
}

impl LogProvider {
    pub const NAME: &'static str = "log";
    /// How many messages [`LogProvider::new`] keeps.
    pub const DEFAULT_CAPACITY: usize = 50;

    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A provider that keeps the last `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    /// The kept messages, oldest first.
    pub fn recent(&self) -> Vec<Sms> {
        self.state().recent.iter().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a usable list behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for LogProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl SmsProvider for LogProvider {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn send(&self, sms: &Sms) -> Result<Receipt, SendError> {
        let mut state = self.state();
        state.sent += 1;
        let id = format!("log-{}", state.sent);
        tracing::info!(
            provider = Self::NAME,
            reference = %sms.reference,
            to = %mask_phone(&sms.to),
            provider_id = %id,
            text = %sms.text,
            "sms (not sent: log provider)"
        );
        if state.recent.len() == self.capacity {
            state.recent.pop_front();
        }
        state.recent.push_back(sms.clone());
        Ok(Receipt {
            provider: Self::NAME,
            provider_id: Some(id),
        })
    }
}
