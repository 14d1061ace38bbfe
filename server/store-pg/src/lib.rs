//! Makker's storage on PostgreSQL: for production and for several server replicas.
//! Times are `timestamptz`, JSON is `jsonb`; constraint names come from the server.

use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::postgres::PgPoolOptions;

#[path = "../../store/sql/shared.rs"]
mod shared;

pub use shared::SqlStore as PgStore;

type Db = sqlx::Postgres;
/// Appended to claim subqueries: replicas skip rows another one holds.
const SKIP_LOCKED: &str = " for update skip locked";
/// Appended to a read whose row must not change before the write after it commits.
const FOR_UPDATE: &str = " for update";
/// Taken in the maintenance transaction: one process purges at a time.
const MAINTENANCE_LOCK: &str = "select pg_try_advisory_xact_lock(724137)";
const BEGIN_WRITE: &str = "begin";
/// Set on a connection the check-ins' readers and committers keep: their statements keep one
/// plan each. Without it PostgreSQL planned them anew for the arrays they bind (it keeps a
/// generic plan only when sure it is no dearer), and planning cost more than running them: at
/// 500 check-ins/s PostgreSQL took 0.65-0.67 cores with it instead of 0.94-0.99.
const OWN_CONNECTION: &str = "set plan_cache_mode = force_generic_plan";
/// Set on the connections that claim idempotency keys and store their answers: their commits
/// return before the log is on disk (see `idempotency.rs` for why that loses nothing).
const LAZY_COMMIT: &str = "set synchronous_commit = off";
/// Migrations are forward-only and additive. A database migrated by a newer version is fine for
/// this one (a rolling upgrade restarts old replicas against the new schema), so migrations
/// this build does not know are ignored rather than refused.
static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    let mut m = sqlx::migrate!("./migrations");
    m.set_ignore_missing(true);
    m
});
const SCHEMA_QUERY: &str = "select table_name::text, column_name::text from information_schema.columns \
     where table_schema = current_schema() and table_name not like '\\_sqlx%' order by table_name";

const CHANNEL: &str = "makker_deadline";
const NOTIFY_ARMED: &str = "select pg_notify('makker_deadline', '')";
const LIVE_CHANNEL: &str = "makker_live";
const NOTIFY_LIVE: &str = "select pg_notify('makker_live', '')";

/// Listens for deadlines armed by other replicas, reconnecting after a lost connection.
async fn watch_deadlines(
    pool: &sqlx::PgPool,
    wake: Box<dyn Fn() + Send + Sync>,
) -> makker_store::StoreResult<()> {
    listen(pool, CHANNEL, wake).await
}

async fn watch_live(pool: &sqlx::PgPool, wake: Box<dyn Fn() + Send + Sync>) -> makker_store::StoreResult<()> {
    listen(pool, LIVE_CHANNEL, wake).await
}

/// Calls `wake` for every notification on `channel`, and once after each (re)connect.
async fn listen(
    pool: &sqlx::PgPool,
    channel: &str,
    wake: Box<dyn Fn() + Send + Sync>,
) -> makker_store::StoreResult<()> {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(l) => l,
            Err(e) if pool.is_closed() => return Err(makker_store::StoreError::Transient(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for notifications; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(channel).await {
            tracing::warn!(error = %e, "cannot listen for notifications; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // A reconnect may have missed notifications: wake once to look.
        wake();
        while listener.recv().await.is_ok() {
            wake();
        }
        if pool.is_closed() {
            return Ok(());
        }
    }
}

async fn db_now(pool: &sqlx::PgPool) -> makker_store::StoreResult<chrono::DateTime<chrono::Utc>> {
    let (now,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("select clock_timestamp()")
        .fetch_one(pool)
        .await
        .map_err(|e| makker_store::StoreError::Transient(e.to_string()))?;
    Ok(now)
}

fn constraint_of(e: &dyn DatabaseError) -> String {
    e.constraint()
        .map_or_else(|| e.message().to_owned(), str::to_owned)
}

impl PgStore {
    /// Connects to `url` (`postgres://…`).
    ///
    /// # Errors
    /// The server is unreachable or refuses the connection.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::open(url, 16, true).await
    }

    /// [`PgStore::connect`] with a pool of `max_connections` (e.g. a small one of its own
    /// for the deadline loop, apart from the HTTP handlers').
    ///
    /// # Errors
    /// The server is unreachable or refuses the connection.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        Self::open(url, max_connections, false).await
    }

    /// A pool of `max_connections`; with `keep`, the check-ins' readers and committers (five)
    /// each keep one of them (only the serving store's pool has room to spare).
    async fn open(url: &str, max_connections: u32, keep: bool) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before each use: that is a round trip ahead of every statement. A
            // connection a restart broke fails its next statement, as a transient error.
            .test_before_acquire(false)
            .connect(url)
            .await?;
        Ok(shared::SqlStore::new(pool, keep))
    }
}
