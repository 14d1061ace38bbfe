//! Positions and place shapes on the WGS 84 sphere. Distances are great-circle metres;
//! good to a few metres at city scale, which is all a place radius needs.

use serde::{Deserialize, Serialize};

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A validated WGS 84 position. Construct with [`Position::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("latitude must be within -90..90 and longitude within -180..180")]
pub struct BadPosition;

impl Position {
    /// # Errors
    /// Coordinates out of range or not finite.
    pub fn parse(lat: f64, lon: f64) -> Result<Self, BadPosition> {
        let ok = lat.is_finite()
            && lon.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon);
        if ok {
            Ok(Position { lat, lon })
        } else {
            Err(BadPosition)
        }
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: Position) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// Where a place is: a point with a radius, or a polygon (outer ring, not closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    Circle { center: Position, radius_m: f64 },
    Polygon { ring: Vec<Position> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadShape {
    #[error("a radius must be between 1 and 5000 metres")]
    Radius,
    #[error("a polygon needs at least three corners")]
    TooFewCorners,
}

impl Shape {
    /// # Errors
    /// A radius out of range or a polygon with fewer than three corners.
    pub fn validate(&self) -> Result<(), BadShape> {
        match self {
            Shape::Circle { radius_m, .. } if !(1.0..=5000.0).contains(radius_m) => Err(BadShape::Radius),
            Shape::Polygon { ring } if ring.len() < 3 => Err(BadShape::TooFewCorners),
            _ => Ok(()),
        }
    }

    /// A representative point: the circle's centre or the polygon's vertex mean.
    pub fn center(&self) -> Position {
        match self {
            Shape::Circle { center, .. } => *center,
            Shape::Polygon { ring } => {
                let n = ring.len() as f64;
                Position {
                    lat: ring.iter().map(|p| p.lat).sum::<f64>() / n,
                    lon: ring.iter().map(|p| p.lon).sum::<f64>() / n,
                }
            }
        }
    }

    /// Metres from `p` to the shape's edge; zero inside.
    pub fn distance_m(&self, p: Position) -> f64 {
        match self {
            Shape::Circle { center, radius_m } => (center.distance_m(p) - radius_m).max(0.0),
            Shape::Polygon { ring } if contains(ring, p) => 0.0,
            Shape::Polygon { ring } => ring
                .iter()
                .map(|corner| corner.distance_m(p))
                .fold(f64::INFINITY, f64::min),
        }
    }
}

/// Point in polygon (the `geo` crate's, as areas use); fine for city-sized polygons away from
/// the poles and the antimeridian.
fn contains(ring: &[Position], p: Position) -> bool {
    use ::geo::Contains;
    let ring: ::geo::LineString<f64> = ring.iter().map(|c| ::geo::Coord { x: c.lon, y: c.lat }).collect();
    ::geo::Polygon::new(ring, vec![]).contains(&::geo::Coord { x: p.lon, y: p.lat })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(lat: f64, lon: f64) -> Position {
        Position::parse(lat, lon).unwrap()
    }

    #[test]
    fn out_of_range_coordinates_are_refused() {
        for (lat, lon) in [(90.1, 0.0), (0.0, 180.5), (f64::NAN, 0.0), (0.0, f64::INFINITY)] {
            assert_eq!(Position::parse(lat, lon), Err(BadPosition));
        }
    }

    #[test]
    fn copenhagen_to_aarhus_is_about_157_km() {
        let d = pos(55.6761, 12.5683).distance_m(pos(56.1629, 10.2039));
        assert!((d - 157_000.0).abs() < 2_000.0, "{d}");
    }

    #[test]
    fn a_point_inside_a_polygon_has_distance_zero() {
        let square = Shape::Polygon {
            ring: vec![pos(56.0, 10.0), pos(56.0, 10.1), pos(56.1, 10.1), pos(56.1, 10.0)],
        };
        assert_eq!(square.distance_m(pos(56.05, 10.05)), 0.0);
        assert!(square.distance_m(pos(56.2, 10.05)) > 10_000.0);
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_never_negative(
            a in (-89.0..89.0f64, -179.0..179.0f64), b in (-89.0..89.0f64, -179.0..179.0f64)
        ) {
            let (a, b) = (pos(a.0, a.1), pos(b.0, b.1));
            let (ab, ba) = (a.distance_m(b), b.distance_m(a));
            prop_assert!(ab >= 0.0);
            prop_assert!((ab - ba).abs() < 1e-6);
        }
    }
}
