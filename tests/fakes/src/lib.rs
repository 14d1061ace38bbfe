//! Local fakes of the services Makker sends to, for tests and benchmarks: each speaks the
//! provider's documented HTTP API on 127.0.0.1 and records what it receives.

pub mod elks46;
pub mod gatewayapi;
pub mod oidc;
