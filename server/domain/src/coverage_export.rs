//! A coverage report as files: CSV tables (RFC 4180) and a GeoJSON map of the stops.
//!
//! Cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) are prefixed with
//! `'`: place and route names come from people.

use geojson::{Feature, FeatureCollection, Geometry};
use serde::{Deserialize, Serialize};

use crate::coverage::{CoverageReport, Tally};

/// Which table of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Table {
    #[default]
    Stops,
    Weeks,
    Routes,
    Areas,
    Heat,
    Places,
    Gaps,
    Incidents,
}

fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn line(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

const TALLY: [&str; 4] = ["planned", "covered", "late", "missed"];

fn tally(t: &Tally) -> [String; 4] {
    [t.planned, t.covered, t.late, t.missed].map(|n| n.to_string())
}

fn header(out: &mut String, first: &[&str], with_tally: bool) {
    let mut h: Vec<String> = first.iter().map(|s| (*s).to_owned()).collect();
    if with_tally {
        h.extend(TALLY.iter().map(|s| (*s).to_owned()));
    }
    line(out, &h);
}

fn row(out: &mut String, first: Vec<String>, t: Option<&Tally>) {
    let mut r = first;
    if let Some(t) = t {
        r.extend(tally(t));
    }
    line(out, &r);
}

/// One table of the report as CSV, with a header line.
pub fn csv(r: &CoverageReport, table: Table) -> String {
    let mut out = String::new();
    let route_name = |id: uuid::Uuid| {
        r.routes
            .iter()
            .find(|x| x.route_id == id)
            .map(|x| x.name.clone())
            .unwrap_or_default()
    };
    let hm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
    match table {
        Table::Stops => {
            header(
                &mut out,
                &["route", "position", "place", "weekday", "opens", "closes"],
                true,
            );
            for s in &r.stops {
                let first = vec![
                    route_name(s.route_id),
                    s.position.to_string(),
                    s.place_name.clone(),
                    s.weekday.to_string(),
                    hm(s.opens),
                    hm(s.closes),
                ];
                row(&mut out, first, Some(&s.tally));
            }
        }
        Table::Weeks => {
            header(&mut out, &["year", "week"], true);
            for w in &r.weeks {
                row(
                    &mut out,
                    vec![w.year.to_string(), w.week.to_string()],
                    Some(&w.tally),
                );
            }
        }
        Table::Routes => {
            header(&mut out, &["route"], true);
            for x in &r.routes {
                row(&mut out, vec![x.name.clone()], Some(&x.tally));
            }
        }
        Table::Areas => {
            header(&mut out, &["area"], true);
            for a in &r.areas {
                row(&mut out, vec![a.name.clone().unwrap_or_default()], Some(&a.tally));
            }
        }
        Table::Heat => {
            header(&mut out, &["weekday", "hour", "visits"], true);
            for c in &r.heat {
                let first = vec![c.weekday.to_string(), c.hour.to_string(), c.visits.to_string()];
                row(&mut out, first, Some(&c.tally));
            }
        }
        Table::Places => {
            header(&mut out, &["place", "visits"], false);
            for p in &r.places {
                row(&mut out, vec![p.name.clone(), p.visits.to_string()], None);
            }
        }
        Table::Gaps => {
            header(&mut out, &["route", "place", "weekday", "opens", "closes"], true);
            for g in &r.gaps {
                let first = vec![
                    g.route_name.clone(),
                    g.place_name.clone(),
                    g.weekday.to_string(),
                    hm(g.opens),
                    hm(g.closes),
                ];
                row(&mut out, first, Some(&g.tally));
            }
        }
        Table::Incidents => {
            header(&mut out, &["place", "kind", "count"], false);
            for i in &r.incidents {
                let first = vec![
                    i.place_name.clone(),
                    i.kind.as_str().to_owned(),
                    i.count.to_string(),
                ];
                row(&mut out, first, None);
            }
        }
    }
    out
}

/// The report's stops as GeoJSON points at their places, each with its figures and the share of
/// windows reached (`reached_share`, null when none was planned) for colouring a map.
pub fn stops_geojson(r: &CoverageReport) -> FeatureCollection {
    r.stops
        .iter()
        .map(|s| {
            let mut props = serde_json::json!({
                "route_id": s.route_id,
                "position": s.position,
                "place_id": s.place_id,
                "place": s.place_name,
                "area_id": s.area_id,
                "weekday": s.weekday,
                "opens": s.opens.format("%H:%M").to_string(),
                "closes": s.closes.format("%H:%M").to_string(),
                "reached_share": s.tally.reached_share(),
            });
            if let (Some(obj), Ok(serde_json::Value::Object(t))) =
                (props.as_object_mut(), serde_json::to_value(s.tally))
            {
                obj.extend(t);
            }
            Feature {
                bbox: None,
                geometry: Some(Geometry::new_point([s.lon, s.lat])),
                id: None,
                properties: props.as_object().cloned(),
                foreign_members: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("Mølleparken"), "Mølleparken");
        assert_eq!(cell("Park, nord"), "\"Park, nord\"");
        assert_eq!(cell("Den \"gamle\""), "\"Den \"\"gamle\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-5"), "'-5");
    }
}
