//! Benchmarks 2 and 5: escalation latency, from a deadline's due time to its SMS reaching the
//! (fake) provider, among many active visits, optionally while phones keep checking in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chrono::{DateTime, TimeDelta, Utc};
use makker_fakes::gatewayapi::FakeGatewayApi;
use serde_json::Value;

use crate::Ctx;
use crate::load::{self, Phone};
use crate::report::{Report, Target};
use crate::setup::{Backend, Database, Seeded, Seeder, Server, Workdir, index_of_msisdn};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Active visits in all (the deadline table's size).
    #[arg(long, default_value_t = 1_000)]
    pub visits: usize,
    /// How many of them fall due during the measurement (at most `--visits`).
    #[arg(long, default_value_t = 200)]
    pub due: usize,
    /// Seconds over which those fall due, evenly; 1 puts them all in the same second.
    #[arg(long, default_value_t = 5.0)]
    pub spread: f64,
    /// The fake provider answers each SMS this many milliseconds after it arrived.
    #[arg(long, default_value_t = 0)]
    pub provider_delay_ms: u64,
    /// Check-ins per second served meanwhile (benchmark 5); 0 for none.
    #[arg(long, default_value_t = 0.0)]
    pub check_in_rate: f64,
    /// Phones sending those check-ins (taken from the visits not falling due).
    #[arg(long, default_value_t = 1_000)]
    pub check_in_phones: usize,
    /// Seconds from the end of the quiet visits' seeding to the first due time; estimated
    /// from that seeding's pace when not given.
    #[arg(long)]
    pub lead_seconds: Option<f64>,
}

pub async fn run(ctx: &Ctx, args: &Args, report: &mut Report) -> Result<()> {
    if args.due > args.visits || args.due == 0 {
        bail!("--due must be between 1 and --visits");
    }
    let work = Workdir::new()?;
    let db = Database::create(ctx.backend, &work).await?;
    let measured = measure(ctx, args, &work, &db, report).await;
    db.drop_scratch().await?;
    measured
}

/// When each measured visit's overdue deadline falls due.
#[derive(Clone, Copy)]
struct Plan {
    first: DateTime<Utc>,
    spread: f64,
    due: usize,
}

impl Plan {
    fn due_at(&self, index: usize) -> DateTime<Utc> {
        let offset = self.spread * index as f64 / self.due as f64;
        self.first + TimeDelta::microseconds((offset * 1e6) as i64)
    }
}

async fn measure(ctx: &Ctx, args: &Args, work: &Workdir, db: &Database, report: &mut Report) -> Result<()> {
    let seeder = Seeder::open(&db.url, &work.policy, args.visits).await?;
    let started = Instant::now();
    let phones = seed_background(&seeder, args).await?;
    let quiet = args.visits - args.due;
    // Seeding's pace here, or a cautious guess, sets how far ahead the deadlines fall due.
    let per_visit = if quiet >= 500 {
        started.elapsed().as_secs_f64() / quiet as f64
    } else {
        0.03
    };
    let lead = args
        .lead_seconds
        .unwrap_or(10.0 + 1.3 * per_visit * args.due as f64);
    let plan = seed_due(&seeder, &db.url, args, lead).await?;
    let fake = FakeGatewayApi::start().await;
    fake.set_delay(Duration::from_millis(args.provider_delay_ms));
    let mut server = Server::spawn(&ctx.makker, &db.url, work, &fake)?;
    server.wait_ready(Duration::from_secs(120)).await?;
    if Utc::now() >= plan.first {
        bail!("the server was ready only after the first deadline; pass a larger --lead-seconds");
    }
    eprintln!(
        "  first deadline in {:.1} s",
        (plan.first - Utc::now()).as_seconds_f64()
    );
    let until_end = (plan.due_at(args.due) - Utc::now()).to_std()? + Duration::from_secs(3);
    let serving = (args.check_in_rate > 0.0).then(|| {
        let (base, rate, keyed) = (server.base.clone(), args.check_in_rate, ctx.keyed);
        tokio::spawn(async move { load::check_ins(&base, &phones, until_end, Some(rate), keyed).await })
    });
    wait_for_all(&fake, args.due, until_end + Duration::from_secs(120)).await;
    let load = match serving {
        Some(task) => Some(task.await?),
        None => None,
    };
    server.stop();
    let case = case(ctx.backend, args);
    let (mut latencies, early) = latencies(&fake.received_at(), &plan);
    let handed = latencies.len();
    report.add("escalation", &case, "SMS handed to provider", handed as f64, "");
    report.add("escalation", &case, "SMS missing", (args.due - handed) as f64, "");
    if early > 0 {
        report.add("escalation", &case, "SMS before their due time", early as f64, "");
    }
    // 10,000 due in one second have a target of their own (all handed within 1 s), not the
    // p99 of deadlines falling due one by one.
    let burst = args.spread <= 1.0 && args.due >= 10_000;
    let p99_target = match (burst, args.check_in_rate > 0.0) {
        (true, _) => None,
        (false, true) => Some(100.0),
        (false, false) => Some(50.0),
    };
    report.latencies("escalation", &case, "due → provider", &mut latencies, p99_target);
    if burst {
        let max = crate::report::percentile(&mut latencies, 1.0).as_secs_f64() * 1000.0;
        report.add_with(
            "escalation",
            &case,
            "all handed within",
            max,
            "ms",
            Some(Target::Below(1000.0)),
        );
    }
    if let Some(mut outcome) = load {
        report.add(
            "escalation",
            &case,
            "check-ins acknowledged",
            outcome.per_second(),
            "/s",
        );
        report.latencies(
            "escalation",
            &case,
            "check-in latency",
            &mut outcome.latencies,
            None,
        );
        report.add("escalation", &case, "check-in errors", outcome.errors as f64, "");
    }
    Ok(())
}

fn case(backend: Backend, args: &Args) -> String {
    let mut case = format!(
        "{backend:?}, {} active, {} due over {} s",
        args.visits, args.due, args.spread
    );
    if args.provider_delay_ms > 0 {
        case += &format!(", provider {} ms", args.provider_delay_ms);
    }
    if args.check_in_rate > 0.0 {
        case += &format!(", {} check-ins/s", args.check_in_rate);
    }
    case
}

/// The visits that stay quiet (planned for hours), and tokens for the phones among them
/// that check in meanwhile.
async fn seed_background(seeder: &Seeder, args: &Args) -> Result<Vec<Phone>> {
    let started = Instant::now();
    let now = Utc::now();
    eprintln!("escalation: seeding {} quiet visits", args.visits - args.due);
    let quiet: Vec<Seeded> = seeder
        .visits(args.due..args.visits, 240, false, move |_| now)
        .await?;
    eprintln!("  {:.1} s", started.elapsed().as_secs_f64());
    if args.check_in_rate <= 0.0 {
        return Ok(vec![]);
    }
    let chosen = &quiet[..args.check_in_phones.min(quiet.len())];
    let people: Vec<_> = chosen.iter().map(|s| s.person).collect();
    let tokens = seeder.tokens(&people).await?;
    Ok(chosen
        .iter()
        .zip(tokens)
        .map(|(s, token)| Phone {
            token,
            visit: s.visit.0,
        })
        .collect())
}

/// The visits whose overdue deadlines fall due after the lead, each worker with a phone;
/// their reminders (already due) are cancelled so that only alarms reach the provider.
async fn seed_due(seeder: &Seeder, url: &str, args: &Args, lead: f64) -> Result<Plan> {
    let plan = Plan {
        first: Utc::now() + TimeDelta::milliseconds((lead * 1000.0) as i64),
        spread: args.spread,
        due: args.due,
    };
    eprintln!("  seeding {} visits falling due in {lead:.0} s", args.due);
    let mark = Seeder::last_deadline(url).await?;
    let at = move |i: usize| plan.due_at(i) - TimeDelta::minutes(1);
    seeder.visits(0..args.due, 1, true, at).await?;
    Seeder::cancel_reminders_after(url, mark).await?;
    Seeder::analyze(url).await?;
    Ok(plan)
}

/// Waits until `expected` messages reached the provider, or `limit` passed.
async fn wait_for_all(fake: &FakeGatewayApi, expected: usize, limit: Duration) {
    let start = Instant::now();
    while fake.received().len() < expected && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each measured visit's first SMS: its arrival minus its deadline's due time, and how many
/// arrived before it (which would be a bug).
fn latencies(received: &[(std::time::SystemTime, Value)], plan: &Plan) -> (Vec<Duration>, usize) {
    let mut first: HashMap<usize, DateTime<Utc>> = HashMap::new();
    for (at, body) in received {
        let index = body["recipients"][0]["msisdn"].as_u64().and_then(index_of_msisdn);
        if let Some(i) = index.filter(|i| *i < plan.due) {
            let at = DateTime::<Utc>::from(*at);
            first.entry(i).and_modify(|t| *t = (*t).min(at)).or_insert(at);
        }
    }
    let mut early = 0;
    let mut out = Vec::with_capacity(first.len());
    for (i, at) in first {
        match (at - plan.due_at(i)).to_std() {
            Ok(d) => out.push(d),
            Err(_) => {
                early += 1;
                out.push(Duration::ZERO);
            }
        }
    }
    (out, early)
}
