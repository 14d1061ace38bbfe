//! Benchmark 3: live fan-out. Many supervisor boards hold `GET /api/v1/live` open; a phone
//! checks in; how long until the change reaches every board.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use makker_fakes::gatewayapi::FakeGatewayApi;
use makker_mobile_api::EventRequest;
use makker_mobile_api::client::Client;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Ctx;
use crate::report::Report;
use crate::setup::{Database, Seeder, Server, Workdir};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Boards (SSE clients), each with its own device token.
    #[arg(long, default_value_t = 1_000)]
    pub boards: usize,
    /// Active visits in the boards' team (the snapshot's size).
    #[arg(long, default_value_t = 40)]
    pub visits: usize,
    /// Check-ins the phone sends, one after another.
    #[arg(long, default_value_t = 20)]
    pub check_ins: usize,
    /// Pause between check-ins, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
}

pub async fn run(ctx: &Ctx, args: &Args, report: &mut Report) -> Result<()> {
    let work = Workdir::new()?;
    let db = Database::create(ctx.backend, &work).await?;
    let measured = measure(ctx, args, &work, &db, report).await;
    db.drop_scratch().await?;
    measured
}

async fn measure(ctx: &Ctx, args: &Args, work: &Workdir, db: &Database, report: &mut Report) -> Result<()> {
    eprintln!(
        "fan-out: seeding {} visits and {} board tokens",
        args.visits, args.boards
    );
    let visits = args.visits.clamp(1, crate::setup::TEAM_SIZE);
    let seeder = Seeder::open(&db.url, &work.policy, visits).await?;
    let now = Utc::now();
    let seeded = seeder.visits(0..visits, 240, false, move |_| now).await?;
    Seeder::analyze(&db.url).await?;
    let phone = seeder.tokens(&[seeded[0].person]).await?.remove(0);
    let supervisor = seeder.supervisor("s0", seeder.team_of(0)).await?;
    let boards = seeder.tokens(&vec![supervisor; args.boards]).await?;
    let fake = FakeGatewayApi::start().await;
    let mut server = Server::spawn(&ctx.makker, &db.url, work, &fake)?;
    server.wait_ready(Duration::from_secs(60)).await?;

    let (stop, stopped) = watch::channel(false);
    let ready = Arc::new(AtomicUsize::new(0));
    let connecting = Instant::now();
    let mut tasks = JoinSet::new();
    let client = Client::new(&server.base);
    for token in boards {
        let (board, stopped, ready) = (client.with_token(token), stopped.clone(), ready.clone());
        tasks.spawn(async move { watch_board(board, stopped, ready).await });
    }
    wait_connected(&ready, args.boards, &mut tasks).await?;
    let case = format!("{:?}, {} boards", ctx.backend, args.boards);
    report.add(
        "fan-out",
        &case,
        "all boards had their snapshot",
        ms(connecting.elapsed()),
        "ms",
    );

    let responses = drive(&client.with_token(phone), seeded[0].visit.0, args).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send_replace(true);
    let (mut latencies, mut missing) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let arrivals = done??;
        missing += responses.len().saturating_sub(arrivals.len());
        latencies.extend(
            responses
                .iter()
                .zip(&arrivals)
                .map(|(sent, got)| got.saturating_duration_since(*sent)),
        );
    }
    server.stop();
    report.add("fan-out", &case, "events missing", missing as f64, "");
    report.latencies("fan-out", &case, "check-in → board", &mut latencies, Some(100.0));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits until every board has its snapshot; a board that failed ends the wait.
async fn wait_connected(
    ready: &AtomicUsize,
    boards: usize,
    tasks: &mut JoinSet<Result<Vec<Instant>>>,
) -> Result<()> {
    let start = Instant::now();
    while ready.load(Ordering::Relaxed) < boards {
        if let Some(Ok(Err(e))) = tasks.try_join_next() {
            return Err(e.context("a board could not connect"));
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {boards} boards connected",
                ready.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The phone's check-ins, one every interval; when each answer came.
async fn drive(phone: &Client, visit: uuid::Uuid, args: &Args) -> Result<Vec<Instant>> {
    let request = EventRequest {
        client_time: None,
        position: None,
    };
    let mut responses = Vec::with_capacity(args.check_ins);
    for _ in 0..args.check_ins {
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        phone
            .check_in(visit, &request)
            .await
            .context("the phone's check-in")?;
        responses.push(Instant::now());
    }
    Ok(responses)
}

/// One board: opens the stream, counts itself ready at the snapshot, then notes when each
/// `visit` event arrives, until `stop`.
async fn watch_board(
    board: Client,
    mut stop: watch::Receiver<bool>,
    ready: Arc<AtomicUsize>,
) -> Result<Vec<Instant>> {
    let mut response = board
        .request(reqwest::Method::GET, "/api/v1/live")
        .send()
        .await?
        .error_for_status()?;
    let mut parser = Events::default();
    let mut arrivals = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk?,
            _ = stop.changed() => return Ok(arrivals),
        };
        let Some(chunk) = chunk else {
            bail!("the server ended a live stream")
        };
        let now = Instant::now();
        for event in parser.feed(&chunk) {
            match event.as_str() {
                "snapshot" => {
                    ready.fetch_add(1, Ordering::Relaxed);
                }
                "visit" => arrivals.push(now),
                _ => {}
            }
        }
    }
}

/// A minimal `text/event-stream` reader: the names of the events completed so far.
#[derive(Default)]
struct Events {
    buffer: String,
    name: Option<String>,
}

impl Events {
    fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut done = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                done.extend(self.name.take());
            } else if let Some(name) = line.strip_prefix("event:") {
                self.name = Some(name.trim().to_owned());
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::Events;

    #[test]
    fn events_split_across_chunks_are_named_when_complete() {
        let mut p = Events::default();
        assert!(p.feed(b"id: 1\nevent: snap").is_empty());
        assert_eq!(
            p.feed(b"shot\ndata: {}\n\nid: 2\nevent: visit\ndata: {}\n\n"),
            ["snapshot", "visit"]
        );
        assert!(p.feed(b": keep-alive\n\n").is_empty());
    }
}
