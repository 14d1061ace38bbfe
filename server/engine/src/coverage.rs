//! Routes and coverage for managers: areas and routes (edit, import, export), the coverage
//! report, and incidents with their place warnings and deadlines.
//!
//! Who may do what, always within their own teams (another team's things are "not found"):
//! - read areas, routes, coverage and incidents: supervisors, managers, admins;
//! - change areas and routes: managers and admins (they plan);
//! - report an incident: anyone in the team (from the phone or the board);
//! - mark an incident's deadline done, or record absence: supervisors, managers, admins.
//!
//! Invariants: a report holds aggregates only, never a person; bad input changes nothing
//! (everything is checked before the one transaction that writes).

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use makker_domain::area::{Area, parse_areas};
use makker_domain::coverage::{self, Builder, CoverageReport, IncidentFact, Params, Plan};
use makker_domain::incident::{self, Duty, Incident, Report};
use makker_domain::place::{Place, Warning, hidden_from};
use makker_domain::route::{Route, parse_routes_geojson, routes_geojson};
use makker_domain::{AreaId, IncidentId, PlaceId, Role, RouteId, TeamId, VisitId, WarningId};
use makker_store::Person;
use uuid::Uuid;

use crate::error::{EngineError, found};
use crate::service::Engine;

type Result<T> = std::result::Result<T, EngineError>;

/// The longest period one report covers.
pub const MAX_REPORT_DAYS: i64 = 400;
/// The largest tolerance before a visit counts as late.
pub const MAX_LATE_MINUTES: u32 = 240;

/// What a report is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub late_after_minutes: u32,
}

/// A route as a planner gives it (the team comes from the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInput {
    pub name: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub stops: Vec<makker_domain::route::Stop>,
}

/// A warning the reporter asks to put on the place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WarningInput {
    pub text: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentInput {
    pub place: Option<PlaceId>,
    pub visit: Option<VisitId>,
    pub report: Report,
    pub warning: Option<WarningInput>,
}

fn invalid(e: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid(e.to_string())
}

/// Readers of a team's plan and figures: supervisors, managers and admins of that team.
fn may_read(me: &Person, team: TeamId) -> Result<()> {
    if !matches!(me.role, Role::Supervisor | Role::Manager | Role::Admin) {
        return Err(EngineError::Forbidden);
    }
    mine(me, team)
}

/// Planners of a team: managers and admins of that team.
fn may_plan(me: &Person, team: TeamId) -> Result<()> {
    if !matches!(me.role, Role::Manager | Role::Admin) {
        return Err(EngineError::Forbidden);
    }
    mine(me, team)
}

fn mine(me: &Person, team: TeamId) -> Result<()> {
    if me.teams.contains(&team) {
        Ok(())
    } else {
        Err(EngineError::NotFound("team"))
    }
}

impl Engine {
    // --- areas --------------------------------------------------------------------------

    /// # Errors
    /// Not a reader of the team.
    pub async fn areas(&self, me: &Person, team: TeamId) -> Result<Vec<Area>> {
        may_read(me, team)?;
        Ok(self.store.areas(team).await?)
    }

    /// Imports areas from a GeoJSON FeatureCollection: an area whose name the team has is
    /// redrawn, the others are added. All or nothing. Returns the team's areas.
    ///
    /// # Errors
    /// Not a planner of the team, or GeoJSON that does not describe areas.
    pub async fn import_areas(&self, me: &Person, team: TeamId, geojson: &str) -> Result<Vec<Area>> {
        may_plan(me, team)?;
        let parsed = parse_areas(geojson).map_err(invalid)?;
        let known = self.store.areas(team).await?;
        let areas: Vec<Area> = parsed
            .into_iter()
            .map(|p| Area {
                id: known
                    .iter()
                    .find(|k| k.name == p.name)
                    .map_or_else(|| AreaId(Uuid::now_v7()), |k| k.id),
                team,
                name: p.name,
                outline: p.outline,
            })
            .collect();
        self.store.save_areas(&areas, self.now()).await?;
        Ok(self.store.areas(team).await?)
    }

    /// # Errors
    /// Not a planner of the team, or no such area in it.
    pub async fn delete_area(&self, me: &Person, team: TeamId, area: AreaId) -> Result<()> {
        may_plan(me, team)?;
        found(self.store.delete_area(team, area).await, "area")
    }

    // --- routes -------------------------------------------------------------------------

    /// The team's routes, without the stops at places I may not see (a manager's homes).
    ///
    /// # Errors
    /// Not a reader of the team.
    pub async fn routes(&self, me: &Person, team: TeamId) -> Result<Vec<Route>> {
        Ok(self.routes_seen(me, team).await?.0)
    }

    /// The team's routes as I may see them, and the team's places.
    async fn routes_seen(&self, me: &Person, team: TeamId) -> Result<(Vec<Route>, Vec<Place>)> {
        may_read(me, team)?;
        let places = self.store.places(&[team]).await?;
        let hidden = hidden_from(me.role, &places);
        let routes = self.store.routes(team).await?;
        let seen = routes.into_iter().map(|r| r.without_stops_at(&hidden)).collect();
        Ok((seen, places))
    }

    /// Checks a route against its team's `places` and the rules of a route. Its stops must be
    /// at places the planner sees; the `hidden` stops of `known` (the route as saved) are kept.
    fn checked_route(
        team: TeamId,
        id: RouteId,
        input: RouteInput,
        (places, hidden): (&[Place], &HashSet<PlaceId>),
        known: Option<&Route>,
    ) -> Result<Route> {
        let shown = |id: PlaceId| places.iter().any(|p| p.id == id) && !hidden.contains(&id);
        if let Some(s) = input.stops.iter().find(|s| !shown(s.place)) {
            return Err(EngineError::Invalid(format!(
                "place {} is not one of this team's places",
                s.place
            )));
        }
        let route = Route {
            id,
            team,
            name: input.name.trim().to_owned(),
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            stops: input.stops,
        };
        let route = match known {
            Some(k) => route.keeping_stops_at(k, hidden),
            None => route,
        };
        route.validate_input().map_err(invalid)?;
        Ok(route)
    }

    /// Creates a route, or replaces one (`id` given) with all its stops; a manager's edit
    /// keeps the home stops it cannot see. Returns the route as I may see it.
    ///
    /// # Errors
    /// Not a planner of the team, an unknown route, or a route that does not validate.
    pub async fn save_route(
        &self,
        me: &Person,
        team: TeamId,
        id: Option<RouteId>,
        input: RouteInput,
    ) -> Result<Route> {
        may_plan(me, team)?;
        let known = match id {
            Some(id) => match found(self.store.route(id).await, "route")? {
                k if k.team == team => Some(k),
                _ => return Err(EngineError::NotFound("route")),
            },
            None => None,
        };
        let places = self.store.places(&[team]).await?;
        let hidden = hidden_from(me.role, &places);
        let id = id.unwrap_or_else(|| RouteId(Uuid::now_v7()));
        let route = Self::checked_route(team, id, input, (&places, &hidden), known.as_ref())?;
        self.store
            .save_routes(std::slice::from_ref(&route), self.now())
            .await?;
        Ok(route.without_stops_at(&hidden))
    }

    /// The team's routes as GeoJSON (a point per stop I may see).
    ///
    /// # Errors
    /// Not a reader of the team.
    pub async fn routes_geojson(&self, me: &Person, team: TeamId) -> Result<geojson::FeatureCollection> {
        let (routes, places) = self.routes_seen(me, team).await?;
        Ok(routes_geojson(&routes, |id| {
            places
                .iter()
                .find(|p| p.id == id)
                .map(|p| (p.name.clone(), p.shape.center()))
        }))
    }

    /// Imports routes from GeoJSON as [`Engine::routes_geojson`] writes them: a route whose
    /// name the team has is replaced with all its stops (a manager's import keeps the home
    /// stops it cannot see), the others are added. All or nothing.
    ///
    /// # Errors
    /// Not a planner of the team, malformed GeoJSON, a place not the team's (by id, or by a
    /// name that is not exactly one place's), or a route that does not validate.
    pub async fn import_routes(&self, me: &Person, team: TeamId, geojson: &str) -> Result<Vec<Route>> {
        may_plan(me, team)?;
        let places = self.store.places(&[team]).await?;
        let hidden = hidden_from(me.role, &places);
        let shown: Vec<Place> = places
            .iter()
            .filter(|p| !hidden.contains(&p.id))
            .cloned()
            .collect();
        let parsed =
            parse_routes_geojson(geojson, |id, name| resolve_place(&shown, id, name)).map_err(invalid)?;
        let known = self.store.routes(team).await?;
        let mut routes = Vec::with_capacity(parsed.len());
        for p in parsed {
            let same = known.iter().find(|k| k.name == p.name);
            let id = same.map_or_else(|| RouteId(Uuid::now_v7()), |k| k.id);
            let input = RouteInput {
                name: p.name,
                valid_from: p.valid_from,
                valid_until: p.valid_until,
                stops: p.stops,
            };
            routes.push(Self::checked_route(team, id, input, (&places, &hidden), same)?);
        }
        self.store.save_routes(&routes, self.now()).await?;
        self.routes(me, team).await
    }

    // --- coverage -----------------------------------------------------------------------

    /// The coverage report of `team` for local dates `from..=to`, judged now.
    ///
    /// # Errors
    /// Not a reader of the team, reversed dates, a period over 400 days, or a tolerance over
    /// four hours.
    pub async fn coverage(&self, me: &Person, team: TeamId, q: ReportQuery) -> Result<CoverageReport> {
        may_read(me, team)?;
        if q.to < q.from || (q.to - q.from).num_days() >= MAX_REPORT_DAYS {
            return Err(EngineError::Invalid(format!(
                "a report covers 1 to {MAX_REPORT_DAYS} days, from a date to a later one"
            )));
        }
        let calendar = coverage::calendar();
        if !calendar.contains(&q.from) || !calendar.contains(&q.to) {
            return Err(EngineError::Invalid(
                "report dates lie between 2000 and 2100".into(),
            ));
        }
        if q.late_after_minutes > MAX_LATE_MINUTES {
            return Err(EngineError::Invalid(format!(
                "late_after_minutes is at most {MAX_LATE_MINUTES}"
            )));
        }
        let t = found(self.store.team(team).await, "team")?;
        let zone = coverage::team_zone(&t.time_zone);
        let (routes, places, areas) = (
            self.store.routes(team).await?,
            self.store.places(&[team]).await?,
            self.store.areas(team).await?,
        );
        let plan = Plan::new(zone, &routes, &places, &areas);
        let params = Params {
            zone,
            from: q.from,
            to: q.to,
            now: self.now(),
            late_after_minutes: q.late_after_minutes,
        };
        let mut builder = Builder::new(params);
        let (first, last) = params.visits_needed();
        self.store
            .visit_facts(team, first, last, &mut |v| builder.add_visit(&v))
            .await?;
        let (start, end) = params.span();
        let alarms = self.store.alarm_facts(team, start, end).await?;
        let incidents: Vec<IncidentFact> = self
            .store
            .incidents(team, start, end)
            .await?
            .iter()
            .map(|i| IncidentFact {
                place: i.place,
                kind: i.kind,
                occurred_at: i.occurred_at,
            })
            .collect();
        let hidden = hidden_from(me.role, &places);
        Ok(builder.finish(&plan, &alarms, &incidents).without_places(&hidden))
    }

    // --- incidents ----------------------------------------------------------------------

    /// Reports an incident at a place of my team, tied to a visit I took part in (or, for a
    /// supervisor and above, any visit of the team), optionally warning the next worker there.
    ///
    /// # Errors
    /// Neither place nor visit, a place or visit not mine, or a report that does not hold.
    pub async fn report_incident(&self, me: &Person, input: IncidentInput) -> Result<Incident> {
        let now = self.now();
        let visit = match input.visit {
            Some(id) => Some(self.incident_visit(me, id).await?),
            None => None,
        };
        let place_id = input
            .place
            .or(visit.as_ref().map(|v| v.place))
            .ok_or_else(|| EngineError::Invalid("an incident needs a place or a visit".into()))?;
        let place = self.team_place(me, place_id).await?;
        if visit.as_ref().is_some_and(|v| v.team != place.team) {
            return Err(EngineError::Invalid(
                "the visit and the place are in different teams".into(),
            ));
        }
        let mut incident = input
            .report
            .accept(
                IncidentId(Uuid::now_v7()),
                place.team,
                place.id,
                visit.map(|v| v.id),
                me.id,
                now,
            )
            .map_err(invalid)?;
        let warning = match input.warning {
            Some(w) => Some(warning_for(&incident, w, now)?),
            None => None,
        };
        incident.warning = warning.as_ref().map(|w| w.id);
        self.store.insert_incident(&incident, warning.as_ref()).await?;
        Ok(incident)
    }

    async fn incident_visit(&self, me: &Person, id: VisitId) -> Result<makker_domain::visit::Visit> {
        let v = found(self.store.visit(id).await, "visit")?.value;
        let took_part = v.participants.iter().any(|p| p.person == me.id);
        let oversees = me.role != Role::Worker && me.teams.contains(&v.team);
        if took_part || oversees {
            Ok(v)
        } else {
            Err(EngineError::NotFound("visit"))
        }
    }

    /// The team's places by name, each with the warnings that apply now: for the board's map,
    /// a lone-visit approval and a route's stops. Homes only for supervisors and admins, who
    /// answer for visits there; a manager plans the public places and sees aggregates.
    ///
    /// # Errors
    /// Not a reader of the team.
    pub async fn team_places(&self, me: &Person, team: TeamId) -> Result<Vec<(Place, Vec<Warning>)>> {
        may_read(me, team)?;
        let mut places = self.store.places(&[team]).await?;
        let hidden = hidden_from(me.role, &places);
        places.retain(|p| !hidden.contains(&p.id));
        places.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::with_capacity(places.len());
        for place in places {
            let warnings = self.warnings_now(place.id).await?;
            out.push((place, warnings));
        }
        Ok(out)
    }

    async fn team_place(&self, me: &Person, id: PlaceId) -> Result<Place> {
        let place = found(self.store.place(id).await, "place")?;
        mine(me, place.team).map_err(|_| EngineError::NotFound("place"))?;
        Ok(place)
    }

    /// The team's incidents that happened on local dates `from..=to` (UTC days), newest first;
    /// or, with `pending`, those with a deadline not yet done, soonest first.
    ///
    /// # Errors
    /// Not a reader of the team.
    pub async fn incidents(
        &self,
        me: &Person,
        team: TeamId,
        period: Option<(NaiveDate, NaiveDate)>,
        pending: bool,
    ) -> Result<Vec<Incident>> {
        may_read(me, team)?;
        if pending {
            return Ok(self.store.incidents_pending(team).await?);
        }
        let calendar = coverage::calendar();
        if period.is_some_and(|(a, b)| !calendar.contains(&a) || !calendar.contains(&b)) {
            return Err(EngineError::Invalid("dates lie between 2000 and 2100".into()));
        }
        let (from, to) = match period {
            Some((a, b)) => (day_start(a), day_start(b) + Duration::days(1)),
            // Every incident: bounds both databases can store.
            None => (DateTime::<Utc>::UNIX_EPOCH, day_start(far_future())),
        };
        Ok(self.store.incidents(team, from, to).await?)
    }

    async fn overseen_incident(&self, me: &Person, id: IncidentId) -> Result<Incident> {
        let i = found(self.store.incident(id).await, "incident")?;
        match may_read(me, i.team) {
            Err(EngineError::NotFound(_)) => Err(EngineError::NotFound("incident")),
            Err(e) => Err(e),
            Ok(()) => Ok(i),
        }
    }

    /// Marks one of an incident's deadlines done (again: keeps the first time).
    ///
    /// # Errors
    /// Not a reader of the incident's team, or the incident has no such deadline.
    pub async fn incident_done(&self, me: &Person, id: IncidentId, duty: Duty) -> Result<Incident> {
        let mut i = self.overseen_incident(me, id).await?;
        i.mark_done(duty, self.now()).map_err(invalid)?;
        self.store.save_incident_deadlines(&i).await?;
        Ok(i)
    }

    /// Records that absence followed, from `from`: the authority's notice becomes due.
    ///
    /// # Errors
    /// Not a reader of the incident's team, or absence from before the incident.
    pub async fn incident_absence(
        &self,
        me: &Person,
        id: IncidentId,
        from: DateTime<Utc>,
    ) -> Result<Incident> {
        let mut i = self.overseen_incident(me, id).await?;
        i.absence_from(from).map_err(invalid)?;
        self.store.save_incident_deadlines(&i).await?;
        Ok(i)
    }
}

fn far_future() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("BUG: a valid date")
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A place is named by id, or by a name exactly one of the team's places has.
fn resolve_place(places: &[Place], id: Option<Uuid>, name: Option<&str>) -> Option<PlaceId> {
    if let Some(id) = id {
        return places.iter().find(|p| p.id.0 == id).map(|p| p.id);
    }
    let mut named = places.iter().filter(|p| Some(p.name.as_str()) == name);
    match (named.next(), named.next()) {
        (Some(p), None) => Some(p.id),
        _ => None,
    }
}

fn warning_for(i: &Incident, w: WarningInput, now: DateTime<Utc>) -> Result<Warning> {
    let text = match w.text.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => incident::default_warning_text(i.kind).to_owned(),
    };
    if text.chars().count() > 200 || text.contains('\0') {
        return Err(EngineError::Invalid(
            "a warning's text is at most 200 characters".into(),
        ));
    }
    Ok(Warning {
        id: WarningId(Uuid::now_v7()),
        place: i.place,
        kind: i.kind.warning_kind(),
        text,
        created_at: now,
        expires_at: incident::warning_expiry(w.expires_at, now).map_err(invalid)?,
    })
}
