//! Makker's storage on SQLite: the embedded default. One file, WAL, created on first run.
//!
//! SQLite allows one writer at a time; write transactions begin `IMMEDIATE` so that two of
//! them never deadlock upgrading a read lock, and a busy timeout makes writers queue.

use std::str::FromStr;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[path = "../../store/sql/shared.rs"]
mod shared;

pub use shared::SqlStore as SqliteStore;

type Db = sqlx::Sqlite;
/// Appended to claim subqueries: replicas skip rows another one holds.
const SKIP_LOCKED: &str = "";
/// Appended to a read whose row must not change before the write after it commits (a
/// write transaction already holds the database).
const FOR_UPDATE: &str = "";
/// Taken in the maintenance transaction: one process purges at a time.
const MAINTENANCE_LOCK: &str = "select true";
const BEGIN_WRITE: &str = "begin immediate";
/// Nothing to set on a connection kept by a reader or committer.
const OWN_CONNECTION: &str = "";
/// Migrations are forward-only and additive. A database migrated by a newer version is fine for
/// this one (a rolling upgrade restarts old replicas against the new schema), so migrations
/// this build does not know are ignored rather than refused.
static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    let mut m = sqlx::migrate!("./migrations");
    m.set_ignore_missing(true);
    m
});
const SCHEMA_QUERY: &str = "select m.name, c.name from sqlite_master m join pragma_table_info(m.name) c \
     where m.type = 'table' and m.name not like 'sqlite_%' and m.name not like '\\_sqlx%' escape '\\' \
     order by m.name";

/// One process serves a SQLite file: nobody else arms deadlines or writes live changes.
const NOTIFY_ARMED: &str = "";
const NOTIFY_LIVE: &str = "";

async fn watch_deadlines(
    _pool: &sqlx::SqlitePool,
    _wake: Box<dyn Fn() + Send + Sync>,
) -> makker_store::StoreResult<()> {
    Ok(())
}

async fn watch_live(
    _pool: &sqlx::SqlitePool,
    _wake: Box<dyn Fn() + Send + Sync>,
) -> makker_store::StoreResult<()> {
    Ok(())
}

/// SQLite runs inside this process: its clock is this host's.
async fn db_now(_pool: &sqlx::SqlitePool) -> makker_store::StoreResult<chrono::DateTime<chrono::Utc>> {
    Ok(chrono::Utc::now())
}

/// SQLite names the columns, not the index: map them back to our constraint names.
fn constraint_of(e: &dyn DatabaseError) -> String {
    let msg = e.message();
    let known = [
        (
            "visit_participant.person_id",
            makker_store::constraint::ONE_ACTIVE_VISIT,
        ),
        ("shift.person_id", makker_store::constraint::ONE_OPEN_SHIFT),
        ("person.username", makker_store::constraint::USERNAME),
        ("idempotency.person_id", makker_store::constraint::IDEMPOTENCY),
    ];
    known
        .iter()
        .find(|(cols, _)| msg.contains(cols))
        .map_or_else(|| msg.to_owned(), |(_, name)| (*name).to_owned())
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`).
    ///
    /// # Errors
    /// The file cannot be created or opened.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database lives in one connection.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await?;
        Ok(shared::SqlStore::new(pool, false))
    }
}
