//! `schemathesis` (from PyPI; `.ci/run` installs it) generates requests from
//! `schemas/openapi.json` against a running `makker demo` for a bounded time, signed in as the
//! demo's supervisor: no answer may be a 5xx, and every answer must match the documented schema
//! and content type. The live stream is left out (it never ends) and so is sign-out (it would
//! end the run's own session).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;

use common::Scratch;

/// The demo process, killed when the test ends however it ends.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_find_no_server_error_and_no_schema_violation() {
    let scratch = Scratch::new();
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_makker"))
            .arg("demo")
            .current_dir(&scratch.dir)
            .env_remove("MAKKER_DATABASE_URL")
            .env("MAKKER_LISTEN", "127.0.0.1:0")
            .env("MAKKER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let api = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("API:")
                .and_then(|r| r.split_whitespace().next().map(str::to_owned))
        })
        .expect("the demo prints where the API is");
    std::thread::spawn(move || lines.for_each(drop));
    let origin = api.trim_end_matches("/api/v1").to_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{api}/auth/login"))
        .json(&serde_json::json!({"username": "sofie", "password": "makker-demo", "device_name": "st"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.json");
    let workdir = scratch.dir.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            // It keeps a cache of what it found in its working directory: the scratch one.
            .current_dir(workdir)
            .args([
                "run",
                schema,
                "--url",
                &origin,
                "--max-time",
                "40",
                "--workers",
                "1",
            ])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--exclude-path",
                "/api/v1/live",
                "--exclude-path",
                "/api/v1/auth/logout",
            ])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance",
            ])
            .output()
    })
    .await
    .unwrap();
    drop(demo);
    let out = run.expect("schemathesis is installed (python3 -m pip install schemathesis, as .ci/run does)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{report}");
}
