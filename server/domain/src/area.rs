//! Areas: the districts a team's figures are grouped by, drawn as polygons (with holes, and
//! several parts where a district has islands). Read from and written as GeoJSON (RFC 7946):
//! a FeatureCollection of Polygon or MultiPolygon features, each with a `name` property.
//!
//! Invariants: every ring is closed, has at least four positions, and every position is a valid
//! WGS 84 longitude/latitude pair; names are unique within one import.

use ::geo::{Contains, Coord, LineString, MultiPolygon, Polygon};
use geojson::{Feature, FeatureCollection, GeoJson, Geometry, GeometryValue, JsonObject};

use crate::geo::Position;
use crate::{AreaId, TeamId};

/// Longest area name we keep.
pub const MAX_NAME: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub id: AreaId,
    pub team: TeamId,
    pub name: String,
    pub outline: MultiPolygon<f64>,
}

impl Area {
    /// Whether `p` lies inside the area (on the edge counts as outside).
    pub fn contains(&self, p: Position) -> bool {
        self.outline.contains(&Coord { x: p.lon, y: p.lat })
    }

    /// The outline as a GeoJSON geometry (what the store keeps and exports).
    pub fn geometry(&self) -> Geometry {
        Geometry::new(GeometryValue::from(&self.outline))
    }
}

/// One area as read from GeoJSON: a name and an outline, not yet given an id.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedArea {
    pub name: String,
    pub outline: MultiPolygon<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadArea {
    #[error("not GeoJSON: {0}")]
    NotGeoJson(String),
    #[error("expected a FeatureCollection of areas")]
    NotACollection,
    #[error("feature {0}: needs a Polygon or MultiPolygon geometry")]
    NotAPolygon(usize),
    #[error("feature {0}: needs a name property of 1 to 100 characters")]
    BadName(usize),
    #[error("feature {0}: the name is used twice")]
    DuplicateName(usize),
    #[error("feature {0}: every ring must be closed and have at least four positions")]
    BadRing(usize),
    #[error("feature {0}: positions are [longitude, latitude] within range")]
    BadPosition(usize),
    #[error("no areas in the collection")]
    Empty,
}

/// Reads areas from a GeoJSON FeatureCollection (RFC 7946).
///
/// # Errors
/// Anything but a collection of named, closed, in-range polygons; the first problem found.
pub fn parse_areas(text: &str) -> Result<Vec<ParsedArea>, BadArea> {
    let geojson: GeoJson = text
        .parse()
        .map_err(|e: geojson::Error| BadArea::NotGeoJson(e.to_string()))?;
    let GeoJson::FeatureCollection(fc) = geojson else {
        return Err(BadArea::NotACollection);
    };
    if fc.features.is_empty() {
        return Err(BadArea::Empty);
    }
    let mut out: Vec<ParsedArea> = Vec::with_capacity(fc.features.len());
    for (i, f) in fc.features.iter().enumerate() {
        let name = feature_name(f).ok_or(BadArea::BadName(i))?;
        if out.iter().any(|a| a.name == name) {
            return Err(BadArea::DuplicateName(i));
        }
        let geometry = f.geometry.as_ref().ok_or(BadArea::NotAPolygon(i))?;
        out.push(ParsedArea {
            name,
            outline: outline(&geometry.value, i)?,
        });
    }
    Ok(out)
}

/// The trimmed `name` property when it is a usable name.
fn feature_name(f: &Feature) -> Option<String> {
    let name = f.property("name")?.as_str()?.trim();
    let ok = !name.is_empty() && name.chars().count() <= MAX_NAME && !name.contains('\0');
    ok.then(|| name.to_owned())
}

fn outline(value: &GeometryValue, i: usize) -> Result<MultiPolygon<f64>, BadArea> {
    let polygons: Vec<&Vec<Vec<geojson::Position>>> = match value {
        GeometryValue::Polygon { coordinates } => vec![coordinates],
        GeometryValue::MultiPolygon { coordinates } => coordinates.iter().collect(),
        _ => return Err(BadArea::NotAPolygon(i)),
    };
    if polygons.is_empty() {
        return Err(BadArea::NotAPolygon(i));
    }
    let polygons = polygons
        .into_iter()
        .map(|rings| polygon(rings, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MultiPolygon(polygons))
}

fn polygon(rings: &[Vec<geojson::Position>], i: usize) -> Result<Polygon<f64>, BadArea> {
    let mut rings = rings.iter().map(|r| ring(r, i));
    let exterior = rings.next().ok_or(BadArea::BadRing(i))??;
    let holes = rings.collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, holes))
}

fn ring(positions: &[geojson::Position], i: usize) -> Result<LineString<f64>, BadArea> {
    let coords = positions
        .iter()
        .map(|p| coord(p.as_slice()).ok_or(BadArea::BadPosition(i)))
        .collect::<Result<Vec<_>, _>>()?;
    if coords.len() < 4 || coords.first() != coords.last() {
        return Err(BadArea::BadRing(i));
    }
    Ok(LineString(coords))
}

/// `[lon, lat]` (an altitude may follow and is ignored) within WGS 84's range.
fn coord(p: &[f64]) -> Option<Coord<f64>> {
    let (&lon, &lat) = (p.first()?, p.get(1)?);
    Position::parse(lat, lon).ok().map(|_| Coord { x: lon, y: lat })
}

/// Reads an outline as stored: a GeoJSON Polygon or MultiPolygon geometry.
///
/// # Errors
/// Not such a geometry, or not a valid one.
pub fn outline_from_json(v: serde_json::Value) -> Result<MultiPolygon<f64>, BadArea> {
    let g: Geometry = serde_json::from_value(v).map_err(|e| BadArea::NotGeoJson(e.to_string()))?;
    outline(&g.value, 0)
}

/// The areas as a GeoJSON FeatureCollection with `id` and `name` properties; `extra` adds
/// properties per area (coverage figures, for instance).
pub fn areas_geojson(areas: &[Area], extra: impl Fn(&Area) -> JsonObject) -> FeatureCollection {
    areas
        .iter()
        .map(|a| {
            let mut props = extra(a);
            props.insert("id".into(), a.id.0.to_string().into());
            props.insert("name".into(), a.name.clone().into());
            Feature {
                bbox: None,
                geometry: Some(a.geometry()),
                id: None,
                properties: Some(props),
                foreign_members: None,
            }
        })
        .collect()
}

/// The first area containing `p`, if any.
pub fn area_of(areas: &[Area], p: Position) -> Option<&Area> {
    areas.iter().find(|a| a.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const TWO: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"name":"Midtbyen"},"geometry":{"type":"Polygon",
        "coordinates":[[[10.19,56.14],[10.22,56.14],[10.22,56.165],[10.19,56.165],[10.19,56.14]],
                       [[10.200,56.150],[10.201,56.150],[10.201,56.151],[10.200,56.151],[10.200,56.150]]]}},
      {"type":"Feature","properties":{"name":"Gellerup"},"geometry":{"type":"MultiPolygon",
        "coordinates":[[[[10.13,56.15],[10.15,56.15],[10.15,56.165],[10.13,56.165],[10.13,56.15]]]]}}
    ]}"#;

    fn areas() -> Vec<Area> {
        parse_areas(TWO)
            .unwrap()
            .into_iter()
            .map(|p| Area {
                id: AreaId(Uuid::new_v4()),
                team: TeamId(Uuid::nil()),
                name: p.name,
                outline: p.outline,
            })
            .collect()
    }

    fn pos(lat: f64, lon: f64) -> Position {
        Position::parse(lat, lon).unwrap()
    }

    #[test]
    fn a_point_is_found_in_its_district_and_not_in_a_hole() {
        let a = areas();
        assert_eq!(area_of(&a, pos(56.1563, 10.2038)).unwrap().name, "Midtbyen");
        assert_eq!(area_of(&a, pos(56.1592, 10.1405)).unwrap().name, "Gellerup");
        assert!(area_of(&a, pos(56.1505, 10.2005)).is_none(), "inside the hole");
        assert!(area_of(&a, pos(55.67, 12.56)).is_none());
    }

    #[test]
    fn export_then_import_gives_the_same_outlines() {
        let a = areas();
        let text = areas_geojson(&a, |_| JsonObject::new()).to_string();
        let back = parse_areas(&text).unwrap();
        assert_eq!(back.len(), 2);
        for (x, y) in a.iter().zip(&back) {
            assert_eq!((&x.name, &x.outline), (&y.name, &y.outline));
        }
    }

    #[test]
    fn bad_collections_are_refused_with_the_feature_named() {
        let open_ring = TWO.replacen("[10.19,56.14]]", "[10.19,56.15]]", 1);
        assert_eq!(parse_areas(&open_ring), Err(BadArea::BadRing(0)));
        let twice = TWO.replace("Gellerup", "Midtbyen");
        assert_eq!(parse_areas(&twice), Err(BadArea::DuplicateName(1)));
        let far = TWO.replace("[10.13,56.15],[10.15", "[190.13,56.15],[10.15");
        assert_eq!(parse_areas(&far), Err(BadArea::BadPosition(1)));
        let unnamed = TWO.replace(r#""name":"Gellerup""#, r#""name":"  ""#);
        assert_eq!(parse_areas(&unnamed), Err(BadArea::BadName(1)));
        let point = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"x"},
            "geometry":{"type":"Point","coordinates":[10.0,56.0]}}]}"#;
        assert_eq!(parse_areas(point), Err(BadArea::NotAPolygon(0)));
        assert_eq!(
            parse_areas(r#"{"type":"Point","coordinates":[10.0,56.0]}"#),
            Err(BadArea::NotACollection)
        );
        assert!(matches!(parse_areas("{"), Err(BadArea::NotGeoJson(_))));
        assert_eq!(
            parse_areas(r#"{"type":"FeatureCollection","features":[]}"#),
            Err(BadArea::Empty)
        );
    }
}
