//! The one source of "now". Production reads the system clock; tests set and advance a
//! manual clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("BUG: clock lock poisoned") += by;
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("BUG: clock lock poisoned") = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("BUG: clock lock poisoned")
    }
}

/// The database's clock, as seen from here: this host's clock plus a measured offset, so
/// every replica decides what is due by the same time. Re-measure with [`DbClock::sync`].
#[derive(Debug, Default)]
pub struct DbClock {
    offset_ms: AtomicI64,
}

impl DbClock {
    /// Measures the offset: the database's time against the midpoint of the round trip.
    ///
    /// # Errors
    /// The database is unreachable; the last offset stays.
    pub async fn sync(&self, store: &dyn makker_store::Store) -> makker_store::StoreResult<Duration> {
        let before = Utc::now();
        let db = store.db_now().await?;
        let after = Utc::now();
        let offset = db - (before + (after - before) / 2);
        self.offset_ms.store(offset.num_milliseconds(), Ordering::Relaxed);
        Ok(offset)
    }
}

impl Clock for DbClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}
