//! Shared harness for Makker's end-to-end suites.
//!
//! - [`sqlite_store`]: a fresh SQLite file per test, in a temporary directory.
//! - [`pg_store`]: a fresh PostgreSQL database per test on the server named by
//!   `MAKKER_TEST_DATABASE_URL`. When that variable is set and the server is unreachable, the
//!   test fails loudly; it never skips. When it is not set, the PostgreSQL half of a suite
//!   fails too, with a message that says how to run it — unless `MAKKER_TEST_SKIP_PG=1` is
//!   set explicitly, which is only for a quick local loop.

pub mod app;
pub mod board;
#[path = "../fakes/push_service.rs"]
pub mod fake_push;
pub use makker_fakes::gatewayapi as fake_sms;

use std::path::PathBuf;
use std::sync::Arc;

use makker_store::Store;
use makker_store_pg::PgStore;
use makker_store_sqlite::SqliteStore;
use sqlx::Connection;

pub const PG_ENV: &str = "MAKKER_TEST_DATABASE_URL";

/// A scratch directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("makker-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A migrated store on a fresh SQLite file. Keep the `TempDir` alive while using it.
pub async fn sqlite_store() -> (Arc<dyn Store>, TempDir) {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("makker.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    (Arc::new(store), dir)
}

/// Whether the PostgreSQL half of the suites is switched off on purpose.
pub fn pg_skipped() -> bool {
    std::env::var(PG_ENV).is_err() && std::env::var("MAKKER_TEST_SKIP_PG").is_ok_and(|v| v == "1")
}

/// The URL of a fresh, empty PostgreSQL database (created on the server of `MAKKER_TEST_DATABASE_URL`).
///
/// # Panics
/// When the variable is missing or the server cannot be reached: a PostgreSQL test never skips.
pub async fn pg_database_url() -> String {
    let base = std::env::var(PG_ENV).unwrap_or_else(|_| {
        panic!("{PG_ENV} is not set: the PostgreSQL suite needs a server, e.g. postgres://postgres@127.0.0.1:5432/test")
    });
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {PG_ENV} is unreachable: {e}"));
    let name = format!("makker_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    replace_database(&base, &name)
}

fn replace_database(url: &str, name: &str) -> String {
    let (before_query, query) = url.split_once('?').map_or((url, None), |(a, q)| (a, Some(q)));
    let cut = before_query
        .rfind('/')
        .filter(|i| *i > "postgres://".len())
        .unwrap_or(before_query.len());
    let mut out = format!("{}/{name}", &before_query[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A migrated store on a fresh PostgreSQL database.
pub async fn pg_store() -> Arc<dyn Store> {
    let url = pg_database_url().await;
    let store = PgStore::connect(&url)
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrate PostgreSQL");
    Arc::new(store)
}

/// Runs one async test body against both backends: `both!(name, body_fn)` makes
/// `name_on_sqlite` and `name_on_postgres`.
#[macro_export]
macro_rules! both {
    ($($name:ident => $body:path),* $(,)?) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn on_sqlite() {
                let (store, _dir) = $crate::sqlite_store().await;
                $body(store).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                if $crate::pg_skipped() {
                    eprintln!("PostgreSQL half skipped on purpose (MAKKER_TEST_SKIP_PG=1)");
                    return;
                }
                let store = $crate::pg_store().await;
                $body(store).await;
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            super::replace_database("postgres://root@127.0.0.1:5432/test?sslmode=disable", "x"),
            "postgres://root@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_database("postgres://h/test", "y"),
            "postgres://h/y"
        );
    }
}
