//! Issue 4's benchmark: one coverage report over a year of a large municipality — by default
//! 1,000,000 visits, 500 planned stops (100 routes of 5), 1,000 places, 16 districts, 20,000
//! alarms and 2,000 incidents in one team, the worst case for a report. The plan goes in
//! through the store; the year of history in bulk SQL (set-based inserts; going through the
//! engine one visit at a time would take hours). Then `makker serve` answers
//! `GET /api/v1/teams/{id}/coverage` for the whole year, a few times: wall time per report,
//! answer size, and the server's resident memory before and at its peak.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration as Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use makker_domain::area::{Area, parse_areas};
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind};
use makker_domain::route::{Route, Stop};
use makker_domain::{AreaId, PlaceId, Role, RouteId, TeamId};
use makker_engine::Engine;
use makker_engine::clock::ManualClock;
use makker_fakes::gatewayapi::FakeGatewayApi;
use makker_mobile_api::client::Client;
use makker_store::Team;
use sqlx::Connection;
use uuid::Uuid;

use crate::Ctx;
use crate::report::Report;
use crate::setup::{Backend, Database, Server, Workdir, person};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Visits in the year.
    #[arg(long, default_value_t = 1_000_000)]
    visits: u64,
    /// Planned stops (routes of 5 stops, each at its own place).
    #[arg(long, default_value_t = 500)]
    stops: usize,
    /// Reports to time.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const DAYS: i64 = 364;
const PLACES: usize = 1_000;
const WORKERS: usize = 200;

/// The year: 52 whole weeks ending on the Sunday before "now".
fn year() -> (NaiveDate, NaiveDate, DateTime<Utc>) {
    let from = NaiveDate::from_ymd_opt(2025, 11, 24).expect("BUG: a valid date");
    let to = from + Days::days(DAYS - 1);
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    (from, to, now)
}

pub async fn run(ctx: &Ctx, args: &Args, report: &mut Report) -> Result<()> {
    let work = Workdir::new()?;
    let db = Database::create(ctx.backend, &work).await?;
    let result = measure(ctx, args, &work, &db, report).await;
    db.drop_scratch().await?;
    result
}

async fn measure(ctx: &Ctx, args: &Args, work: &Workdir, db: &Database, report: &mut Report) -> Result<()> {
    let (from, to, now) = year();
    let store = makker::open_store(&db.url).await?;
    let engine = Engine::new(
        store,
        std::sync::Arc::new(work.policy.clone()),
        std::sync::Arc::new(ManualClock::new(now)),
    );
    let seeding = Instant::now();
    let plan = plan(&engine, args.stops, from).await?;
    eprintln!("coverage: the plan is in; seeding {} visits …", args.visits);
    bulk(&db.url, ctx.backend, &plan, args.visits, from).await?;
    let seeded = seeding.elapsed();
    eprintln!("coverage: seeded in {:.1} s", seeded.as_secs_f64());
    let token = engine.issue_token(plan.manager, "bench").await?.0;

    let fake = FakeGatewayApi::start().await;
    let mut server = Server::spawn(&ctx.makker, &db.url, work, &fake)?;
    server.wait_ready(Duration::from_secs(60)).await?;
    let client = Client::new(&server.base).with_token(token);
    let path = format!("/api/v1/teams/{}/coverage?from={from}&to={to}", plan.team.0);
    let (rss_before, _) = server.memory_mib()?;
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..args.runs {
        let started = Instant::now();
        let response = client.request(reqwest::Method::GET, &path).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        times.push(started.elapsed());
        if !status.is_success() {
            bail!("the report failed: {status} {}", String::from_utf8_lossy(&body));
        }
        size = body.len();
        if i == 0 {
            check(&body, args)?;
        }
        eprintln!(
            "coverage: report {} in {:.2} s",
            i + 1,
            started.elapsed().as_secs_f64()
        );
    }
    let (rss_after, peak) = server.memory_mib()?;
    server.stop();
    let case = format!("{} visits, {} stops, 1 year", args.visits, args.stops);
    let first = times[0];
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    report.add("coverage", &case, "seeding (bulk)", seeded.as_secs_f64(), "s");
    report.add("coverage", &case, "report, first", ms(first), "ms");
    report.add("coverage", &case, "report, fastest", ms(times[0]), "ms");
    report.add(
        "coverage",
        &case,
        "report, median",
        ms(times[times.len() / 2]),
        "ms",
    );
    report.add("coverage", &case, "answer size", size as f64 / 1024.0, "KiB");
    report.add("coverage", &case, "server RSS before", rss_before, "MiB");
    report.add("coverage", &case, "server RSS after", rss_after, "MiB");
    report.add("coverage", &case, "server RSS peak", peak, "MiB");
    Ok(())
}

/// The report adds up and saw the year: every stop's windows judged, visits counted.
fn check(body: &[u8], args: &Args) -> Result<()> {
    let r: makker_mobile_api::coverage::CoverageReport = serde_json::from_slice(body)?;
    let t = r.totals;
    let windows = u32::try_from(args.stops).unwrap_or(u32::MAX) * 52;
    if t.planned != windows || t.planned != t.covered + t.late + t.missed {
        bail!("unexpected totals {t:?}, planned should be {windows}");
    }
    if u64::from(r.two_person.visits) + 2 * 24 * 60 < args.visits {
        bail!(
            "the report counted {} visits of {}",
            r.two_person.visits,
            args.visits
        );
    }
    eprintln!(
        "coverage: {} windows: {} covered, {} late, {} missed; {} visits; {} alarms; {} gaps",
        t.planned,
        t.covered,
        t.late,
        t.missed,
        r.two_person.visits,
        r.alarms.alarms,
        r.gaps.len()
    );
    Ok(())
}

/// The plan: a team, its manager and workers, places, districts, routes.
struct Plan {
    team: TeamId,
    manager: makker_domain::PersonId,
    workers: Vec<Uuid>,
    /// Stop places first, then the others.
    places: Vec<Uuid>,
    stops: usize,
}

/// Places on a grid over about 20 × 20 km around Copenhagen's centre.
fn grid_position(i: usize) -> Position {
    let (row, col) = (i / 32, i % 32);
    Position::parse(55.60 + row as f64 * 0.0056, 12.40 + col as f64 * 0.0100).expect("BUG: in range")
}

/// 16 districts: a 4 × 4 grid over the places.
fn districts() -> String {
    let mut features = Vec::new();
    for r in 0..4 {
        for c in 0..4 {
            let (lat, lon) = (55.595 + f64::from(r) * 0.046, 12.395 + f64::from(c) * 0.081);
            let (lat2, lon2) = (lat + 0.046, lon + 0.081);
            features.push(serde_json::json!({"type": "Feature", "properties": {"name": format!("Distrikt {r}{c}")},
                "geometry": {"type": "Polygon", "coordinates": [[[lon, lat], [lon2, lat], [lon2, lat2], [lon, lat2], [lon, lat]]]}}));
        }
    }
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

async fn plan(engine: &Engine, stops: usize, from: NaiveDate) -> Result<Plan> {
    let now = engine.now();
    let team = Team {
        id: TeamId(Uuid::now_v7()),
        name: "Københavns Kommune, gadeteam".into(),
        time_zone: "Europe/Copenhagen".into(),
        created_at: now,
    };
    engine.store.create_team(&team).await?;
    let manager = person(engine, "leder", Role::Manager, team.id, None).await?.id;
    let mut workers = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        workers.push(
            person(engine, &format!("m{i}"), Role::Worker, team.id, None)
                .await?
                .id
                .0,
        );
    }
    let mut places = Vec::with_capacity(PLACES.max(stops));
    for i in 0..PLACES.max(stops) {
        let place = Place {
            id: PlaceId(Uuid::now_v7()),
            team: team.id,
            name: format!("Sted {i}"),
            kind: if i < stops {
                PlaceKind::Park
            } else {
                PlaceKind::Home
            },
            shape: Shape::Circle {
                center: grid_position(i),
                radius_m: 60.0,
            },
        };
        engine.store.create_place(&place, now).await?;
        places.push(place.id.0);
    }
    let areas: Vec<Area> = parse_areas(&districts())?
        .into_iter()
        .map(|a| Area {
            id: AreaId(Uuid::now_v7()),
            team: team.id,
            name: a.name,
            outline: a.outline,
        })
        .collect();
    engine.store.save_areas(&areas, now).await?;
    let routes: Vec<Route> = (0..stops.div_ceil(5))
        .map(|r| Route {
            id: RouteId(Uuid::now_v7()),
            team: team.id,
            name: format!("Rute {r}"),
            valid_from: from,
            valid_until: None,
            stops: (r * 5..(r * 5 + 5).min(stops))
                .map(|k| {
                    let opens = 8 + u32::try_from(k % 12).expect("BUG: small");
                    Stop {
                        place: PlaceId(places[k]),
                        weekday: Weekday::try_from(u8::try_from(k % 7).expect("BUG: small"))
                            .expect("BUG: 0..7"),
                        opens: NaiveTime::from_hms_opt(opens, 0, 0).expect("BUG: valid"),
                        closes: NaiveTime::from_hms_opt(opens + 1, 30, 0).expect("BUG: valid"),
                    }
                })
                .collect(),
        })
        .collect();
    engine.store.save_routes(&routes, now).await?;
    Ok(Plan {
        team: team.id,
        manager,
        workers,
        places,
        stops,
    })
}

/// Dialect differences of the bulk SQL.
struct Dialect {
    /// A statement making `bench_g (n, id)` with `$1` rows.
    numbers: &'static str,
    /// An instant `s` seconds (an SQL expression) after the year's start, as the store keeps it.
    instant: fn(&str) -> String,
    /// A random whole number in `0..m`, drawn per row.
    random: fn(i64) -> String,
}

const SQLITE: Dialect = Dialect {
    numbers: "create temp table bench_g as with recursive g(n) as (select 0 union all select n + 1 from g \
              where n < $1 - 1) select n, randomblob(16) as id from g",
    instant: |s| format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', bench_start.t + ({s}), 'unixepoch')"),
    random: |m| format!("(abs(random()) % {m})"),
};

const POSTGRES: Dialect = Dialect {
    numbers: "create temp table bench_g as select n, gen_random_uuid() as id from generate_series(0, $1 - 1) n",
    instant: |s| format!("to_timestamp(bench_start.t + ({s}))"),
    random: |m| format!("floor(random() * {m})::bigint"),
};

/// The year's visits (70 % at stop places, between 08 and 22 UTC), their participants (a
/// third by two), alarms and incidents: set-based inserts in one transaction.
async fn bulk(url: &str, backend: Backend, plan: &Plan, visits: u64, from: NaiveDate) -> Result<()> {
    let start = from.and_time(NaiveTime::MIN).and_utc().timestamp();
    let n = i64::try_from(visits).context("visits fit in i64")?;
    match backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(url).await?;
            bulk_on::<sqlx::Sqlite>(&mut db, &SQLITE, plan, n, start).await
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(url).await?;
            bulk_on::<sqlx::Postgres>(&mut db, &POSTGRES, plan, n, start).await
        }
    }
}

async fn bulk_on<DB>(db: &mut DB::Connection, d: &Dialect, plan: &Plan, n: i64, start: i64) -> Result<()>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Uuid: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
{
    let exec = |sql: String| sqlx::query::<DB>(sqlx::AssertSqlSafe(sql));
    exec("create temp table bench_start (t bigint)".into())
        .execute(&mut *db)
        .await?;
    exec("insert into bench_start values ($1)".into())
        .bind(start)
        .execute(&mut *db)
        .await?;
    exec("create temp table bench_place (k bigint, place_id uuid, assessment_id uuid)".into())
        .execute(&mut *db)
        .await?;
    exec("create temp table bench_worker (k bigint, person_id uuid)".into())
        .execute(&mut *db)
        .await?;
    for (i, p) in plan.workers.iter().enumerate() {
        exec("insert into bench_worker values ($1, $2)".into())
            .bind(i64::try_from(i)?)
            .bind(*p)
            .execute(&mut *db)
            .await?;
    }
    let at = (d.instant)("0");
    for (i, p) in plan.places.iter().enumerate() {
        let assessment = Uuid::now_v7();
        exec(format!(
            "insert into assessment (assessment_id, place_id, team_id, person_id, answers, points, level, \
             assessed_at, created_at) select $1, $2, $3, $4, '{{}}', 0, 'low', {at}, {at} from bench_start"
        ))
        .bind(assessment)
        .bind(*p)
        .bind(plan.team.0)
        .bind(plan.workers[i % plan.workers.len()])
        .execute(&mut *db)
        .await?;
        exec("insert into bench_place values ($1, $2, $3)".into())
            .bind(i64::try_from(i)?)
            .bind(*p)
            .bind(assessment)
            .execute(&mut *db)
            .await?;
    }
    exec(d.numbers.into()).bind(n).execute(&mut *db).await?;
    exec("begin".into()).execute(&mut *db).await?;
    let stops = i64::try_from(plan.stops)?;
    let others = i64::try_from(plan.places.len())? - stops;
    // Where: 70 % at stop places. When: 3 % of those in a stop's window (from 15 minutes early
    // to 45 late; windows are local, and the year's UTC is an hour behind in winter, two in
    // summer), the rest at random between 08 and 22 UTC. Random, not from `n`: any formula of
    // `n` ties place, day and time together. Inserted in time order, as visits arrive.
    // The draws are kept in a table of their own first: SQLite would otherwise draw again
    // wherever a subquery's column is used.
    let r = d.random;
    exec(format!(
        "create temp table bench_r as select n, id, {} as a, {} as ks, {} as ko, {} as al, {} as wk, \
         {} as j, {} as dy, {} as sec from bench_g",
        r(10),
        r(stops),
        r(others.max(1)),
        r(100),
        r(52),
        r(3600),
        r(DAYS),
        r(50400),
    ))
    .execute(&mut *db)
    .await?;
    exec(format!(
        "create temp table bench_v as select n, id, case when a < 7 then ks else {stops} + ko end as k, \
         case when a < 7 and al < 3 then (7 * wk + ks % 7) * 86400 + (7 + ks % 12) * 3600 + j - 900 \
         else dy * 86400 + 28800 + sec end as s from bench_r"
    ))
    .execute(&mut *db)
    .await?;
    let (started, ended) = ((d.instant)("s"), (d.instant)("s + 2400"));
    let alone = (d.instant)("s + 1200");
    exec(format!(
        "insert into visit (visit_id, team_id, place_id, assessment_id, kind, state, points, level, started_at, \
         planned_end, last_check_in_at, last_seen_at, ended_at, min_participants, check_in_minutes, max_minutes, \
         grace_minutes, tell_colleague_on_exit, chain, version, created_at, alone_since, break_check_in_minutes) \
         select bench_v.id, $1, p.place_id, p.assessment_id, 'park', 'ended', 0, 'low', {started}, {ended}, \
         {started}, {ended}, {ended}, case when n % 5 = 0 then 2 else 1 end, 30, 240, 5, false, 'standard', 1, \
         {started}, case when n % 97 = 0 then {alone} end, 15 \
         from bench_v join bench_place p on p.k = bench_v.k cross join bench_start order by s"
    ))
    .bind(plan.team.0)
    .execute(&mut *db)
    .await?;
    for (position, filter) in [(0, "true"), (1, "n % 3 = 0")] {
        exec(format!(
            "insert into visit_participant (visit_id, person_id, position, role, joined_at, left_at, created_at) \
             select bench_v.id, w.person_id, {position}, '{role}', {started}, {ended}, {started} \
             from bench_v join bench_worker w on w.k = (n * 31 + {position}) % {WORKERS} cross join bench_start \
             where {filter} order by s",
            role = if position == 0 { "talker" } else { "observer" },
        ))
        .execute(&mut *db)
        .await?;
    }
    // 20,000 alarms (one in ten a drill), acknowledged 2 to 60 s after they were raised.
    let raised = (d.instant)("(n % 364) * 86400 + 36000 + (n * 13) % 36000");
    let acked = (d.instant)("(n % 364) * 86400 + 36000 + (n * 13) % 36000 + 2 + (n * 7) % 59");
    exec(format!(
        "insert into alarm (alarm_id, team_id, person_id, kind, state, raised_at, chain, step, acknowledged_by, \
         acknowledged_at, drill, version, created_at) \
         select bench_g.id, $1, w.person_id, 'sos', 'acknowledged', {raised}, 'sos', 1, $2, {acked}, n % 10 = 0, 1, \
         {raised} from bench_g join bench_worker w on w.k = n % {WORKERS} cross join bench_start where n < 20000"
    ))
    .bind(plan.team.0)
    .bind(plan.manager.0)
    .execute(&mut *db)
    .await?;
    let kinds = "case n % 4 when 0 then 'threat' when 1 then 'violence' when 2 then 'offensive_act' else 'near_miss' end";
    exec(format!(
        "insert into incident (incident_id, team_id, place_id, reported_by, kind, description, occurred_at, created_at) \
         select bench_g.id, $1, p.place_id, w.person_id, {kinds}, 'bench', {raised}, {raised} \
         from bench_g join bench_place p on p.k = (n * 17) % {stops} join bench_worker w on w.k = n % {WORKERS} \
         cross join bench_start where n < 2000"
    ))
    .bind(plan.team.0)
    .execute(&mut *db)
    .await?;
    exec("commit".into()).execute(&mut *db).await?;
    exec("analyze".into()).execute(&mut *db).await?;
    Ok(())
}
