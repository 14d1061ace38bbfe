//! Makker's application services: what the HTTP API and the CLI ask for, carried out through
//! the domain and the store, and the deadline loop that escalates missed check-ins.
//!
//! Invariants:
//! - Time comes from the injected [`clock::Clock`], never from the system directly, so tests
//!   drive hours in milliseconds.
//! - Every visit change is: read (with version) → pure domain transition → save with the
//!   version and the effects in one transaction; a concurrent change makes it read again.
//! - Secrets (passwords, PINs, tokens) are stored only as hashes and never logged.

mod alarms;
mod approval;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod coverage;
pub mod dispatcher;
mod error;
mod export;
pub mod health;
pub mod maintenance;
mod messages;
pub mod scheduler;
mod service;
pub mod sso;
mod watch;

pub use alarms::Delivery;
pub use approval::{AskState, AskWarning, LoneAnswer, LoneAsk};
pub use error::EngineError;
pub use service::{Colleague, Engine, EngineSettings, NearbyPlace, NewPersonInput, StartCommand, ToChange};

/// Whether a background loop told by `stop` should end: `stop` turned true, or its sender is
/// gone. Nobody is left to stop the loop then, and waiting for a change would return at once,
/// every time: the loop would spin instead of sleeping.
pub fn stopping(stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Fault injection for the crash tests. With the `failpoints` feature, `FAILPOINTS` in the
/// environment (e.g. `scheduler-claimed=return`) configures the named points; `return` drops
/// the claimed work right there, again and again, so a test can SIGKILL the process while work
/// is stuck at that moment:
/// - `scheduler-claimed`: due deadlines are leased, the transaction that fires them not begun;
/// - `dispatcher-claimed`: messages are committed and leased, not yet sent.
///
/// Without the feature the points compile to nothing. Keep the guard for the process's life.
pub fn failpoints() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
