//! The web pages in a real browser: Debian's Chromium (`/usr/bin/chromium`), headless, driven
//! by playwright-core (`tests/browser/scenarios.mjs`) against a real `makker serve` on a
//! scratch database (PostgreSQL when `MAKKER_TEST_DATABASE_URL` is set, else SQLite) seeded
//! with the demo team; SMS go to a fake GatewayAPI; the map has no tiles (nothing leaves the
//! machine). Screenshots land in `target/browser-artifacts/<scenario>/`.
//!
//! The test clock: the server reads the database's clock, so a scenario makes a check-out
//! deadline fall due by moving the stored `due_at` of the armed overdue deadlines back to when
//! they were written; the server's loop (which looks at least once a second) fires them. The
//! server has no test hook.
//!
//! Protocol with the script: a line `@@ <verb>` on its stdout asks this side to act and is
//! answered by one line on its stdin, `ok` or `error <why>`. Verbs: `overdue` (the test
//! clock above), `stop` (SIGTERM, graceful within 10 s) and `start` (the server again, same
//! address).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{Scratch, Server, free_port, fresh_pg, wait_for};
use makker_engine::Engine;
use makker_engine::clock::ManualClock;
use makker_fakes::gatewayapi::FakeGatewayApi;
use sqlx::{AnyConnection, Connection};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_home_visit_that_runs_out_alarms_the_board_until_acknowledged_and_resolved() {
    run("lone-visit-alarm").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_observer_withdraws_the_pair_with_one_tap_and_reports_an_incident() {
    run("observer-withdraws").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_offline_queue_replays_in_order_with_the_phones_times() {
    run("offline-queue").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duress_check_out_looks_normal_on_the_phone_and_alarms_the_board() {
    run("duress").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_board_resumes_after_a_server_restart_and_misses_nothing() {
    run("board-restart").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_board_shows_phones_battery_live_every_place_and_reports_an_incident_with_a_warning() {
    run("board-battery-incident").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manager_sees_coverage_figures_maps_and_exports_but_no_worker() {
    run("manager-coverage").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manager_imports_areas_and_plans_a_route_with_stops() {
    run("manager-plans").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_visit_refused_for_want_of_approval_starts_after_one_click_on_the_board() {
    run("lone-approval").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pushed_reminders_and_alarms_show_as_notifications_that_stay_until_touched() {
    // The test VAPID key (RFC 8291's): the app offers push only when the server has one.
    let vapid = [
        (
            "MAKKER_VAPID_PRIVATE_KEY",
            "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
        ),
        ("MAKKER_VAPID_SUBJECT", "mailto:drift@makker.dk"),
    ];
    run_with("push-notifications", &vapid).await;
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// playwright-core from the lockfile, never a browser download.
fn node_modules() -> PathBuf {
    let dir = repo().join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .current_dir(&dir)
            .status()
            .expect("npm (Node.js) runs the browser tests");
        assert!(status.success(), "npm ci in tests/browser");
    }
    dir
}

async fn seed_demo(url: &str, scratch: &Scratch) {
    let store = makker::open_store(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let engine = Engine::new(store, Arc::new(scratch.policy.clone()), clock);
    assert!(makker::demo::seed(&engine).await.unwrap(), "a fresh database");
}

async fn execute(url: &str, sql: &str) -> u64 {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.unwrap();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    done.rows_affected()
}

async fn ready(base: &str) {
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(20), "makker serve to be ready", || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

/// One scenario of `scenarios.mjs` against a fresh server.
async fn run(scenario: &str) {
    run_with(scenario, &[]).await;
}

/// [`run`], with more of the server's environment.
async fn run_with(scenario: &str, extra_env: &[(&str, &str)]) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)"
    );
    let scripts = node_modules();
    let scratch = Scratch::new();
    let url = match fresh_pg().await {
        Some(url) => url,
        None => format!("sqlite://{}?mode=rwc", scratch.dir.join("makker.db").display()),
    };
    seed_demo(&url, &scratch).await;
    let sms = FakeGatewayApi::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut env = vec![("MAKKER_LISTEN", listen.as_str()), ("MAKKER_MAP_TILE_URL", "")];
    env.extend_from_slice(extra_env);
    let start = || Server::start(&url, &scratch.policy_file(), Some(&sms), &env);
    // Browsers keep Secure cookies on http://localhost only.
    let base = format!("http://localhost:{}", listen.rsplit(':').next().unwrap());
    let mut server = Some(start());
    ready(&base).await;

    let artifacts = repo().join("target/browser-artifacts").join(scenario);
    let mut node = Command::new("node")
        .arg("scenarios.mjs")
        .arg(scenario)
        .current_dir(&scripts)
        .env("MAKKER_BASE_URL", &base)
        .env("MAKKER_ARTIFACTS", &artifacts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs the browser tests");
    let mut answer = node.stdin.take().unwrap();
    let (lines, mut asked) = tokio::sync::mpsc::unbounded_channel();
    let out = BufReader::new(node.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(verb) = line.strip_prefix("@@ ") {
                let _ = lines.send(verb.to_owned());
            }
        }
    });
    // Whether each SIGTERM ended the server within 10 s (else it was killed, and the test
    // fails after the scenario: streams must end cleanly on shutdown).
    let mut graceful = true;
    while let Some(verb) = asked.recv().await {
        let reply = match verb.as_str() {
            "overdue" => {
                let moved = execute(
                    &url,
                    "update deadline set due_at = created_at where state = 'armed' and kind = 'overdue'",
                )
                .await;
                if moved > 0 {
                    "ok".to_owned()
                } else {
                    "error no armed check-out deadline".to_owned()
                }
            }
            "stop" => {
                let mut stopping = server.take().expect("a running server");
                graceful &= stopping.terminate_within(Duration::from_secs(10));
                "ok".to_owned()
            }
            "start" => {
                server = Some(start());
                ready(&base).await;
                "ok".to_owned()
            }
            other => format!("error unknown verb {other}"),
        };
        writeln!(answer, "{reply}").unwrap();
    }
    drop(answer);
    let status = tokio::task::spawn_blocking(move || node.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "browser scenario {scenario} failed (see its output above)"
    );
    assert!(graceful, "makker serve did not stop within 10 s of SIGTERM");
}
