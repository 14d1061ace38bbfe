//! Routes: where and when a team plans to be. Coverage (visits against stops) builds on these.

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
}
