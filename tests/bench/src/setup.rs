//! The scenario around a benchmark: a scratch database seeded through the engine (much faster
//! than the admin CLI), device tokens, and a `makker serve` child process on 127.0.0.1.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use makker::admin;
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind};
use makker_domain::policy::{DEFAULT_POLICY_TOML, Policy};
use makker_domain::text::Lang;
use makker_domain::visit::VisitKind;
use makker_domain::{PersonId, PlaceId, Role, ShiftId, TeamId, VisitId};
use makker_engine::clock::ManualClock;
use makker_engine::{Engine, StartCommand};
use makker_fakes::gatewayapi::{FakeGatewayApi, TOKEN};
use makker_mobile_api::client::Client;
use makker_store::{Person, Shift};
use sqlx::{AnyConnection, Connection};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Workers per team: outreach teams are small, and a board's snapshot is one team's.
pub const TEAM_SIZE: usize = 50;
/// Concurrent seeding writers: enough to keep PostgreSQL busy, few enough for SQLite.
const WRITERS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A scratch directory (policy, SQLite file, server log), removed on drop.
pub struct Workdir {
    pub dir: PathBuf,
    pub policy: Policy,
}

impl Workdir {
    /// The default policy without grace, so a deadline fires at the planned end.
    pub fn new() -> Result<Workdir> {
        let mut text = DEFAULT_POLICY_TOML.to_owned();
        for grace in [10, 5, 3] {
            text = text.replace(&format!("grace_minutes = {grace}"), "grace_minutes = 0");
        }
        let dir = std::env::temp_dir().join(format!("makker-bench-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("policy.toml"), &text)?;
        Ok(Workdir {
            policy: Policy::from_toml(&text).context("the bench policy")?,
            dir,
        })
    }

    pub fn policy_file(&self) -> PathBuf {
        self.dir.join("policy.toml")
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh database: a SQLite file in the workdir, or `makker_bench_<uuid>` on the
/// PostgreSQL at `MAKKER_TEST_DATABASE_URL`, dropped by [`Database::drop_scratch`].
pub struct Database {
    pub url: String,
    /// The maintenance URL and the scratch database's name, on PostgreSQL.
    pg: Option<(String, String)>,
}

impl Database {
    pub async fn create(backend: Backend, work: &Workdir) -> Result<Database> {
        if backend == Backend::Sqlite {
            let url = format!("sqlite:{}", work.dir.join("bench.db").display());
            return Ok(Database { url, pg: None });
        }
        let admin_url = std::env::var("MAKKER_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("makker_bench_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("PostgreSQL at {admin_url}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await?;
        let cut = admin_url.rfind('/').context("a database URL ends in /name")?;
        Ok(Database {
            url: format!("{}/{name}", &admin_url[..cut]),
            pg: Some((admin_url, name)),
        })
    }

    /// Drops the PostgreSQL scratch database (the SQLite file goes with the workdir).
    /// `MAKKER_BENCH_KEEP_DB=1` keeps it for a look afterwards (its name is printed).
    pub async fn drop_scratch(&self) -> Result<()> {
        if let Some((admin_url, name)) = &self.pg {
            if std::env::var_os("MAKKER_BENCH_KEEP_DB").is_some() {
                eprintln!("kept the scratch database {name}");
                return Ok(());
            }
            let mut admin = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists {name} with (force)"
            )))
            .execute(&mut admin)
            .await?;
        }
        Ok(())
    }
}

/// One seeded visit: its index (which also names the worker and phone), worker and visit.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    pub index: usize,
    pub person: PersonId,
    pub visit: VisitId,
}

/// The worker `index`'s phone; [`index_of_msisdn`] reads it back from what the provider got.
pub fn phone_of(index: usize) -> String {
    format!("+4520{index:06}")
}

pub fn index_of_msisdn(msisdn: u64) -> Option<usize> {
    msisdn.checked_sub(4_520_000_000).map(|i| i as usize)
}

/// Writes people, teams, places and visits straight through the engine, at chosen times.
#[derive(Clone)]
pub struct Seeder {
    url: Arc<str>,
    engine: Engine,
    teams: Arc<Vec<(TeamId, PlaceId)>>,
}

impl Seeder {
    /// Opens (and migrates) the database with teams enough for `workers`.
    pub async fn open(url: &str, policy: &Policy, workers: usize) -> Result<Seeder> {
        let store = makker::open_store(url).await?;
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let engine = Engine::new(store, Arc::new(policy.clone()), clock);
        let mut teams = Vec::new();
        for t in 0..workers.div_ceil(TEAM_SIZE).max(1) {
            teams.push(team(&engine, t).await?);
        }
        Ok(Seeder {
            url: url.into(),
            engine,
            teams: Arc::new(teams),
        })
    }

    /// The team of worker `index`.
    pub fn team_of(&self, index: usize) -> TeamId {
        self.teams[(index / TEAM_SIZE) % self.teams.len()].0
    }

    /// Starts visits `indexes`, each by its own new worker on shift, at `at(index)` for
    /// `planned_minutes`; with `phones`, each worker gets an SMS number.
    pub async fn visits<F>(
        &self,
        indexes: std::ops::Range<usize>,
        planned_minutes: u32,
        phones: bool,
        at: F,
    ) -> Result<Vec<Seeded>>
    where
        F: Fn(usize) -> DateTime<Utc> + Clone + Send + Sync + 'static,
    {
        let mut writers = JoinSet::new();
        let seeded = Arc::new(AtomicUsize::new(0));
        for w in 0..WRITERS {
            let (seeder, at, indexes) = (self.clone(), at.clone(), indexes.clone());
            let seeded = Arc::clone(&seeded);
            writers.spawn(async move {
                let clock = Arc::new(ManualClock::new(Utc::now()));
                let engine = Engine {
                    clock: clock.clone(),
                    ..seeder.engine.clone()
                };
                let mut done = Vec::new();
                for index in indexes.skip(w).step_by(WRITERS) {
                    clock.set(at(index));
                    done.push(seeder.visit(&engine, index, planned_minutes, phones).await?);
                    // Statistics as the tables grow (autovacuum's job, which may be off or a
                    // minute behind): planned on the empty tables, a timer's move scanned the
                    // whole table, and 100,000 visits took over 20 minutes instead of two.
                    let n = seeded.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(1_000) && (n / 1_000).is_power_of_two() {
                        Seeder::analyze(&seeder.url).await?;
                    }
                }
                anyhow::Ok(done)
            });
        }
        let mut all = Vec::new();
        while let Some(done) = writers.join_next().await {
            all.extend(done??);
        }
        all.sort_by_key(|s| s.index);
        Ok(all)
    }

    async fn visit(
        &self,
        engine: &Engine,
        index: usize,
        planned_minutes: u32,
        phone: bool,
    ) -> Result<Seeded> {
        let (team, place) = self.teams[(index / TEAM_SIZE) % self.teams.len()];
        let person = person(
            engine,
            &format!("w{index}"),
            Role::Worker,
            team,
            phone.then(|| phone_of(index)),
        )
        .await?;
        let cmd = StartCommand::lone(VisitKind::DropIn, place, planned_minutes, &engine.policy);
        let visit = engine
            .start_visit(&person, cmd, engine.stamp(None, None)?)
            .await?;
        Ok(Seeded {
            index,
            person: person.id,
            visit: visit.value.id,
        })
    }

    /// A supervisor on `team`, for the live boards.
    pub async fn supervisor(&self, name: &str, team: TeamId) -> Result<PersonId> {
        Ok(person(&self.engine, name, Role::Supervisor, team, None).await?.id)
    }

    /// A device token for each person, as a phone or board gets at sign-in.
    pub async fn tokens(&self, people: &[PersonId]) -> Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(people.len());
        for p in people {
            tokens.push(self.engine.issue_token(*p, "bench").await?.0);
        }
        Ok(tokens)
    }

    /// The highest deadline id so far, to tell later deadlines apart.
    pub async fn last_deadline(url: &str) -> Result<i64> {
        let mut db = connect(url).await?;
        count(&mut db, "select coalesce(max(deadline_id), 0) from deadline").await
    }

    /// Gathers the planner's statistics of the tables seeding filled, as autovacuum would
    /// within a minute or so: a server that has run for hours has them, a database filled
    /// seconds ago has not, and without them PostgreSQL scans whole tables to look up a
    /// hundred ids (5 ms instead of 0.6 ms at 20,000 visits). Tables still empty are left
    /// unanalyzed, as autovacuum leaves them: statistics that say "empty" would make every
    /// foreign-key check on them scan the table once it fills.
    pub async fn analyze(url: &str) -> Result<()> {
        let mut db = connect(url).await?;
        // SQLite's ANALYZE takes one table or none: all of them, then.
        let sql = if url.starts_with("sqlite") {
            "analyze"
        } else {
            "analyze person, team_member, shift, place, visit, visit_participant, visit_event, deadline"
        };
        sqlx::query(sql).execute(&mut db).await?;
        Ok(())
    }

    /// Cancels the reminders armed after `after`: their SMS would share the escalation's
    /// second and blur what is measured.
    pub async fn cancel_reminders_after(url: &str, after: i64) -> Result<()> {
        let mut db = connect(url).await?;
        // An integer we read ourselves: no injection, and no placeholder dialects.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "update deadline set state = 'cancelled' where kind = 'reminder' and state = 'armed' and deadline_id > {after}"
        )))
        .execute(&mut db)
        .await?;
        Ok(())
    }
}

async fn team(engine: &Engine, t: usize) -> Result<(TeamId, PlaceId)> {
    let team = admin::create_team(engine, &format!("Team {t}"), "Europe/Copenhagen").await?;
    let place = Place {
        id: PlaceId(Uuid::now_v7()),
        team: team.id,
        name: format!("Værested {t}"),
        kind: PlaceKind::DropIn,
        shape: Shape::Circle {
            center: Position::parse(56.1478, 10.2045)?,
            radius_m: 40.0,
        },
    };
    engine.store.create_place(&place, engine.now()).await?;
    Ok((team.id, place.id))
}

/// A person on shift in `team`.
pub async fn person(
    engine: &Engine,
    username: &str,
    role: Role,
    team: TeamId,
    phone: Option<String>,
) -> Result<Person> {
    let person = Person {
        id: PersonId(Uuid::now_v7()),
        username: username.into(),
        display_name: username.into(),
        role,
        phone,
        lang: Lang::Da,
        teams: vec![team],
        password_hash: None,
        pin_hash: None,
        duress_pin_hash: None,
        created_at: engine.now(),
    };
    engine.store.create_person(&person).await?;
    let shift = Shift {
        id: ShiftId(Uuid::now_v7()),
        person: person.id,
        team,
        started_at: engine.now(),
        ended_at: None,
    };
    engine.store.start_shift(&shift).await?;
    Ok(person)
}

/// A connection for polling counts, on either backend.
pub async fn connect(url: &str) -> Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    Ok(AnyConnection::connect(url).await?)
}

pub async fn count(db: &mut AnyConnection, sql: &'static str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(db).await?;
    Ok(n)
}

/// The `makker` binary: `--makker`, else the one next to this executable.
pub fn makker_binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench executable has a directory")?
            .join("makker"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it (cargo build --release -p makker) or pass --makker",
            path.display()
        );
    }
    Ok(path)
}

/// A `makker serve` child process, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub spawned: Instant,
}

impl Server {
    /// Starts `makker serve` on a free local port, SMS to `sms`, its log in the workdir.
    pub fn spawn(makker: &Path, url: &str, work: &Workdir, sms: &FakeGatewayApi) -> Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(work.dir.join("server.log"))?;
        let child = Command::new(makker)
            .arg("serve")
            .env_remove("MAKKER_CONFIG")
            .env_remove("FAILPOINTS")
            .env("MAKKER_DATABASE_URL", url)
            .env("MAKKER_LISTEN", format!("127.0.0.1:{port}"))
            .env("MAKKER_POLICY", work.policy_file())
            .env("MAKKER_LOG", "warn")
            .env("MAKKER_SMS_PRIMARY", "gatewayapi")
            .env("MAKKER_GATEWAYAPI_TOKEN", TOKEN)
            .env("MAKKER_GATEWAYAPI_BASE_URL", &sms.base_url)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", makker.display()))?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            spawned: Instant::now(),
        })
    }

    /// Polls `/readyz` until it answers 200; the time since spawn.
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<Duration> {
        let client = Client::new(&self.base);
        loop {
            let ready = client.request(reqwest::Method::GET, "/readyz").send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(self.spawned.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("makker serve exited ({status}); see its log");
            }
            if self.spawned.elapsed() > limit {
                bail!("makker serve was not ready within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Resident and peak resident memory in MiB, from `/proc/<pid>/status`.
    pub fn memory_mib(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} in /proc/<pid>/status"))?;
            let kib: f64 = line.split_whitespace().nth(1).context("a number")?.parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// SIGTERM and wait for the graceful stop.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
