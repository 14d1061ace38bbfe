//! Routes: where and when a team plans to be. Coverage (visits against stops) builds on these.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use crate::{PlaceId, RouteId, TeamId};

/// A planned stop: a place on a weekday between two local times (the team's time zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub place: PlaceId,
    pub weekday: Weekday,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub id: RouteId,
    pub team: TeamId,
    pub name: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub stops: Vec<Stop>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRoute {
    #[error("a route needs a name")]
    NoName,
    #[error("a stop's window must open before it closes")]
    EmptyWindow,
    #[error("a route cannot end before it starts")]
    EndsBeforeStart,
    #[error("a route name is at most 100 characters")]
    NameTooLong,
    #[error("a route has at most 500 stops")]
    TooManyStops,
    #[error("a route's dates lie between 2000 and 2100")]
    OutOfCalendar,
}

impl Route {
    /// # Errors
    /// An empty name, a stop window that does not open before it closes, or reversed dates.
    pub fn validate(&self) -> Result<(), BadRoute> {
        if self.name.trim().is_empty() {
            return Err(BadRoute::NoName);
        }
        if self.stops.iter().any(|s| s.opens >= s.closes) {
            return Err(BadRoute::EmptyWindow);
        }
        if self.valid_until.is_some_and(|u| u < self.valid_from) {
            return Err(BadRoute::EndsBeforeStart);
        }
        Ok(())
    }
}

impl Route {
    /// The route without its stops at `hidden` places, for a reader who may not see them.
    #[must_use]
    pub fn without_stops_at(mut self, hidden: &HashSet<PlaceId>) -> Route {
        self.stops.retain(|s| !hidden.contains(&s.place));
        self
    }

    /// The route a planner who cannot see the `hidden` places sent, with the stops at those
    /// places that `known` (the route as saved) has, after the planner's own: a manager's
    /// edit keeps the home stops an admin planned.
    #[must_use]
    pub fn keeping_stops_at(mut self, known: &Route, hidden: &HashSet<PlaceId>) -> Route {
        let kept = known.stops.iter().filter(|s| hidden.contains(&s.place));
        self.stops.extend(kept.cloned());
        self
    }
}

/// Most stops one route may have.
pub const MAX_STOPS: usize = 500;
/// Longest route name.
pub const MAX_NAME: usize = 100;

impl Route {
    /// [`Route::validate`], and the bounds an API caller must keep.
    ///
    /// # Errors
    /// As `validate`, or a name or stop list too long.
    pub fn validate_input(&self) -> Result<(), BadRoute> {
        self.validate()?;
        if self.name.chars().count() > MAX_NAME || self.name.contains('\0') {
            return Err(BadRoute::NameTooLong);
        }
        if self.stops.len() > MAX_STOPS {
            return Err(BadRoute::TooManyStops);
        }
        let calendar = crate::coverage::calendar();
        if !calendar.contains(&self.valid_from) || self.valid_until.is_some_and(|d| !calendar.contains(&d)) {
            return Err(BadRoute::OutOfCalendar);
        }
        Ok(())
    }
}

/// A route as read from GeoJSON, before it has an id and a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRoute {
    pub name: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub stops: Vec<Stop>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRouteImport {
    #[error("not GeoJSON: {0}")]
    NotGeoJson(String),
    #[error("expected a FeatureCollection of stops")]
    NotACollection,
    #[error("feature {0}: {1} is missing or malformed")]
    Property(usize, &'static str),
    #[error("feature {0}: no such place in this team")]
    UnknownPlace(usize),
    #[error("feature {0}: its route's dates differ from an earlier stop of the same route")]
    DatesDiffer(usize),
    #[error("no stops in the collection")]
    Empty,
}

fn text_prop<'a>(f: &'a geojson::Feature, key: &'static str, i: usize) -> Result<&'a str, BadRouteImport> {
    f.property(key)
        .and_then(|v| v.as_str())
        .ok_or(BadRouteImport::Property(i, key))
}

fn parsed_prop<T: std::str::FromStr>(
    f: &geojson::Feature,
    key: &'static str,
    i: usize,
) -> Result<T, BadRouteImport> {
    text_prop(f, key, i)?
        .parse()
        .map_err(|_| BadRouteImport::Property(i, key))
}

fn weekday_prop(f: &geojson::Feature, i: usize) -> Result<Weekday, BadRouteImport> {
    f.property("weekday")
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| (1..=7).contains(n))
        .and_then(|n| Weekday::try_from(n - 1).ok())
        .ok_or(BadRouteImport::Property(i, "weekday"))
}

/// Reads routes from GeoJSON as [`routes_geojson`] writes them: one Point feature per stop with
/// `route`, `valid_from`, optional `valid_until`, `weekday` (1 = Monday), `opens` and `closes`
/// ("HH:MM"), and the place as `place_id` or, failing that, `place` (its name). `place` resolves
/// either to a place of the team. Stops keep their order in the file.
///
/// # Errors
/// The first malformed feature, an unknown place, or a route that does not validate.
pub fn parse_routes_geojson(
    text: &str,
    place: impl Fn(Option<uuid::Uuid>, Option<&str>) -> Option<PlaceId>,
) -> Result<Vec<ParsedRoute>, BadRouteImport> {
    let geojson: geojson::GeoJson = text
        .parse()
        .map_err(|e: geojson::Error| BadRouteImport::NotGeoJson(e.to_string()))?;
    let geojson::GeoJson::FeatureCollection(fc) = geojson else {
        return Err(BadRouteImport::NotACollection);
    };
    if fc.features.is_empty() {
        return Err(BadRouteImport::Empty);
    }
    let mut routes: Vec<ParsedRoute> = Vec::new();
    for (i, f) in fc.features.iter().enumerate() {
        let name = text_prop(f, "route", i)?.trim().to_owned();
        let valid_from: NaiveDate = parsed_prop(f, "valid_from", i)?;
        let valid_until: Option<NaiveDate> = match f.property("valid_until") {
            None | Some(serde_json::Value::Null) => None,
            Some(_) => Some(parsed_prop(f, "valid_until", i)?),
        };
        let id = f
            .property("place_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let by_name = f.property("place").and_then(|v| v.as_str());
        let stop = Stop {
            place: place(id, by_name).ok_or(BadRouteImport::UnknownPlace(i))?,
            weekday: weekday_prop(f, i)?,
            opens: parsed_prop(f, "opens", i)?,
            closes: parsed_prop(f, "closes", i)?,
        };
        match routes.iter_mut().find(|r| r.name == name) {
            Some(r) if (r.valid_from, r.valid_until) != (valid_from, valid_until) => {
                return Err(BadRouteImport::DatesDiffer(i));
            }
            Some(r) => r.stops.push(stop),
            None => routes.push(ParsedRoute {
                name,
                valid_from,
                valid_until,
                stops: vec![stop],
            }),
        }
    }
    Ok(routes)
}

/// Routes as GeoJSON: a Point feature per stop at its place's centre (`center` gives it; stops
/// whose place it does not know are left out), with the properties [`parse_routes_geojson`] reads.
pub fn routes_geojson(
    routes: &[Route],
    center: impl Fn(PlaceId) -> Option<(String, crate::geo::Position)>,
) -> geojson::FeatureCollection {
    let stop_feature = |r: &Route, position: usize, s: &Stop| {
        let (name, at) = center(s.place)?;
        let props = serde_json::json!({
            "route_id": r.id.0,
            "route": r.name,
            "valid_from": r.valid_from,
            "valid_until": r.valid_until,
            "position": position,
            "place_id": s.place.0,
            "place": name,
            "weekday": s.weekday.number_from_monday(),
            "opens": s.opens.format("%H:%M").to_string(),
            "closes": s.closes.format("%H:%M").to_string(),
        });
        Some(geojson::Feature {
            bbox: None,
            geometry: Some(geojson::Geometry::new_point([at.lon, at.lat])),
            id: None,
            properties: props.as_object().cloned(),
            foreign_members: None,
        })
    };
    routes
        .iter()
        .flat_map(|r| {
            r.stops
                .iter()
                .enumerate()
                .filter_map(move |(i, s)| stop_feature(r, i, s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn route(opens: u32, closes: u32) -> Route {
        Route {
            id: RouteId(Uuid::nil()),
            team: TeamId(Uuid::nil()),
            name: "Midtby".into(),
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            valid_until: None,
            stops: vec![Stop {
                place: PlaceId(Uuid::nil()),
                weekday: Weekday::Mon,
                opens: NaiveTime::from_hms_opt(opens, 0, 0).unwrap(),
                closes: NaiveTime::from_hms_opt(closes, 0, 0).unwrap(),
            }],
        }
    }

    #[test]
    fn a_stop_window_must_open_before_it_closes() {
        assert_eq!(route(10, 12).validate(), Ok(()));
        assert_eq!(route(12, 12).validate(), Err(BadRoute::EmptyWindow));
    }

    #[test]
    fn routes_survive_a_geojson_round_trip() {
        let mut r = route(10, 12);
        r.valid_until = NaiveDate::from_ymd_opt(2026, 6, 30);
        r.stops.push(Stop {
            place: PlaceId(Uuid::from_u128(2)),
            weekday: Weekday::Sun,
            opens: NaiveTime::from_hms_opt(20, 30, 0).unwrap(),
            closes: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
        });
        let at = crate::geo::Position::parse(56.15, 10.2).unwrap();
        let text =
            routes_geojson(std::slice::from_ref(&r), |p| Some((format!("sted {}", p.0), at))).to_string();
        let back = parse_routes_geojson(&text, |id, _| id.map(PlaceId)).unwrap();
        assert_eq!(
            back,
            vec![ParsedRoute {
                name: r.name.clone(),
                valid_from: r.valid_from,
                valid_until: r.valid_until,
                stops: r.stops.clone(),
            }]
        );
    }

    #[test]
    fn an_import_names_the_feature_that_is_wrong() {
        let f = |props: &str| {
            format!(
                r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","geometry":null,"properties":{props}}}]}}"#
            )
        };
        let ok = r#"{"route":"A","valid_from":"2026-01-01","weekday":1,"opens":"10:00","closes":"11:00","place":"Parken"}"#;
        let known =
            |_: Option<Uuid>, name: Option<&str>| (name == Some("Parken")).then_some(PlaceId(Uuid::nil()));
        assert_eq!(parse_routes_geojson(&f(ok), known).unwrap()[0].stops.len(), 1);
        let bad_day = ok.replace(r#""weekday":1"#, r#""weekday":8"#);
        assert_eq!(
            parse_routes_geojson(&f(&bad_day), known),
            Err(BadRouteImport::Property(0, "weekday"))
        );
        let unknown = ok.replace("Parken", "Skoven");
        assert_eq!(
            parse_routes_geojson(&f(&unknown), known),
            Err(BadRouteImport::UnknownPlace(0))
        );
        let bad_time = ok.replace("11:00", "25:00");
        assert_eq!(
            parse_routes_geojson(&f(&bad_time), known),
            Err(BadRouteImport::Property(0, "closes"))
        );
    }
}
