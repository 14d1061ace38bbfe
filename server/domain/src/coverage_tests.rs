//! Coverage: a golden case computed by hand, windows across daylight saving, and the
//! properties the maths promises.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::area::Area;
use crate::place::{Place, PlaceKind};
use crate::route::Stop;
use crate::{AreaId, TeamId};

const GOLDEN: &str = include_str!("../fixtures/coverage-golden.json");

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn time(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn pos(lat: f64, lon: f64) -> Position {
    Position::parse(lat, lon).unwrap()
}

fn circle_place(name: &str, lat: f64, lon: f64, radius_m: f64) -> Place {
    Place {
        id: PlaceId(Uuid::new_v4()),
        team: TeamId(Uuid::nil()),
        name: name.into(),
        kind: PlaceKind::Park,
        shape: Shape::Circle {
            center: pos(lat, lon),
            radius_m,
        },
    }
}

fn tally(v: &Value) -> Tally {
    serde_json::from_value(v.clone()).unwrap()
}

/// The golden case's plan, visits, alarms and incidents, read from the fixture.
struct Golden {
    params: Params,
    plan: Plan,
    visits: Vec<VisitFact>,
    alarms: Vec<AlarmFact>,
    incidents: Vec<IncidentFact>,
    expected: Value,
}

fn golden() -> Golden {
    let g: Value = serde_json::from_str(GOLDEN).unwrap();
    let zone: Tz = g["zone"].as_str().unwrap().parse().unwrap();
    let places: Vec<Place> = g["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            circle_place(
                p["name"].as_str().unwrap(),
                p["lat"].as_f64().unwrap(),
                p["lon"].as_f64().unwrap(),
                p["radius_m"].as_f64().unwrap(),
            )
        })
        .collect();
    let place = |name: &Value| places.iter().find(|p| p.name == name.as_str().unwrap()).unwrap();
    let areas: Vec<Area> = g["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let ring: Vec<::geo::Coord<f64>> = a["ring"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| ::geo::Coord {
                    x: c[0].as_f64().unwrap(),
                    y: c[1].as_f64().unwrap(),
                })
                .collect();
            Area {
                id: AreaId(Uuid::new_v4()),
                team: TeamId(Uuid::nil()),
                name: a["name"].as_str().unwrap().into(),
                outline: ::geo::MultiPolygon(vec![::geo::Polygon::new(::geo::LineString(ring), vec![])]),
            }
        })
        .collect();
    let routes: Vec<Route> = g["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Route {
            id: RouteId(Uuid::new_v4()),
            team: TeamId(Uuid::nil()),
            name: r["name"].as_str().unwrap().into(),
            valid_from: date(r["valid_from"].as_str().unwrap()),
            valid_until: r["valid_until"].as_str().map(date),
            stops: r["stops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Stop {
                    place: place(&s["place"]).id,
                    weekday: s["weekday"].as_str().unwrap().parse().unwrap(),
                    opens: time(s["opens"].as_str().unwrap()),
                    closes: time(s["closes"].as_str().unwrap()),
                })
                .collect(),
        })
        .collect();
    let visits = g["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let p = place(&v["place"]);
            VisitFact {
                place: p.id,
                at: p.shape.center(),
                started_at: instant(v["start"].as_str().unwrap()),
                ended_at: Some(instant(v["end"].as_str().unwrap())),
                participants: u8::try_from(v["participants"].as_u64().unwrap()).unwrap(),
                required: u8::try_from(v["required"].as_u64().unwrap()).unwrap(),
                pair_broke: v["pair_broke"].as_bool().unwrap(),
            }
        })
        .collect();
    let alarms = g["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let raised = instant(a["raised"].as_str().unwrap());
            AlarmFact {
                raised_at: raised,
                acknowledged_at: a["ack_s"].as_i64().map(|s| raised + Duration::seconds(s)),
                drill: a["drill"].as_bool().unwrap(),
            }
        })
        .collect();
    let incidents = g["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| IncidentFact {
            place: place(&i["place"]).id,
            kind: IncidentKind::parse(i["kind"].as_str().unwrap()).unwrap(),
            occurred_at: instant(i["at"].as_str().unwrap()),
        })
        .collect();
    let params = Params {
        zone,
        from: date(g["from"].as_str().unwrap()),
        to: date(g["to"].as_str().unwrap()),
        now: instant(g["now"].as_str().unwrap()),
        late_after_minutes: u32::try_from(g["late_after_minutes"].as_u64().unwrap()).unwrap(),
    };
    Golden {
        params,
        plan: Plan::new(zone, &routes, &places, &areas),
        visits,
        alarms,
        incidents,
        expected: g["expected"].clone(),
    }
}

#[test]
fn the_golden_case_gives_the_figures_computed_by_hand() {
    let g = golden();
    let r = report(g.params, &g.plan, &g.visits, &g.alarms, &g.incidents);
    let e = &g.expected;
    assert_eq!(r.totals, tally(&e["totals"]));
    let weeks: Vec<WeekTally> = serde_json::from_value(e["weeks"].clone()).unwrap();
    assert_eq!(r.weeks, weeks);
    let areas: HashMap<String, Tally> = r
        .areas
        .iter()
        .map(|a| (a.name.clone().unwrap_or_else(|| "(none)".into()), a.tally))
        .collect();
    for (name, t) in e["areas"].as_object().unwrap() {
        assert_eq!(areas[name], tally(t), "area {name}");
    }
    assert_eq!(areas.len(), 2);
    let routes: HashMap<&str, Tally> = r.routes.iter().map(|x| (x.name.as_str(), x.tally)).collect();
    for (name, t) in e["routes"].as_object().unwrap() {
        assert_eq!(routes[name.as_str()], tally(t), "route {name}");
    }
    let heat: Vec<HeatCell> = serde_json::from_value(e["heat"].clone()).unwrap();
    assert_eq!(r.heat, heat);
    let places: HashMap<&str, u32> = r.places.iter().map(|p| (p.name.as_str(), p.visits)).collect();
    for (name, n) in e["places"].as_object().unwrap() {
        assert_eq!(
            u64::from(places[name.as_str()]),
            n.as_u64().unwrap(),
            "visits at {name}"
        );
    }
    assert_eq!(r.places[0].name, "Værestedet", "most visited first");
    let two: TwoPerson = serde_json::from_value(e["two_person"].clone()).unwrap();
    assert_eq!(r.two_person, two);
    let alarms: AckStats = serde_json::from_value(e["alarms"].clone()).unwrap();
    assert_eq!(r.alarms, alarms);
    let drills: AckStats = serde_json::from_value(e["drills"].clone()).unwrap();
    assert_eq!(r.drills, drills);
    let incidents: HashMap<String, u32> = r
        .incidents
        .iter()
        .map(|i| (format!("{}/{}", i.place_name, i.kind.as_str()), i.count))
        .collect();
    let expected: HashMap<String, u32> = serde_json::from_value(e["incidents"].clone()).unwrap();
    assert_eq!(incidents, expected);
    let gaps: Vec<(String, String, u8, Tally)> = r
        .gaps
        .iter()
        .map(|x| (x.route_name.clone(), x.place_name.clone(), x.weekday, x.tally))
        .collect();
    let expected: Vec<(String, String, u8, Tally)> = e["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["route"].as_str().unwrap().into(),
                x["place"].as_str().unwrap().into(),
                u8::try_from(x["weekday"].as_u64().unwrap()).unwrap(),
                tally(&x["tally"]),
            )
        })
        .collect();
    assert_eq!(gaps, expected);
}

#[test]
fn a_report_names_no_person() {
    let g = golden();
    let r = report(g.params, &g.plan, &g.visits, &g.alarms, &g.incidents);
    let json = serde_json::to_string(&r).unwrap();
    for word in ["person_id", "worker", "participant", "username", "display_name"] {
        assert!(!json.contains(word), "{word} in {json}");
    }
}

fn stop(weekday: Weekday, opens: &str, closes: &str, shape: Shape) -> PlannedStop {
    PlannedStop {
        route: RouteId(Uuid::nil()),
        position: 0,
        place: PlaceId(Uuid::nil()),
        shape,
        area: None,
        weekday,
        opens: time(opens),
        closes: time(closes),
        valid_from: date("2026-01-01"),
        valid_until: None,
    }
}

fn park() -> Shape {
    Shape::Circle {
        center: pos(56.1563, 10.2038),
        radius_m: 100.0,
    }
}

#[test]
fn windows_are_local_times_across_both_daylight_saving_changes() {
    let zone: Tz = "Europe/Copenhagen".parse().unwrap();
    let s = stop(Weekday::Sun, "02:30", "03:30", park());
    let w: Vec<Window> = windows(&s, zone, date("2026-03-22"), date("2026-04-06")).collect();
    assert_eq!(w.len(), 3);
    // 22 March, CET: 02:30 local is 01:30Z.
    assert_eq!(w[0].opens, Utc.with_ymd_and_hms(2026, 3, 22, 1, 30, 0).unwrap());
    // 29 March: 02:30 does not exist (02:00 jumps to 03:00); read as 03:30 CEST, 01:30Z.
    assert_eq!(w[1].opens, Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap());
    assert_eq!(w[1].closes, Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap());
    // 5 April, CEST: 02:30 local is 00:30Z.
    assert_eq!(w[2].opens, Utc.with_ymd_and_hms(2026, 4, 5, 0, 30, 0).unwrap());
    // 25 October: 02:30 happens twice; the first (CEST) is meant.
    let w: Vec<Window> = windows(&s, zone, date("2026-10-25"), date("2026-10-26")).collect();
    assert_eq!(w[0].opens, Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
    assert_eq!(w[0].closes, Utc.with_ymd_and_hms(2026, 10, 25, 2, 30, 0).unwrap());
}

#[test]
fn a_route_applies_only_within_its_validity() {
    let zone: Tz = "Europe/Stockholm".parse().unwrap();
    let mut s = stop(Weekday::Mon, "10:00", "11:00", park());
    s.valid_from = date("2026-11-03");
    s.valid_until = Some(date("2026-11-16"));
    let dates: Vec<NaiveDate> = windows(&s, zone, date("2026-11-01"), date("2026-12-01"))
        .map(|w| w.date)
        .collect();
    assert_eq!(dates, vec![date("2026-11-09"), date("2026-11-16")]);
}

// --- properties -------------------------------------------------------------------------

const DAYS: i64 = 28;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

fn params(late: u32) -> Params {
    Params {
        zone: "Europe/Copenhagen".parse().unwrap(),
        from: date("2026-03-02"),
        to: date("2026-03-29"),
        now: base() + Duration::days(DAYS + 1),
        late_after_minutes: late,
    }
}

/// A visit at `at`: a start within the four weeks (minute resolution) and a length.
fn visit(place: PlaceId, at: Position, start_min: i64, len_min: i64) -> VisitFact {
    let started_at = base() + Duration::minutes(start_min);
    VisitFact {
        place,
        at,
        started_at,
        ended_at: Some(started_at + Duration::minutes(len_min)),
        participants: 1,
        required: 1,
        pair_broke: false,
    }
}

fn weekday() -> impl Strategy<Value = Weekday> {
    (0u8..7).prop_map(|d| Weekday::try_from(d).unwrap())
}

/// A window of 15 minutes to 4 hours starting between 06:00 and 19:45.
fn window_times() -> impl Strategy<Value = (NaiveTime, NaiveTime)> {
    (24u32..80, 1u32..16).prop_map(|(q, len)| {
        let opens = q * 15;
        let closes = opens + len * 15;
        (
            NaiveTime::from_hms_opt(opens / 60, opens % 60, 0).unwrap(),
            NaiveTime::from_hms_opt(closes / 60, closes % 60, 0).unwrap(),
        )
    })
}

/// Positions around the park, from its centre to about 1 km away.
fn near_park() -> impl Strategy<Value = Position> {
    (-0.01f64..0.01, -0.015f64..0.015).prop_map(|(dlat, dlon)| pos(56.1563 + dlat, 10.2038 + dlon))
}

fn visits_at(place: PlaceId) -> impl Strategy<Value = Vec<VisitFact>> {
    prop::collection::vec(
        (near_park(), 0..DAYS * 24 * 60, 1i64..240).prop_map(move |(at, s, len)| visit(place, at, s, len)),
        0..40,
    )
}

fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::Missed => 0,
        Outcome::Late => 1,
        Outcome::Covered => 2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_visit_never_covers_a_stop_outside_its_window(
        day in weekday(), (opens, closes) in window_times(), visits in visits_at(PlaceId(Uuid::from_u128(7))),
    ) {
        let mut s = stop(day, "00:00", "00:01", park());
        (s.opens, s.closes) = (opens, closes);
        let p = params(15);
        for w in windows(&s, p.zone, p.from, p.to.succ_opt().unwrap()) {
            let o = outcome(&s, &w, &visits, p.late_after(), p.now);
            let overlapping = visits.iter().any(|v| {
                at_stop(&s, v) && v.started_at < w.closes && v.ended_at.unwrap() > w.opens
                    || at_stop(&s, v) && v.started_at >= w.opens && v.started_at < w.closes
            });
            prop_assert_eq!(o != Outcome::Missed, overlapping, "window {:?}", w);
        }
    }

    #[test]
    fn moving_a_visit_closer_to_a_stop_never_lowers_coverage(
        day in weekday(), (opens, closes) in window_times(), visits in visits_at(PlaceId(Uuid::from_u128(7))),
        i in any::<prop::sample::Index>(), other in near_park(),
    ) {
        prop_assume!(!visits.is_empty());
        let mut s = stop(day, "00:00", "00:01", park());
        (s.opens, s.closes) = (opens, closes);
        let i = i.index(visits.len());
        let here = visits[i].at;
        let (near, far) = if s.shape.distance_m(other) <= s.shape.distance_m(here) { (other, here) } else { (here, other) };
        let (mut before, mut after) = (visits.clone(), visits);
        before[i].at = far;
        after[i].at = near;
        let p = params(15);
        for w in windows(&s, p.zone, p.from, p.to.succ_opt().unwrap()) {
            let a = outcome(&s, &w, &before, p.late_after(), p.now);
            let b = outcome(&s, &w, &after, p.late_after(), p.now);
            prop_assert!(rank(b) >= rank(a), "{:?} became {:?}", a, b);
        }
    }

    #[test]
    fn totals_add_up_and_the_index_agrees_with_the_plain_rules(
        stops in prop::collection::vec((weekday(), window_times(), 0usize..3, 0usize..2), 1..8),
        visit_specs in prop::collection::vec((0usize..3, 0..DAYS * 24 * 60, 1i64..300, 1u8..3), 0..80),
        late in 0u32..60,
    ) {
        let places = [
            circle_place("Mølleparken", 56.1563, 10.2038, 120.0),
            circle_place("Bænken", 56.15675, 10.2038, 20.0),
            circle_place("Værestedet", 56.1478, 10.2045, 40.0),
        ];
        let routes: Vec<Route> = (0..2)
            .map(|r| Route {
                id: RouteId(Uuid::from_u128(r as u128 + 1)),
                team: TeamId(Uuid::nil()),
                name: format!("rute {r}"),
                valid_from: date("2026-03-05"),
                valid_until: None,
                stops: stops
                    .iter()
                    .filter(|s| s.3 == r)
                    .map(|(day, (opens, closes), place, _)| Stop {
                        place: places[*place].id,
                        weekday: *day,
                        opens: *opens,
                        closes: *closes,
                    })
                    .collect(),
            })
            .collect();
        let area = Area {
            id: AreaId(Uuid::from_u128(9)),
            team: TeamId(Uuid::nil()),
            name: "Nord".into(),
            outline: ::geo::MultiPolygon(vec![::geo::Polygon::new(
                ::geo::LineString::from(vec![(10.19, 56.152), (10.22, 56.152), (10.22, 56.17), (10.19, 56.17), (10.19, 56.152)]),
                vec![],
            )]),
        };
        let zone: Tz = "Europe/Copenhagen".parse().unwrap();
        let plan = Plan::new(zone, &routes, &places, &[area]);
        let visits: Vec<VisitFact> = visit_specs
            .iter()
            .map(|(p, s, len, n)| VisitFact { participants: *n, required: 2, ..visit(places[*p].id, places[*p].shape.center(), *s, *len) })
            .collect();
        let p = params(late);
        let r = report(p, &plan, &visits, &[], &[]);
        let sum = |ts: &mut dyn Iterator<Item = Tally>| ts.fold(Tally::default(), |a, t| Tally {
            planned: a.planned + t.planned,
            covered: a.covered + t.covered,
            late: a.late + t.late,
            missed: a.missed + t.missed,
        });
        let t = r.totals;
        prop_assert_eq!(t.planned, t.covered + t.late + t.missed);
        prop_assert_eq!(sum(&mut r.weeks.iter().map(|w| w.tally)), t);
        prop_assert_eq!(sum(&mut r.areas.iter().map(|a| a.tally)), t);
        prop_assert_eq!(sum(&mut r.routes.iter().map(|a| a.tally)), t);
        prop_assert_eq!(sum(&mut r.heat.iter().map(|a| a.tally)), t);
        prop_assert_eq!(sum(&mut r.stops.iter().map(|a| a.tally)), t);
        prop_assert_eq!(r.places.iter().map(|x| x.visits).sum::<u32>(), r.two_person.visits);
        prop_assert_eq!(r.heat.iter().map(|x| x.visits).sum::<u32>(), r.two_person.visits);
        // Each stop's tally is what the plain rules give window by window.
        let (from, until) = p.period();
        for (planned, got) in plan.stops.iter().zip(&r.stops) {
            let mut expected = Tally::default();
            windows(planned, zone, from, until)
                .filter(|w| w.closes <= p.now)
                .for_each(|w| expected.add(outcome(planned, &w, &visits, p.late_after(), p.now)));
            prop_assert_eq!(got.tally, expected);
        }
    }
}
