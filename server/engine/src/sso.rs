//! Single sign-on: the engine's half of an OpenID Connect sign-in (the HTTP half, which
//! speaks to the identity provider, is `makker_http::oidc`).
//!
//! Invariants:
//! - A flow is kept under the hash of its `state`, finishes at most once, and only before it
//!   expires ([`SSO_FLOW_MINUTES`]).
//! - The identity provider vouches for a username; it never creates one. A username that no
//!   Makker person has signs nobody in.

use chrono::Duration;
use makker_store::{Device, Person, SsoFlow, StoreError};

use crate::auth;
use crate::error::EngineError;
use crate::service::Engine;

/// How long a browser has at the identity provider to sign in.
pub const SSO_FLOW_MINUTES: i64 = 10;

/// What the callback needs to finish a sign-on it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoStart {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
}

impl Engine {
    /// Keeps a sign-on under way until its callback (or its expiry).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn begin_sso(&self, start: &SsoStart) -> Result<(), EngineError> {
        let now = self.now();
        let flow = SsoFlow {
            state_hash: auth::token_hash(&start.state),
            nonce: start.nonce.clone(),
            pkce_verifier: start.pkce_verifier.clone(),
            return_to: start.return_to.clone(),
            created_at: now,
            expires_at: now + Duration::minutes(SSO_FLOW_MINUTES),
        };
        Ok(self.store.begin_sso(&flow).await?)
    }

    /// Takes the sign-on started with `state`: `None` when unknown, finished already, or expired.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn finish_sso(&self, state: &str) -> Result<Option<SsoStart>, EngineError> {
        let flow = match self.store.take_sso(&auth::token_hash(state)).await {
            Ok(f) => f,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok((flow.expires_at > self.now()).then(|| SsoStart {
            state: state.to_owned(),
            nonce: flow.nonce,
            pkce_verifier: flow.pkce_verifier,
            return_to: flow.return_to,
        }))
    }

    /// Signs in the person the identity provider vouched for: a new web session (a device)
    /// for them. `None` when no person has this username.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn sso_sign_in(
        &self,
        username: &str,
        device_name: &str,
    ) -> Result<Option<(Person, String, Device)>, EngineError> {
        let person = match self
            .store
            .person_by_username(&username.trim().to_lowercase())
            .await
        {
            Ok(p) => p,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (token, device) = self.issue_token(person.id, device_name).await?;
        Ok(Some((person, token, device)))
    }
}
