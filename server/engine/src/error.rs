use makker_domain::Refusal;
use makker_store::StoreError;

pub(crate) type Result<T> = std::result::Result<T, EngineError>;

/// Why a service call did not happen. The HTTP layer turns each into a problem type.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The domain or policy refused, with a reason for the worker.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not signed in, or the token is expired or revoked")]
    Unauthorized,
    #[error("your role may not do this")]
    Forbidden,
    #[error("too many failed sign-ins; locked until {until}")]
    LockedOut { until: chrono::DateTime<chrono::Utc> },
    #[error("{0}")]
    Invalid(String),
    #[error("the phone's time is too far from the server's")]
    ClockSkew,
    #[error("someone else changed this at the same moment; try again")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e)
    }
}

/// Maps a store's `NotFound` to a named thing.
pub(crate) fn found<T>(r: std::result::Result<T, StoreError>, what: &'static str) -> Result<T> {
    r.map_err(|e| match e {
        StoreError::NotFound => EngineError::NotFound(what),
        e => EngineError::Store(e),
    })
}
