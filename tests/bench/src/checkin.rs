//! Benchmark 1: check-in throughput and latency with many phones, each with an active visit.

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use makker_fakes::gatewayapi::FakeGatewayApi;

use crate::Ctx;
use crate::load::{self, Phone};
use crate::machine::CpuSample;
use crate::report::{Report, Target};
use crate::setup::{Backend, Database, Seeder, Server, Workdir};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Simulated phones, each with its own token and active visit.
    #[arg(long, default_value_t = 1_000)]
    pub phones: usize,
    /// How long they check in (after a 2 s warm-up).
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Check-ins per second from all phones together; without it each phone sends back to
    /// back, which finds the server's ceiling.
    #[arg(long)]
    pub rate: Option<f64>,
}

pub async fn run(ctx: &Ctx, args: &Args, report: &mut Report) -> Result<()> {
    let work = Workdir::new()?;
    let db = Database::create(ctx.backend, &work).await?;
    let measured = measure(ctx, args, &work, &db, report).await;
    db.drop_scratch().await?;
    measured
}

/// `count` active visits seeded into the database at `url`; the first `with_tokens` of their
/// workers get a token and become phones.
pub async fn phones(url: &str, work: &Workdir, count: usize, with_tokens: usize) -> Result<Vec<Phone>> {
    let seeder = Seeder::open(url, &work.policy, count).await?;
    let now = Utc::now();
    let mut seeded = seeder.visits(0..count, 240, false, move |_| now).await?;
    Seeder::analyze(url).await?;
    seeded.truncate(with_tokens);
    let people: Vec<_> = seeded.iter().map(|s| s.person).collect();
    let tokens = seeder.tokens(&people).await?;
    Ok(seeded
        .iter()
        .zip(tokens)
        .map(|(s, token)| Phone {
            token,
            visit: s.visit.0,
        })
        .collect())
}

async fn measure(ctx: &Ctx, args: &Args, work: &Workdir, db: &Database, report: &mut Report) -> Result<()> {
    eprintln!("check-in: seeding {} phones on {:?}", args.phones, ctx.backend);
    let phones = phones(&db.url, work, args.phones, args.phones).await?;
    let fake = FakeGatewayApi::start().await;
    let mut server = Server::spawn(&ctx.makker, &db.url, work, &fake)?;
    server.wait_ready(Duration::from_secs(60)).await?;
    load::check_ins(
        &server.base,
        &phones,
        Duration::from_secs(2),
        args.rate,
        ctx.keyed,
    )
    .await;
    let cpu = CpuSample::now();
    let mut outcome = load::check_ins(
        &server.base,
        &phones,
        Duration::from_secs(args.seconds),
        args.rate,
        ctx.keyed,
    )
    .await;
    let busy = cpu.cores_until(&CpuSample::now());
    server.stop();
    if let Some(e) = &outcome.first_error {
        eprintln!("  first error: {e}");
    }
    let pg = ctx.backend == Backend::Postgres;
    let case = match args.rate {
        Some(r) => format!("{:?}, {} phones, {r}/s offered", ctx.backend, args.phones),
        None => format!("{:?}, {} phones, back to back", ctx.backend, args.phones),
    };
    let per_second = outcome.per_second();
    report.add_with(
        "check-in",
        &case,
        "acknowledged",
        per_second,
        "/s",
        pg.then_some(Target::AtLeast(5000.0)),
    );
    report.latencies(
        "check-in",
        &case,
        "latency",
        &mut outcome.latencies,
        pg.then_some(20.0),
    );
    report.add("check-in", &case, "errors", outcome.errors as f64, "");
    for (name, cores) in busy {
        report.add("check-in", &case, &format!("CPU {name}"), cores, "cores");
    }
    Ok(())
}
