//! `makker backup` and `makker restore` (ops/BACKUP.md).
//!
//! SQLite is copied online with `VACUUM INTO`: one read transaction, so the copy is a
//! consistent snapshot while `makker serve` keeps writing (WAL readers do not block writers).
//! PostgreSQL is dumped and restored by the PostgreSQL client tools, which must be at least as
//! new as the server. Either way a backup holds password hashes and positions: files are created
//! readable by their owner only, and nothing here ever overwrites an existing file or database.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Writes a consistent copy of the database at `database_url` to `to`, which must not exist.
///
/// SQLite: `VACUUM INTO`, safe while the server runs. PostgreSQL: `pg_dump --format=custom`.
/// The copy is written beside `to` as `<to>.partial` and renamed when complete, so a file with
/// the final name is never half-written (backup agents may pick it up at any moment).
///
/// # Errors
/// `to` exists, the database cannot be read, or `pg_dump` is missing or fails.
pub async fn backup(database_url: &str, to: &Path) -> anyhow::Result<()> {
    refuse_existing(to, "the backup file")?;
    match Backend::of(database_url)? {
        Backend::Sqlite(options) => backup_sqlite(*options, to).await,
        Backend::Postgres => {
            let (url, password) = without_password(database_url);
            let to = to.to_owned();
            blocking(move || {
                let partial = partial_path(&to);
                create_private(&partial)?;
                let mut cmd = Command::new("pg_dump");
                cmd.args(["--format=custom", "--no-owner", "--no-password", "--file"])
                    .arg(&partial)
                    .arg("--dbname")
                    .arg(url);
                let done = run_pg_tool(cmd, "pg_dump", password).and_then(|()| finish(&partial, &to));
                if done.is_err() {
                    let _ = std::fs::remove_file(&partial);
                }
                done
            })
            .await
        }
    }
}

/// Puts the backup `from` in place as the database at `database_url`, with the server stopped.
///
/// SQLite: the database file must not exist (move it and its `-wal` and `-shm` aside first);
/// the backup is checked, copied into place, and stale `-wal`, `-shm` and `-journal` files are
/// removed, since SQLite would otherwise replay them into the restored file. PostgreSQL:
/// `pg_restore` in one transaction into an empty database (then rename it into place).
///
/// # Errors
/// The target exists or already holds Makker's tables, a server holds the SQLite file, the
/// backup is not a Makker database, or `pg_restore` is missing or fails.
pub async fn restore(database_url: &str, from: &Path) -> anyhow::Result<()> {
    if !from.is_file() {
        bail!("{} is not a file", from.display());
    }
    match Backend::of(database_url)? {
        Backend::Sqlite(options) => restore_sqlite(database_url, *options, from).await,
        Backend::Postgres => {
            refuse_makker_tables(database_url).await?;
            let (url, password) = without_password(database_url);
            let from = from.to_owned();
            blocking(move || {
                let mut cmd = Command::new("pg_restore");
                // One transaction: a restore that fails leaves the database empty, not half full.
                cmd.args([
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                    "--no-password",
                    "--dbname",
                ])
                .arg(url)
                .arg(&from);
                run_pg_tool(cmd, "pg_restore", password)
            })
            .await
        }
    }
}

enum Backend {
    Sqlite(Box<SqliteConnectOptions>),
    Postgres,
}

impl Backend {
    /// The scheme picks the backend, as in [`crate::open_store`]. Errors never repeat the URL:
    /// it may hold a password.
    fn of(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                bail!("an in-memory SQLite database has nothing to back up or restore");
            }
            let options = SqliteConnectOptions::from_str(url).context("the SQLite URL is invalid")?;
            Ok(Backend::Sqlite(Box::new(options)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            bail!("the database URL must start with sqlite: or postgres://")
        }
    }
}

async fn backup_sqlite(options: SqliteConnectOptions, to: &Path) -> anyhow::Result<()> {
    let partial = partial_path(to);
    // SQLite takes the file name as text.
    let name = partial
        .to_str()
        .context("the backup path must be valid UTF-8")?
        .to_owned();
    create_private(&partial)?;
    let done = async {
        let db_file = options.get_filename().display().to_string();
        // Never creates the database: a mistyped path is an error, not an empty backup.
        let mut db = options
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(30))
            .connect()
            .await
            .with_context(|| format!("cannot open the SQLite database {db_file}"))?;
        // VACUUM INTO takes an expression, so the file name is bound, not spliced into the SQL;
        // the target may exist if it is empty, as the private file just created is.
        sqlx::query("vacuum into ?")
            .bind(name)
            .execute(&mut db)
            .await
            .with_context(|| format!("cannot copy {db_file} with VACUUM INTO"))?;
        let _ = db.close().await;
        // VACUUM INTO does not sync what it wrote.
        let (partial, to) = (partial.clone(), to.to_owned());
        blocking(move || finish(&partial, &to)).await
    }
    .await;
    if done.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    done
}

async fn restore_sqlite(url: &str, options: SqliteConnectOptions, from: &Path) -> anyhow::Result<()> {
    check_sqlite_backup(from).await?;
    let target = options.get_filename().to_owned();
    // The lock `makker serve` holds: a restore under a running server would be overwritten
    // or corrupted by it.
    let lock = crate::lock_sqlite(url).context("stop makker before restoring")?;
    let from = from.to_owned();
    blocking(move || {
        let _lock = lock;
        if std::fs::symlink_metadata(&target).is_ok() {
            bail!(
                "the database {} already exists: move it and its -wal and -shm files aside first \
                 (ops/BACKUP.md); nothing is overwritten",
                target.display()
            );
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut stale = target.clone().into_os_string();
            stale.push(suffix);
            let stale = PathBuf::from(stale);
            if stale.exists() {
                std::fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
                tracing::warn!(file = %stale.display(), "removed; it belonged to the replaced database");
            }
        }
        let partial = partial_path(&target);
        let copy = || -> anyhow::Result<()> {
            let mut out = create_private(&partial)?;
            let mut input = File::open(&from).with_context(|| format!("cannot read {}", from.display()))?;
            std::io::copy(&mut input, &mut out)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            finish(&partial, &target)
        };
        let done = copy();
        if done.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        done
    })
    .await
}

/// A backup to restore must be an intact SQLite file holding Makker's tables.
async fn check_sqlite_backup(from: &Path) -> anyhow::Result<()> {
    let shown = from.display().to_string();
    // Immutable: reading the backup creates no -wal or -shm beside it.
    let mut db = SqliteConnectOptions::new()
        .filename(from)
        .read_only(true)
        .immutable(true)
        .connect()
        .await
        .with_context(|| format!("cannot open {shown} as SQLite"))?;
    let check: Result<(String,), sqlx::Error> = sqlx::query_as("pragma quick_check").fetch_one(&mut db).await;
    let makker: Result<(bool,), sqlx::Error> =
        sqlx::query_as("select exists (select 1 from sqlite_master where type = 'table' and name = 'visit')")
            .fetch_one(&mut db)
            .await;
    let _ = db.close().await;
    match (check, makker) {
        (Ok((ok,)), Ok((true,))) if ok == "ok" => Ok(()),
        (Ok((ok,)), Ok(_)) if ok == "ok" => bail!("{shown} is not a Makker database"),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e).with_context(|| format!("{shown} is not a SQLite database")),
        (Ok((problem,)), Ok(_)) => bail!("{shown} is damaged: {problem}"),
    }
}

/// `pg_restore` into a database that already has the tables would fail half-way or mix two
/// histories: restores go into an empty database.
async fn refuse_makker_tables(url: &str) -> anyhow::Result<()> {
    let mut db = sqlx::PgConnection::connect(url)
        .await
        .context("cannot connect to the PostgreSQL database to restore into")?;
    let (present,): (bool,) = sqlx::query_as(
        "select exists (select 1 from information_schema.tables \
         where table_schema = current_schema() and table_name = 'visit')",
    )
    .fetch_one(&mut db)
    .await
    .context("cannot read the PostgreSQL database's tables")?;
    let _ = db.close().await;
    if present {
        bail!(
            "the database already holds Makker's tables: restore into an empty database \
             (createdb makker_restored), then switch to it (ops/BACKUP.md)"
        );
    }
    Ok(())
}

/// Runs `pg_dump` or `pg_restore`, reporting its stderr when it fails.
///
/// Credentials reach the tool as libpq finds them: the URL's password is handed over in
/// `PGPASSWORD` (see [`without_password`]); otherwise `PGPASSFILE` or `~/.pgpass`. The URL is
/// never logged. `--no-password` is passed by the callers: a timer job must fail, not wait for
/// a prompt.
fn run_pg_tool(mut cmd: Command, tool: &str, password: Option<String>) -> anyhow::Result<()> {
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        cmd.env("PGCONNECT_TIMEOUT", "30");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{tool} is not installed or not on PATH: install the PostgreSQL client tools \
             (Debian: apt-get install postgresql-client), at least as new as the server"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot run {tool}")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{tool} failed ({}): {}", out.status, stderr.trim());
    }
    Ok(())
}

/// Takes the password out of a `postgres://` URL, so that it reaches the tool in its
/// environment (readable by its owner only) instead of on its command line (readable by every
/// user of the host in `ps`). A URL that does not parse is passed on as it is, for libpq.
fn without_password(url: &str) -> (String, Option<String>) {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_owned(), None);
    };
    let Some(password) = parsed.password().map(percent_decode) else {
        return (url.to_owned(), None);
    };
    if parsed.set_password(None).is_err() {
        return (url.to_owned(), None);
    }
    (parsed.into(), Some(password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn refuse_existing(path: &Path, what: &str) -> anyhow::Result<()> {
    // symlink_metadata: a dangling link counts as existing too.
    if std::fs::symlink_metadata(path).is_ok() {
        bail!("{what} {} already exists; nothing is overwritten", path.display());
    }
    Ok(())
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".partial");
    PathBuf::from(name)
}

/// Creates a new file only its owner can read: it will hold password hashes.
fn create_private(path: &Path) -> anyhow::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists: another backup or restore is running, or one was interrupted (then remove it)",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
        }
    })
}

/// Syncs the finished `partial` to disk and gives it its final name.
fn finish(partial: &Path, to: &Path) -> anyhow::Result<()> {
    File::open(partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    refuse_existing(to, "the file")?;
    std::fs::rename(partial, to).with_context(|| format!("cannot rename to {}", to.display()))?;
    // The rename itself reaches the disk with the directory.
    #[cfg(unix)]
    {
        let dir = to
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}

/// File copies and child processes, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("the backup task was cancelled")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded_and_the_rest_stays() {
        assert_eq!(
            without_password("postgres://makker:s%40cr%3At@db.internal:5432/makker?sslmode=require"),
            (
                "postgres://makker@db.internal:5432/makker?sslmode=require".to_owned(),
                Some("s@cr:t".to_owned())
            )
        );
        assert_eq!(
            without_password("postgres://postgres@127.0.0.1:5432/test"),
            ("postgres://postgres@127.0.0.1:5432/test".to_owned(), None)
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let err = run_pg_tool(Command::new("makker-no-such-pg_dump"), "pg_dump", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pg_dump is not installed"), "{err}");
    }

    #[test]
    fn urls_of_other_databases_are_refused_without_repeating_them() {
        let Err(err) = Backend::of("mysql://root:hunter2@db/makker") else {
            panic!("accepted");
        };
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(Backend::of("sqlite::memory:").is_err());
    }
}
