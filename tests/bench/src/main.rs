//! `makker-bench`: issue 7's benchmarks. Each seeds a fresh database through the engine,
//! starts `makker serve` as a child process on 127.0.0.1 with SMS to a local fake provider,
//! drives it over HTTP as phones and boards do, stops it, and reports a table and JSON.
//! Not part of the test run: the figures only mean something from a release build.

mod checkin;
mod coverage;
mod escalation;
mod fanout;
mod load;
mod machine;
mod phone;
mod report;
mod resources;
mod setup;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::report::Report;
use crate::setup::Backend;

/// jemalloc, as the server: the bench's phones and fake provider run on the same two cores
/// as the server and its database, and under glibc's malloc `malloc`/`free` were about a
/// sixth of the bench's own CPU (`perf`), time the server under test could not use.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks of a running makker serve (issue 7); see tests/bench/README.md")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
    /// The database the server runs on. PostgreSQL: a scratch database on the server at
    /// MAKKER_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
    #[arg(long, global = true, value_enum, default_value = "sqlite")]
    database: Backend,
    /// The `makker` binary; by default the one next to this executable.
    #[arg(long, global = true)]
    makker: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Phones check in without an `Idempotency-Key` (the app always sends one; before session
    /// 23 the bench sent none, so this compares with earlier figures).
    #[arg(long, global = true)]
    without_idempotency_key: bool,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// 1. Check-in throughput and latency with many phones.
    CheckIn(checkin::Args),
    /// 2 and 5. Escalation latency, due time → SMS at the provider.
    Escalation(escalation::Args),
    /// 3. Live fan-out to many SSE boards.
    Fanout(fanout::Args),
    /// 4. Resident memory, start-up and recovery time.
    Resources(resources::Args),
    /// Issue 4: a coverage report over a year of a large municipality.
    Coverage(coverage::Args),
    /// Benchmarks 1-4 at their (small) default sizes.
    All,
}

/// What every benchmark needs: the server binary and the backend.
pub struct Ctx {
    pub makker: PathBuf,
    pub backend: Backend,
    /// Each check-in carries an idempotency key of its own, as the app's offline queue sends.
    pub keyed: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let ctx = Ctx {
        makker: setup::makker_binary(cli.makker.as_deref())?,
        backend: cli.database,
        keyed: !cli.without_idempotency_key,
    };
    let mut report = Report::default();
    let ran = run(&ctx, &cli.bench, &mut report).await;
    print!("{}", report.table());
    if let Some(path) = &cli.json {
        let args: Vec<String> = std::env::args().collect();
        let text = serde_json::to_string_pretty(&report.json(&args))?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    ran
}

async fn run(ctx: &Ctx, bench: &Bench, report: &mut Report) -> Result<()> {
    match bench {
        Bench::CheckIn(args) => checkin::run(ctx, args, report).await,
        Bench::Escalation(args) => escalation::run(ctx, args, report).await,
        Bench::Fanout(args) => fanout::run(ctx, args, report).await,
        Bench::Resources(args) => resources::run(ctx, args, report).await,
        Bench::Coverage(args) => coverage::run(ctx, args, report).await,
        Bench::All => {
            checkin::run(ctx, &parse_args("check-in"), report).await?;
            escalation::run(ctx, &parse_args("escalation"), report).await?;
            fanout::run(ctx, &parse_args("fanout"), report).await?;
            resources::run(ctx, &parse_args("resources"), report).await
        }
    }
}

/// A benchmark's default arguments, as clap would give them.
fn parse_args<T: clap::FromArgMatches + clap::Args>(name: &'static str) -> T {
    let matches = T::augment_args(clap::Command::new(name)).get_matches_from([name]);
    T::from_arg_matches(&matches).expect("the defaults parse")
}
