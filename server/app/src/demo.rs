//! `makker demo`: a fictional outreach team in Aarhus, on real coordinates, so a first start
//! shows something true to life. Seeds once; a second start reuses the file.

use chrono::{Duration, NaiveTime, Weekday};
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind, Warning, WarningKind};
use makker_domain::route::{Route, Stop};
use makker_domain::{PlaceId, RouteId, TeamId, WarningId};
use std::sync::Arc;

use makker_domain::visit::VisitKind;
use makker_engine::{Engine, StartCommand};
use uuid::Uuid;

use anyhow::Context;

use crate::admin::{self, PersonArgs};

/// Eight weeks of history for the coverage pages.
#[path = "demo_history.rs"]
pub mod history;

pub const PASSWORD: &str = "makker-demo";
pub const PIN: &str = "1234";
pub const DURESS_PIN: &str = "9876";

/// (username, name, role)
pub const PEOPLE: [(&str, &str, &str); 7] = [
    ("anna", "Anna Jensen", "worker"),
    ("bo", "Bo Nielsen", "worker"),
    ("camilla", "Camilla Sørensen", "worker"),
    ("dennis", "Dennis Larsen", "worker"),
    ("sofie", "Sofie Holm", "supervisor"),
    ("lars", "Lars Madsen", "manager"),
    ("admin", "Administrator", "admin"),
];

fn pos(lat: f64, lon: f64) -> Position {
    Position::parse(lat, lon).expect("BUG: demo coordinates are valid")
}

fn circle(lat: f64, lon: f64, radius_m: f64) -> Shape {
    Shape::Circle {
        center: pos(lat, lon),
        radius_m,
    }
}

/// Places in central Aarhus. Homes are pseudonymous placeholders, never a citizen's name.
fn places(team: TeamId) -> Vec<Place> {
    let botanisk_have = Shape::Polygon {
        ring: vec![
            pos(56.1611, 10.1940),
            pos(56.1614, 10.2003),
            pos(56.1578, 10.2012),
            pos(56.1574, 10.1948),
        ],
    };
    let list = [
        ("Mølleparken", PlaceKind::Park, circle(56.1563, 10.2038, 120.0)),
        ("Rådhusparken", PlaceKind::Park, circle(56.1511, 10.2018, 150.0)),
        ("Botanisk Have", PlaceKind::Park, botanisk_have),
        (
            "Banegårdspladsen",
            PlaceKind::Street,
            circle(56.1505, 10.2046, 80.0),
        ),
        (
            "Værestedet Jægergårdsgade",
            PlaceKind::DropIn,
            circle(56.1478, 10.2045, 40.0),
        ),
        (
            "Herberget Sydhavnen",
            PlaceKind::Shelter,
            circle(56.1452, 10.2110, 40.0),
        ),
        (
            "Hjem G-17 (Gellerup)",
            PlaceKind::Home,
            circle(56.1592, 10.1405, 30.0),
        ),
        (
            "Hjem T-04 (Trøjborg)",
            PlaceKind::Home,
            circle(56.1719, 10.2110, 30.0),
        ),
    ];
    list.into_iter()
        .map(|(name, kind, shape)| Place {
            id: PlaceId(Uuid::now_v7()),
            team,
            name: name.into(),
            kind,
            shape,
        })
        .collect()
}

fn at(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("BUG: a valid time")
}

/// Seeds the demo team unless the database already has teams. Returns whether it seeded.
///
/// # Errors
/// Storage failures.
pub async fn seed(engine: &Engine) -> anyhow::Result<bool> {
    if !engine.store.teams().await?.is_empty() {
        return Ok(false);
    }
    let now = engine.now();
    let team = admin::create_team(engine, "Gadeteam Aarhus Midt", "Europe/Copenhagen").await?;
    for (i, (username, name, role)) in PEOPLE.into_iter().enumerate() {
        let args = PersonArgs {
            username: username.into(),
            name: name.into(),
            role: role.into(),
            teams: vec![team.id.0.to_string()],
            // Fictional numbers: the demo's SMS go to the log, never to a phone.
            phone: Some(format!("+455010000{i}")),
            lang: "da".into(),
            password: Some(PASSWORD.into()),
            pin: Some(PIN.into()),
            duress_pin: Some(DURESS_PIN.into()),
        };
        admin::create_person(engine, args).await?;
    }
    let places = places(team.id);
    for p in &places {
        engine.store.create_place(p, now).await?;
    }
    let warn = |place: &Place, kind, text: &str, days| Warning {
        id: WarningId(Uuid::now_v7()),
        place: place.id,
        kind,
        text: text.into(),
        created_at: now,
        expires_at: now + Duration::days(days),
    };
    engine
        .store
        .add_warning(&warn(
            &places[7],
            WarningKind::Dog,
            "Stor hund i lejligheden",
            180,
        ))
        .await?;
    engine
        .store
        .add_warning(&warn(
            &places[0],
            WarningKind::Threat,
            "Trusler mod personale i sidste uge",
            30,
        ))
        .await?;
    let route = Route {
        id: RouteId(Uuid::now_v7()),
        team: team.id,
        name: "Midtbyen, hverdage".into(),
        // Planned since before the history begins, so all of it counts.
        valid_from: now.date_naive() - Duration::weeks(history::WEEKS + 1),
        valid_until: None,
        stops: [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ]
        .into_iter()
        .flat_map(|weekday| {
            [
                Stop {
                    place: places[4].id,
                    weekday,
                    opens: at(9, 0),
                    closes: at(10, 30),
                },
                Stop {
                    place: places[0].id,
                    weekday,
                    opens: at(11, 0),
                    closes: at(12, 0),
                },
                Stop {
                    place: places[3].id,
                    weekday,
                    opens: at(13, 0),
                    closes: at(14, 0),
                },
                Stop {
                    place: places[1].id,
                    weekday,
                    opens: at(14, 30),
                    closes: at(15, 30),
                },
                Stop {
                    place: places[5].id,
                    weekday,
                    opens: at(20, 0),
                    closes: at(21, 30),
                },
            ]
        })
        .collect(),
    };
    route.validate()?;
    engine.store.create_route(&route, now).await?;
    history::seed(engine, team.id, &places, &route, now).await?;
    Ok(true)
}

/// What a first-time user reads on the terminal.
pub fn welcome(address: &str) -> String {
    let users: Vec<String> = PEOPLE
        .iter()
        .map(|(u, n, r)| format!("  {u:<8} {n} ({r})"))
        .collect();
    format!(
        "Makker demo: Gadeteam Aarhus Midt\n\
         Users (password {PASSWORD:?}, check-out PIN {PIN}, duress PIN {DURESS_PIN}):\n{}\n\n\
         API:      http://{address}/api/v1  (OpenAPI: http://{address}/api/v1/openapi.json)\n\
         Sign in:  curl -s -X POST http://{address}/api/v1/auth/login -H 'content-type: application/json' \\\n\
         \x20           -d '{{\"username\":\"anna\",\"password\":\"{PASSWORD}\",\"device_name\":\"demo\"}}'\n\
         Stop with Ctrl-C.",
        users.join("\n")
    )
}

/// The demo's policy: the default with times shortened to a minute, so a first-time user sees
/// the reminder, the alarm and its escalation within two minutes.
pub fn quick(mut engine: Engine) -> Engine {
    let mut policy = (*engine.policy).clone();
    for rule in &mut policy.rules {
        rule.grace_minutes = 0;
    }
    policy.timers.reminder_before_minutes = 1;
    policy.timers.ack_follow_up_minutes = 2;
    for chain in policy.chains.values_mut() {
        for (i, step) in chain.steps.iter_mut().enumerate() {
            step.after_minutes = u32::try_from(i).unwrap_or(u32::MAX);
        }
        chain.repeat_minutes = 2;
    }
    engine.policy = Arc::new(policy);
    engine
}

/// Dennis starts a one-minute visit at the drop-in centre and will not check out.
/// Returns a line about it.
///
/// # Errors
/// Storage failures.
pub async fn miss_a_check_out(engine: &Engine) -> anyhow::Result<String> {
    let dennis = admin::person(engine, "dennis").await?;
    if let Some(v) = engine.active_visit(&dennis).await? {
        return Ok(format!(
            "Dennis is still in visit {} from an earlier demo run.",
            v.id
        ));
    }
    if engine.store.open_shift(dennis.id).await?.is_none() {
        engine.start_shift(&dennis, None).await?;
    }
    let places = engine.store.places(&dennis.teams).await?;
    let drop_in = places
        .iter()
        .find(|p| p.name.starts_with("Værestedet"))
        .context("the demo's drop-in centre")?;
    let cmd = StartCommand::lone(VisitKind::DropIn, drop_in.id, 1, &engine.policy);
    let v = engine
        .start_visit(&dennis, cmd, engine.stamp(None, None)?)
        .await?;
    Ok(format!(
        "Dennis started a one-minute visit at {} ({}) and will miss his check-out.",
        drop_in.name, v.value.id
    ))
}

/// How to watch and acknowledge the demo's alarm.
pub fn watch(address: &str, what: &str) -> String {
    format!(
        "{what}\n\
         Watch the log: the reminder, then the alarm escalating (SMS go to the log provider).\n\
         Acknowledge as Sofie: sign in as sofie (as above), then\n\
         \x20 curl -s http://{address}/api/v1/alarms -H 'authorization: Bearer <token>'\n\
         \x20 curl -s -X POST http://{address}/api/v1/alarms/<id>/acknowledge -H 'authorization: Bearer <token>'"
    )
}
