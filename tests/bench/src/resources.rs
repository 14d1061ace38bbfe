//! Benchmark 4: resident memory and start-up time at many active visits, and recovery: a
//! server started onto thousands of overdue deadlines, until every one has its alarm.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chrono::{TimeDelta, Utc};
use makker_fakes::gatewayapi::FakeGatewayApi;

use crate::report::{Report, Target};
use crate::setup::{Database, Seeder, Server, Workdir, connect, count};
use crate::{Ctx, checkin, load};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Active visits while memory and start-up are measured.
    #[arg(long, default_value_t = 1_000)]
    pub visits: usize,
    /// Overdue deadlines (one per visit) waiting when the server starts, for recovery.
    #[arg(long, default_value_t = 1_000)]
    pub overdue: usize,
}

pub async fn run(ctx: &Ctx, args: &Args, report: &mut Report) -> Result<()> {
    for step in [Step::Memory, Step::Recovery] {
        let work = Workdir::new()?;
        let db = Database::create(ctx.backend, &work).await?;
        let measured = match step {
            Step::Memory => memory(ctx, args, &work, &db, report).await,
            Step::Recovery => recovery(ctx, args, &work, &db, report).await,
        };
        db.drop_scratch().await?;
        measured?;
    }
    Ok(())
}

enum Step {
    Memory,
    Recovery,
}

const SERVING_PHONES: usize = 1_000;

async fn memory(ctx: &Ctx, args: &Args, work: &Workdir, db: &Database, report: &mut Report) -> Result<()> {
    eprintln!("resources: seeding {} active visits", args.visits);
    let phones = checkin::phones(&db.url, work, args.visits, SERVING_PHONES).await?;
    let fake = FakeGatewayApi::start().await;
    let mut server = Server::spawn(&ctx.makker, &db.url, work, &fake)?;
    let startup = server.wait_ready(Duration::from_secs(120)).await?;
    let case = format!("{:?}, {} active visits", ctx.backend, args.visits);
    report.add(
        "resources",
        &case,
        "start-up (spawn → ready)",
        startup.as_secs_f64() * 1000.0,
        "ms",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_target = (args.visits >= 100_000).then_some(Target::Below(100.0));
    report.add_with(
        "resources",
        &case,
        "resident, idle",
        server.memory_mib()?.0,
        "MiB",
        rss_target,
    );
    load::check_ins(&server.base, &phones, Duration::from_secs(5), None, ctx.keyed).await;
    let (rss, peak) = server.memory_mib()?;
    report.add_with(
        "resources",
        &case,
        "resident, after 5 s of check-ins",
        rss,
        "MiB",
        rss_target,
    );
    report.add("resources", &case, "peak resident", peak, "MiB");
    server.stop();
    Ok(())
}

const WITHOUT_ALARM: &str =
    "select count(*) from visit v where not exists (select 1 from alarm a where a.visit_id = v.visit_id)";
const SMS_PENDING: &str = "select count(*) from outbox where channel = 'sms' and state = 'pending'";
const SMS_ALL: &str = "select count(*) from outbox where channel = 'sms'";

async fn recovery(ctx: &Ctx, args: &Args, work: &Workdir, db: &Database, report: &mut Report) -> Result<()> {
    eprintln!("resources: seeding {} overdue visits", args.overdue);
    let seeder = Seeder::open(&db.url, &work.policy, args.overdue).await?;
    // One-minute visits begun two minutes ago: reminder and overdue deadline both past.
    let begun = Utc::now() - TimeDelta::minutes(2);
    seeder.visits(0..args.overdue, 1, true, move |_| begun).await?;
    Seeder::analyze(&db.url).await?;
    let fake = FakeGatewayApi::start().await;
    let mut server = Server::spawn(&ctx.makker, &db.url, work, &fake)?;
    let mut poll = connect(&db.url).await?;
    let case = format!("{:?}, {} overdue deadlines", ctx.backend, args.overdue);
    let started = server.spawned;
    let ready = server.wait_ready(Duration::from_secs(120)).await?;
    report.add("resources", &case, "start-up (spawn → ready)", ms(ready), "ms");
    let fired = poll_until(&mut poll, WITHOUT_ALARM, started, Duration::from_secs(900)).await?;
    report.add(
        "resources",
        &case,
        "recovery (spawn → every alarm)",
        ms(fired),
        "ms",
    );
    // Sending is the dispatcher's pace, not recovery's: waited for a bounded time only.
    match poll_until(&mut poll, SMS_PENDING, started, fired + Duration::from_secs(60)).await {
        Ok(sent) => report.add("resources", &case, "spawn → every SMS sent", ms(sent), "ms"),
        Err(_) => report.add(
            "resources",
            &case,
            "SMS sent within 60 s of the last alarm",
            fake.received().len() as f64,
            "",
        ),
    }
    report.add(
        "resources",
        &case,
        "SMS queued",
        count(&mut poll, SMS_ALL).await? as f64,
        "",
    );
    server.stop();
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Polls `sql` every 20 ms until it counts zero; the time since `since`, or an error when
/// `limit` has passed since it.
async fn poll_until(
    db: &mut sqlx::AnyConnection,
    sql: &'static str,
    since: Instant,
    limit: Duration,
) -> Result<Duration> {
    while count(db, sql).await? > 0 {
        if since.elapsed() > limit {
            bail!("still not done after {limit:?}: {sql}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(since.elapsed())
}
