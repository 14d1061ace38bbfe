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
pub mod auth;
pub mod clock;
pub mod dispatcher;
mod error;
pub mod maintenance;
mod messages;
pub mod scheduler;
mod service;

pub use error::EngineError;
pub use service::{Colleague, Engine, EngineSettings, NearbyPlace, NewPersonInput, StartCommand};
