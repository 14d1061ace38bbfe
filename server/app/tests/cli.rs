//! The `makker` command as an administrator and a first-time user run it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use makker_store::Store;
use makker_store_sqlite::SqliteStore;

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("makker-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.0.join("makker.db").display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn makker(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_makker"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("MAKKER_DATABASE_URL")
        .env("MAKKER_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run makker");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "makker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap().trim().to_owned()
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let s = Scratch::new();
    std::fs::write(s.0.join("makker.toml"), "token_days = 30\n").unwrap();
    let env = [("MAKKER_DATABASE_URL", "postgres://makker:hemmeligt@db/makker")];
    let out = ok(&makker(&s.0, &["config", "check"], &env, None));
    assert!(out.contains("token_days = 30"), "{out}");
    assert!(out.contains("postgres://makker:***@db/makker"), "{out}");
    assert!(!out.contains("hemmeligt"));
}

#[test]
fn an_invalid_configuration_stops_the_start_with_a_clear_message() {
    let s = Scratch::new();
    let out = makker(&s.0, &["serve"], &[("MAKKER_TOKEN_DAYS", "0")], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token_days must be between 1 and 365"), "{err}");
}

#[tokio::test]
async fn an_administrator_sets_up_a_team_and_a_phone() {
    let s = Scratch::new();
    let url = s.db_url();
    let db = [("MAKKER_DATABASE_URL", url.as_str())];
    ok(&makker(&s.0, &["migrate"], &db, None));
    let team = ok(&makker(
        &s.0,
        &[
            "admin",
            "create-team",
            "--name",
            "Gadeteam Malmö",
            "--time-zone",
            "Europe/Stockholm",
        ],
        &db,
        None,
    ));
    let args = [
        "admin",
        "create-person",
        "--username",
        "Ebba",
        "--name",
        "Ebba Lind",
        "--role",
        "worker",
        "--team",
        "Gadeteam Malmö",
        "--lang",
        "sv",
    ];
    let person = ok(&makker(&s.0, &args, &[db[0], ("MAKKER_NEW_PIN", "2468")], None));
    ok(&makker(
        &s.0,
        &["admin", "set-password", "--username", "ebba"],
        &db,
        Some("ett långt lösenord\n"),
    ));
    let token = ok(&makker(
        &s.0,
        &[
            "admin",
            "issue-token",
            "--username",
            "ebba",
            "--device-name",
            "Ebbas telefon",
        ],
        &db,
        None,
    ));
    assert!(token.starts_with("mk_"), "{token}");

    let store = SqliteStore::connect(&url).await.unwrap();
    let ebba = store.person_by_username("ebba").await.unwrap();
    assert_eq!(
        (ebba.id.0.to_string(), ebba.teams[0].0.to_string()),
        (person, team)
    );
    assert!(makker_engine::auth::verify_secret(
        "ett långt lösenord",
        ebba.password_hash.as_deref().unwrap()
    ));
    assert!(makker_engine::auth::verify_secret(
        "2468",
        ebba.pin_hash.as_deref().unwrap()
    ));
    let device = store
        .device_by_token_hash(&makker_engine::auth::token_hash(&token))
        .await
        .unwrap();
    assert!(device.revoked_at.is_none());
    ok(&makker(
        &s.0,
        &["admin", "revoke-token", "--device", &device.id.to_string()],
        &db,
        None,
    ));
    assert!(store.devices(ebba.id).await.unwrap()[0].revoked_at.is_some());

    let bad = makker(
        &s.0,
        &[
            "admin",
            "create-person",
            "--username",
            "x",
            "--name",
            "X",
            "--role",
            "boss",
        ],
        &db,
        None,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("role must be"));
}

#[tokio::test]
async fn the_demo_creates_its_database_and_serves_the_demo_team() {
    let s = Scratch::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_makker"))
        .arg("demo")
        .current_dir(&s.0)
        .env_remove("MAKKER_DATABASE_URL")
        .env("MAKKER_LISTEN", "127.0.0.1:0")
        .env("MAKKER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut api = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("API:") {
            api = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    // Keep reading, so the demo never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let api = api.expect("the demo prints where the API is");
    assert!(
        s.0.join("makker-demo.db").exists(),
        "the demo made its SQLite file"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{api}/auth/login"))
        .json(&serde_json::json!({"username": "anna", "password": "makker-demo", "device_name": "test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"]
        .as_str()
        .expect("anna signs in with the printed password");
    let near: serde_json::Value = http
        .get(format!("{api}/places/near?lat=56.1563&lon=10.2038&radius_m=300"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let names: Vec<&str> = near
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"Mølleparken"), "{names:?}");
    // The demo's threat warning, and those its history's incidents put on the park.
    let warnings = near[0]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["kind"] == "threat"),
        "the park carries the demo's threat warning: {warnings:?}"
    );
}

/// `ops/CONFIG.md` is what the configuration type says today (`MAKKER_UPDATE_SCHEMAS=1`
/// rewrites it), and the example file shows every setting.
#[test]
fn the_configuration_reference_and_example_cover_every_setting() {
    let ops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops");
    let reference = makker::config::reference();
    if std::env::var("MAKKER_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::write(ops.join("CONFIG.md"), &reference).unwrap();
    }
    let committed = std::fs::read_to_string(ops.join("CONFIG.md")).unwrap();
    assert!(
        committed == reference,
        "ops/CONFIG.md is stale: run `MAKKER_UPDATE_SCHEMAS=1 cargo nextest run -p makker --test cli`"
    );
    let example = std::fs::read_to_string(ops.join("makker.example.toml")).unwrap();
    let settings: Vec<&str> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert!(settings.len() > 20, "{settings:?}");
    for s in settings {
        assert!(
            example.contains(&format!("{s} =")),
            "ops/makker.example.toml does not show {s}"
        );
    }
}

#[test]
fn backup_and_restore_commands_copy_a_team_into_a_new_database() {
    let s = Scratch::new();
    let url = s.db_url();
    let env = [("MAKKER_DATABASE_URL", url.as_str())];
    ok(&makker(
        &s.0,
        &["admin", "create-team", "--name", "Gadeteam Aalborg"],
        &env,
        None,
    ));
    ok(&makker(&s.0, &["backup", "--to", "copy.db"], &env, None));
    let again = makker(&s.0, &["backup", "--to", "copy.db"], &env, None);
    assert!(!again.status.success(), "a backup never overwrites");
    let restored = format!("sqlite://{}", s.0.join("restored.db").display());
    let env2 = [("MAKKER_DATABASE_URL", restored.as_str())];
    ok(&makker(&s.0, &["restore", "--from", "copy.db"], &env2, None));
    // The team is there: a person can join it by its name.
    let person = [
        "admin",
        "create-person",
        "--username",
        "ida",
        "--name",
        "Ida",
        "--role",
        "worker",
        "--team",
        "Gadeteam Aalborg",
    ];
    ok(&makker(&s.0, &person, &env2, None));
    let elsewhere = format!("sqlite://{}", s.0.join("empty.db").display());
    let empty = makker(
        &s.0,
        &person,
        &[("MAKKER_DATABASE_URL", elsewhere.as_str())],
        None,
    );
    assert!(
        !empty.status.success(),
        "without the restore there is no such team"
    );
}
