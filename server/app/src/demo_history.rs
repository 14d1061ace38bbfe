//! Eight weeks of made-up history for the demo team, so the manager's coverage pages show a
//! picture true to life on first start: visits along the route (mostly on time, some late,
//! some missed — the evening shelter round more and more often), home visits off the route,
//! alarms with their acknowledgement times, a few drills, and incidents with warnings and
//! deadlines. Deterministic (a fixed seed), written in a handful of transactions.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use makker_domain::area::{Area, parse_areas};
use makker_domain::coverage::local_instant;
use makker_domain::incident::{IncidentKind, Report};
use makker_domain::place::{Place, PlaceKind, Warning};
use makker_domain::risk::{Assessed, RiskLevel};
use makker_domain::route::Route;
use makker_domain::visit::{Participant, ParticipantRole, Terms, Visit, VisitKind, VisitState};
use makker_domain::{AlarmId, AreaId, AssessmentId, IncidentId, PersonId, TeamId, VisitId, WarningId};
use makker_engine::Engine;
use makker_store::{Assessment, Changes, Versioned};
use uuid::Uuid;

/// Weeks of history.
pub const WEEKS: i64 = 8;

/// Aarhus' centre and the districts around it, for the demo's area figures.
const DISTRICTS: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"name":"Midtbyen"},"geometry":{"type":"Polygon","coordinates":[[[10.190,56.140],[10.225,56.140],[10.225,56.165],[10.190,56.165],[10.190,56.140]]]}},
 {"type":"Feature","properties":{"name":"Trøjborg"},"geometry":{"type":"Polygon","coordinates":[[[10.195,56.165],[10.230,56.165],[10.230,56.185],[10.195,56.185],[10.195,56.165]]]}},
 {"type":"Feature","properties":{"name":"Gellerup"},"geometry":{"type":"Polygon","coordinates":[[[10.120,56.150],[10.160,56.150],[10.160,56.170],[10.120,56.170],[10.120,56.150]]]}}
]}"#;

/// splitmix64: a small, fixed sequence of numbers, so every demo has the same history.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A whole number in `0..n`.
    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n.max(1)).unwrap_or(0)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn visit_kind(place: &Place) -> VisitKind {
    match place.kind {
        PlaceKind::Park => VisitKind::Park,
        PlaceKind::DropIn => VisitKind::DropIn,
        PlaceKind::Shelter => VisitKind::Shelter,
        PlaceKind::Street => VisitKind::StreetContact,
        PlaceKind::Home => VisitKind::HomeVisitAnnounced,
        PlaceKind::Other => VisitKind::Other,
    }
}

/// Everything the history writes, gathered first and then written.
struct History<'a> {
    engine: &'a Engine,
    team: TeamId,
    workers: Vec<PersonId>,
    supervisor: PersonId,
    dice: Dice,
    visits: Vec<(Visit, Assessment)>,
    alarms: Changes,
}

impl History<'_> {
    /// A visit at `place` from `start`, `minutes` long, by two workers most of the time.
    fn visit(&mut self, place: &Place, start: DateTime<Utc>, minutes: i64) -> VisitId {
        let kind = visit_kind(place);
        // On the street and in parks the risk is often assessed medium: then two must go.
        let outdoors = matches!(kind, VisitKind::StreetContact | VisitKind::Park);
        let (level, points) = if outdoors && self.dice.chance(40) {
            (RiskLevel::Medium, 3)
        } else {
            (RiskLevel::Low, 0)
        };
        let rule = self.engine.policy.rule_for(kind, level).clone();
        let pair = rule.min_participants >= 2 || self.dice.chance(80);
        let first = self.dice.below(self.workers.len() as u64);
        let n = if pair { 2 } else { 1 };
        let end = start + Duration::minutes(minutes);
        // Now and then a partner leaves early and the other finishes alone (on the street,
        // where two are required, that breaks the two-person rule).
        let broke = pair && self.dice.chance(if rule.min_participants >= 2 { 15 } else { 5 });
        let participants = (0..n)
            .map(|i| {
                let w = usize::try_from((first + i) % self.workers.len() as i64).unwrap_or(0);
                let left = if broke && i == 1 {
                    start + Duration::minutes(minutes / 2)
                } else {
                    end
                };
                Participant {
                    person: self.workers[w],
                    role: if i == 0 {
                        ParticipantRole::Talker
                    } else {
                        ParticipantRole::Observer
                    },
                    joined_at: start,
                    left_at: Some(left),
                }
            })
            .collect::<Vec<_>>();
        let id = VisitId(Uuid::now_v7());
        let visit = Visit {
            id,
            team: self.team,
            kind,
            place: place.id,
            state: VisitState::Ended,
            risk: Assessed { points, level },
            started_at: start,
            planned_end: end,
            last_check_in_at: start,
            last_seen_at: end,
            ended_at: Some(end),
            terms: Terms {
                min_participants: rule.min_participants,
                check_in_minutes: rule.check_in_minutes,
                max_minutes: rule.max_minutes,
                grace_minutes: rule.grace_minutes,
                tell_colleague_on_exit: rule.tell_colleague_on_exit,
                chain: rule.chain.clone(),
                break_check_in_minutes: self.engine.policy.timers.break_check_in_minutes,
            },
            lone_reason: None,
            approved_by: None,
            tell_colleague: None,
            alone_since: broke.then(|| start + Duration::minutes(minutes / 2)),
            participants,
        };
        let answers = self
            .engine
            .policy
            .assessment
            .questions
            .iter()
            .map(|q| (q.id.clone(), false))
            .collect();
        let assessment = Assessment {
            id: AssessmentId(Uuid::now_v7()),
            place: place.id,
            team: self.team,
            by: visit.participants[0].person,
            answers,
            result: visit.risk,
            assessed_at: start,
        };
        self.visits.push((visit, assessment));
        id
    }

    /// An alarm during a visit, acknowledged after a few seconds (rarely a minute) and resolved.
    fn alarm(&mut self, visit: VisitId, worker: PersonId, at: DateTime<Utc>, drill: bool) {
        let mut alarm = makker_domain::alarm::Alarm::raise(
            AlarmId(Uuid::now_v7()),
            self.team,
            worker,
            Some(visit),
            makker_domain::alarm::AlarmKind::MissedCheckIn,
            &self.engine.policy.timers.sos_chain,
            at,
        );
        alarm.drill = drill;
        self.alarms.new_alarms.push(alarm.clone());
        let seconds = if self.dice.chance(15) {
            30 + self.dice.below(90)
        } else {
            3 + self.dice.below(12)
        };
        let acked = at + Duration::seconds(seconds);
        if alarm.acknowledge(self.supervisor, acked).is_ok()
            && alarm
                .resolve(
                    self.supervisor,
                    "safe",
                    Some("Ringet op, alt vel".into()),
                    acked + Duration::minutes(4),
                )
                .is_ok()
        {
            self.alarms.saved_alarms.push(Versioned {
                value: alarm,
                version: 1,
            });
        }
    }
}

/// Seeds the history: areas, then eight weeks of visits along `route` and off it, alarms and
/// incidents, up to `now`. Returns how many visits it wrote.
///
/// # Errors
/// Storage failures.
pub async fn seed(
    engine: &Engine,
    team: TeamId,
    places: &[Place],
    route: &Route,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let areas: Vec<Area> = parse_areas(DISTRICTS)?
        .into_iter()
        .map(|a| Area {
            id: AreaId(Uuid::now_v7()),
            team,
            name: a.name,
            outline: a.outline,
        })
        .collect();
    engine.store.save_areas(&areas, now).await?;
    let people = engine.store.team_members(team).await?;
    let role = |r| people.iter().filter(move |p| p.role == r).map(|p| p.id);
    let mut h = History {
        engine,
        team,
        workers: role(makker_domain::Role::Worker).collect(),
        supervisor: role(makker_domain::Role::Supervisor)
            .next()
            .ok_or_else(|| anyhow::anyhow!("the demo team has a supervisor"))?,
        dice: Dice(4484),
        visits: Vec::new(),
        alarms: Changes::default(),
    };
    let zone = makker_domain::coverage::team_zone(&engine.store.team(team).await?.time_zone);
    let today = now.with_timezone(&zone).date_naive();
    let first = today - Duration::weeks(WEEKS);
    let days = first.iter_days().take_while(|d| *d < today);
    for (n, date) in days.enumerate() {
        route_day(&mut h, route, places, zone, date, n)?;
        home_visits(&mut h, places, zone, date);
    }
    let count = h.visits.len();
    let began = std::time::Instant::now();
    engine.store.insert_history(&h.visits, &h.alarms, now).await?;
    incidents(engine, team, places, &h, now).await?;
    tracing::info!(
        visits = count,
        ms = began.elapsed().as_millis(),
        "seeded the demo's history"
    );
    Ok(count)
}

/// The route's windows on `date`: covered on time mostly, sometimes late, sometimes missed; the
/// evening shelter round is missed more and more in the last weeks (a gap to find).
fn route_day(
    h: &mut History<'_>,
    route: &Route,
    places: &[Place],
    zone: chrono_tz::Tz,
    date: NaiveDate,
    day: usize,
) -> anyhow::Result<()> {
    let late_weeks = i64::try_from(day).unwrap_or(0) / 7 >= WEEKS - 4;
    for stop in route
        .stops
        .iter()
        .filter(|s| s.weekday == chrono::Datelike::weekday(&date))
    {
        let place = places
            .iter()
            .find(|p| p.id == stop.place)
            .ok_or_else(|| anyhow::anyhow!("a route stop's place"))?;
        let evening = place.kind == PlaceKind::Shelter;
        let missed = if evening && late_weeks { 70 } else { 12 };
        if h.dice.chance(missed) {
            continue;
        }
        let opens = local_instant(zone, date, stop.opens);
        let delay = if h.dice.chance(18) {
            20 + h.dice.below(30)
        } else {
            h.dice.below(12)
        };
        let start = opens + Duration::minutes(delay - 5);
        let minutes = 25 + h.dice.below(35);
        let visit = h.visit(place, start, minutes);
        if h.dice.chance(8) {
            let worker = h
                .visits
                .last()
                .map(|(v, _)| v.participants[0].person)
                .unwrap_or(h.supervisor);
            let at = start + Duration::minutes(10);
            let drill = h.dice.chance(25);
            h.alarm(visit, worker, at, drill);
        }
    }
    Ok(())
}

/// A home visit or two on weekdays, at the pseudonymous homes.
fn home_visits(h: &mut History<'_>, places: &[Place], zone: chrono_tz::Tz, date: NaiveDate) {
    if chrono::Datelike::weekday(&date).number_from_monday() > 5 {
        return;
    }
    for home in places.iter().filter(|p| p.kind == PlaceKind::Home) {
        if h.dice.chance(45) {
            let at = chrono::NaiveTime::from_hms_opt(10, 0, 0).expect("BUG: a valid time");
            let start = local_instant(zone, date, at) + Duration::minutes(h.dice.below(300));
            let minutes = 30 + h.dice.below(30);
            h.visit(home, start, minutes);
        }
    }
}

/// A few incidents: threats in the park (with a warning), violence at the station square (its
/// police report made), and a near miss at the shelter last week with absence still to report.
async fn incidents(
    engine: &Engine,
    team: TeamId,
    places: &[Place],
    h: &History<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let by_name = |name: &str| places.iter().find(|p| p.name.starts_with(name));
    let list = [
        (
            "Mølleparken",
            IncidentKind::Threat,
            40,
            "Råbte og truede med at slå",
        ),
        ("Mølleparken", IncidentKind::Threat, 12, "Truede med en flaske"),
        ("Banegårdspladsen", IncidentKind::Violence, 25, "Skubbet omkuld"),
        (
            "Rådhusparken",
            IncidentKind::OffensiveAct,
            18,
            "Spyttede efter medarbejderen",
        ),
        ("Herberget", IncidentKind::NearMiss, 5, "Kanyle i sofaen"),
    ];
    for (name, kind, days_ago, text) in list {
        let Some(place) = by_name(name) else { continue };
        let occurred_at = now - Duration::days(days_ago) + Duration::hours(1);
        let report = Report {
            kind,
            description: text.into(),
            occurred_at,
            absence_from: (kind == IncidentKind::NearMiss).then_some(occurred_at),
            police_report: None,
        };
        let mut incident = report.accept(
            IncidentId(Uuid::now_v7()),
            team,
            place.id,
            None,
            h.workers[0],
            now,
        )?;
        if days_ago > 20 {
            let _ = incident.mark_done(
                makker_domain::incident::Duty::PoliceReport,
                occurred_at + Duration::hours(30),
            );
        }
        let warning = (kind == IncidentKind::Threat).then(|| Warning {
            id: WarningId(Uuid::now_v7()),
            place: place.id,
            kind: kind.warning_kind(),
            text: makker_domain::incident::default_warning_text(kind).into(),
            created_at: occurred_at,
            expires_at: occurred_at + Duration::days(365),
        });
        incident.warning = warning.as_ref().map(|w| w.id);
        engine.store.insert_incident(&incident, warning.as_ref()).await?;
    }
    Ok(())
}
