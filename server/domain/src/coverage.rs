//! Coverage: the planned stops of a team's routes against the visits that happened.
//!
//! A stop occurs once on each of its weekdays within its route's validity, as a window between
//! two local times of the team's zone. A visit is *at* a stop when it took place at the stop's
//! place, or where the place's shape (a radius or an area) contains it. The window is
//! *covered* when a visit at the stop was under way inside it and started no later than the
//! tolerance after opening, *late* when the first such visit started later, else *missed*.
//! Only windows that closed before `now` are judged.
//!
//! Invariants (property-tested below):
//! - a visit never covers a window it does not overlap;
//! - moving a visit nearer a stop's shape never lowers coverage;
//! - every figure's `planned` is `covered + late + missed`, and every grouping sums to the totals.
//!
//! Privacy: the input carries no person, and the report names none; it holds counts only.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::area::{Area, area_of};
use crate::geo::{Position, Shape};
use crate::incident::IncidentKind;
use crate::place::Place;
use crate::route::Route;
use crate::{AreaId, PlaceId, RouteId};

/// Weeks a gap is looked for in, back from the end of the report.
pub const GAP_WEEKS: i64 = 4;
/// The longest visit we look back for: one that started this long before a window can still
/// overlap it.
pub const MAX_VISIT_HOURS: i64 = 24;
/// The default tolerance after a window opens before a visit counts as late.
pub const DEFAULT_LATE_MINUTES: u32 = 15;

/// The first and last dates plans and reports may name: far enough for any real plan, near
/// enough that date arithmetic never overflows and both databases store every instant.
pub fn calendar() -> std::ops::RangeInclusive<NaiveDate> {
    let day = |y| NaiveDate::from_ymd_opt(y, 1, 1).expect("BUG: a valid date");
    day(2000)..=day(2100)
}

/// The zone a team's times are local to: its own, or Copenhagen's when the name is unknown.
pub fn team_zone(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::Europe::Copenhagen)
}

/// One planned stop, with what the report needs of its route, place and area.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStop {
    pub route: RouteId,
    /// The stop's position on its route.
    pub position: u32,
    pub place: PlaceId,
    pub shape: Shape,
    pub area: Option<AreaId>,
    pub weekday: Weekday,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

/// A team's plan: its stops, and the names the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub zone: Tz,
    pub stops: Vec<PlannedStop>,
    pub routes: BTreeMap<RouteId, String>,
    pub areas: BTreeMap<AreaId, String>,
    pub places: HashMap<PlaceId, (String, Position)>,
}

impl Plan {
    /// A stop belongs to the first area that contains its place's centre. Stops at places not
    /// among `places` are left out (the store never has them).
    pub fn new(zone: Tz, routes: &[Route], places: &[Place], areas: &[Area]) -> Plan {
        let by_id: HashMap<PlaceId, &Place> = places.iter().map(|p| (p.id, p)).collect();
        let stops = routes
            .iter()
            .flat_map(|r| r.stops.iter().enumerate().map(move |(i, s)| (r, i, s)))
            .filter_map(|(r, i, s)| {
                let place = by_id.get(&s.place)?;
                Some(PlannedStop {
                    route: r.id,
                    position: u32::try_from(i).unwrap_or(u32::MAX),
                    place: s.place,
                    shape: place.shape.clone(),
                    area: area_of(areas, place.shape.center()).map(|a| a.id),
                    weekday: s.weekday,
                    opens: s.opens,
                    closes: s.closes,
                    valid_from: r.valid_from,
                    valid_until: r.valid_until,
                })
            })
            .collect();
        Plan {
            zone,
            stops,
            routes: routes.iter().map(|r| (r.id, r.name.clone())).collect(),
            areas: areas.iter().map(|a| (a.id, a.name.clone())).collect(),
            places: places
                .iter()
                .map(|p| (p.id, (p.name.clone(), p.shape.center())))
                .collect(),
        }
    }
}

/// One occurrence of a stop: its local date and its window in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub date: NaiveDate,
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

/// The instant a local wall-clock time names. In the autumn's repeated hour the first is
/// meant; a time that the spring's jump skips is read as the same time after the jump.
pub fn local_instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(time);
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(local + Duration::hours(1))).earliest())
        .expect("BUG: an hour after a skipped local time exists")
        .with_timezone(&Utc)
}

/// The stop's windows on local dates `from..until` (until exclusive) within its validity.
pub fn windows(
    stop: &PlannedStop,
    zone: Tz,
    from: NaiveDate,
    until: NaiveDate,
) -> impl Iterator<Item = Window> {
    let first = from.max(stop.valid_from);
    let end = stop
        .valid_until
        .and_then(|u| u.succ_opt())
        .map_or(until, |u| u.min(until));
    let offset = (7 + i64::from(stop.weekday.num_days_from_monday())
        - i64::from(first.weekday().num_days_from_monday()))
        % 7;
    let start = first + Duration::days(offset);
    let (opens, closes) = (stop.opens, stop.closes);
    std::iter::successors(Some(start), |d| d.checked_add_signed(Duration::days(7)))
        .take_while(move |d| *d < end)
        .map(move |date| Window {
            date,
            opens: local_instant(zone, date, opens),
            closes: local_instant(zone, date, closes),
        })
}

/// What a visit contributes to coverage. No person: coverage never identifies a worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisitFact {
    pub place: PlaceId,
    /// Where the visit was: the centre of its place.
    pub at: Position,
    pub started_at: DateTime<Utc>,
    /// `None` while the visit is under way.
    pub ended_at: Option<DateTime<Utc>>,
    /// How many took part; a store may stop counting at 2 where the policy asked for fewer
    /// than 3, as the figures only ask whether two took part and whether enough did.
    pub participants: u8,
    /// How many the policy asked for at the start.
    pub required: u8,
    /// A partner left early and the rest went on alone.
    pub pair_broke: bool,
}

impl VisitFact {
    /// Kept the two-person rule: as many as the policy asked for, throughout.
    pub fn met_policy(&self) -> bool {
        self.participants >= self.required && !(self.required >= 2 && self.pair_broke)
    }

    /// The visit's span in seconds; an open visit is taken as under way until `now`.
    fn span(&self, now: DateTime<Utc>) -> (i64, i64) {
        let s = self.started_at.timestamp();
        let e = self.ended_at.unwrap_or(now).timestamp().max(s);
        (s, e)
    }
}

/// Whether a visit was at a stop: at its place, or inside its radius or area.
pub fn at_stop(stop: &PlannedStop, v: &VisitFact) -> bool {
    v.place == stop.place || stop.shape.distance_m(v.at) == 0.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Covered,
    Late,
    Missed,
}

/// Judges a window from the spans (start, end in seconds) of the visits at its stop.
fn judge(w: &Window, late_after: Duration, spans: impl Iterator<Item = (i64, i64)>) -> Outcome {
    let (open, close) = (w.opens.timestamp(), w.closes.timestamp());
    let first = spans
        .filter(|&(s, e)| s < close && (s >= open || e > open))
        .map(|(s, _)| s)
        .min();
    match first {
        None => Outcome::Missed,
        Some(s) if s <= open + late_after.num_seconds() => Outcome::Covered,
        Some(_) => Outcome::Late,
    }
}

/// The outcome of one window, from every visit (the plain reading of the rules; the report
/// gets the same answer from an index).
pub fn outcome(
    stop: &PlannedStop,
    w: &Window,
    visits: &[VisitFact],
    late_after: Duration,
    now: DateTime<Utc>,
) -> Outcome {
    let spans = visits.iter().filter(|v| at_stop(stop, v)).map(|v| v.span(now));
    judge(w, late_after, spans)
}

/// Counts of judged windows. `planned` is always `covered + late + missed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    pub planned: u32,
    pub covered: u32,
    pub late: u32,
    pub missed: u32,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        self.planned += 1;
        match o {
            Outcome::Covered => self.covered += 1,
            Outcome::Late => self.late += 1,
            Outcome::Missed => self.missed += 1,
        }
    }

    /// Windows reached at all (on time or late), as a share of those planned.
    pub fn reached_share(&self) -> Option<f64> {
        share(self.covered + self.late, self.planned)
    }
}

fn share(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeekTally {
    /// ISO 8601 week-numbering year and week of the windows' local dates.
    pub year: i32,
    pub week: u32,
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AreaTally {
    /// `None` for stops outside every area.
    pub area_id: Option<Uuid>,
    pub name: Option<String>,
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouteTally {
    pub route_id: Uuid,
    pub name: String,
    pub tally: Tally,
}

/// One cell of the weekday × hour heat map: windows opening then, and visits starting then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeatCell {
    /// 1 = Monday … 7 = Sunday, local.
    pub weekday: u8,
    /// 0…23, local.
    pub hour: u8,
    pub tally: Tally,
    pub visits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StopTally {
    pub route_id: Uuid,
    pub position: u32,
    pub place_id: Uuid,
    pub place_name: String,
    pub lat: f64,
    pub lon: f64,
    pub area_id: Option<Uuid>,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    pub tally: Tally,
}

/// Visits (contacts) at a place: a count, never who.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceVisits {
    pub place_id: Uuid,
    pub name: String,
    pub visits: u32,
}

/// How visits kept the two-person rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoPerson {
    pub visits: u32,
    /// Made by two or more.
    pub by_two: u32,
    /// As many as the policy asked for, throughout (no partner left early).
    pub met_policy: u32,
    pub met_policy_share: Option<f64>,
}

/// What an alarm contributes: when it was raised and acknowledged. No person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmFact {
    pub raised_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub drill: bool,
}

/// Time to acknowledge, as alarm receiving centres measure it (BS 8484: within 10 s and
/// 40 s). Shares count every alarm, so one never acknowledged counts against them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckStats {
    pub alarms: u32,
    pub acknowledged: u32,
    /// Seconds, nearest-rank, of the acknowledged alarms.
    pub median_s: Option<f64>,
    pub p90_s: Option<f64>,
    pub within_10s_share: Option<f64>,
    pub within_40s_share: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // n is small enough for f64 to count it exactly; the rank is in 1..=n.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

pub fn ack_stats<'a>(alarms: impl IntoIterator<Item = &'a AlarmFact>) -> AckStats {
    let mut count = 0u32;
    let mut secs: Vec<f64> = Vec::new();
    for a in alarms {
        count += 1;
        if let Some(at) = a.acknowledged_at {
            #[allow(clippy::cast_precision_loss)]
            secs.push((at - a.raised_at).num_milliseconds().max(0) as f64 / 1000.0);
        }
    }
    secs.sort_by(f64::total_cmp);
    let within = |limit: f64| u32::try_from(secs.iter().filter(|s| **s <= limit).count()).unwrap_or(u32::MAX);
    AckStats {
        alarms: count,
        acknowledged: u32::try_from(secs.len()).unwrap_or(u32::MAX),
        median_s: percentile(&secs, 0.5),
        p90_s: percentile(&secs, 0.9),
        within_10s_share: share(within(10.0), count),
        within_40s_share: share(within(40.0), count),
    }
}

/// What an incident contributes to the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentFact {
    pub place: PlaceId,
    pub kind: IncidentKind,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentCount {
    pub place_id: Uuid,
    pub place_name: String,
    pub kind: IncidentKind,
    pub count: u32,
}

/// A stop missed in most of its windows over the last [`GAP_WEEKS`] weeks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gap {
    pub route_id: Uuid,
    pub route_name: String,
    pub position: u32,
    pub place_id: Uuid,
    pub place_name: String,
    pub weekday: u8,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    pub tally: Tally,
}

/// Everything a manager sees for a period: aggregates only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoverageReport {
    /// First and last local date of the period.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    pub late_after_minutes: u32,
    /// Windows closing after this were not judged yet.
    pub as_of: DateTime<Utc>,
    pub totals: Tally,
    pub weeks: Vec<WeekTally>,
    pub areas: Vec<AreaTally>,
    pub routes: Vec<RouteTally>,
    /// Only cells with a window or a visit.
    pub heat: Vec<HeatCell>,
    pub stops: Vec<StopTally>,
    /// Visits per place in the period, most first.
    pub places: Vec<PlaceVisits>,
    pub two_person: TwoPerson,
    /// Real alarms raised in the period (drills apart).
    pub alarms: AckStats,
    pub drills: AckStats,
    pub incidents: Vec<IncidentCount>,
    /// Over the four weeks before the period's end (or now, if earlier).
    pub gaps: Vec<Gap>,
}

impl CoverageReport {
    /// The report without the figures of single `hidden` places: their stops, gaps, visits
    /// and incidents by place. The totals and the tallies by week, area, route and hour still
    /// count them, as aggregates.
    #[must_use]
    pub fn without_places(mut self, hidden: &HashSet<PlaceId>) -> Self {
        let shown = |id: &Uuid| !hidden.contains(&PlaceId(*id));
        self.stops.retain(|s| shown(&s.place_id));
        self.places.retain(|p| shown(&p.place_id));
        self.incidents.retain(|i| shown(&i.place_id));
        self.gaps.retain(|g| shown(&g.place_id));
        self
    }
}

/// What a report is asked for: local dates `from..=to`, judged at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub zone: Tz,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub now: DateTime<Utc>,
    pub late_after_minutes: u32,
}

impl Params {
    fn period(&self) -> (NaiveDate, NaiveDate) {
        (self.from, self.to.succ_opt().unwrap_or(self.to))
    }

    /// The local dates gaps are looked for in: four weeks back from the period's end, or from
    /// today when the period reaches into the future.
    fn gap_period(&self) -> (NaiveDate, NaiveDate) {
        let today = self.now.with_timezone(&self.zone).date_naive();
        let end = self.period().1.min(today.succ_opt().unwrap_or(today));
        (end - Duration::weeks(GAP_WEEKS), end)
    }

    fn start_of(&self, d: NaiveDate) -> DateTime<Utc> {
        local_instant(self.zone, d, NaiveTime::MIN)
    }

    /// Visits that started in this span (UTC) are all a report needs.
    pub fn visits_needed(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let ((a, b), (c, d)) = (self.period(), self.gap_period());
        let from = self.start_of(a.min(c)) - Duration::hours(MAX_VISIT_HOURS);
        (from, self.start_of(b.max(d)))
    }

    /// The period in UTC, for the figures about visits, alarms and incidents.
    pub fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let (a, b) = self.period();
        (self.start_of(a), self.start_of(b))
    }

    fn late_after(&self) -> Duration {
        Duration::minutes(i64::from(self.late_after_minutes))
    }
}

/// The visits at one place (and position), by start: an index for judging windows.
#[derive(Debug)]
struct Group {
    place: PlaceId,
    at: Position,
    spans: Vec<(i64, i64)>,
    longest: i64,
}

impl Group {
    /// The spans that may overlap a window: started no earlier than the longest span before it.
    fn near(&self, w: &Window) -> impl Iterator<Item = (i64, i64)> + '_ {
        let earliest = w.opens.timestamp() - self.longest;
        let close = w.closes.timestamp();
        let first = self.spans.partition_point(|(s, _)| *s < earliest);
        self.spans[first..]
            .iter()
            .copied()
            .take_while(move |(s, _)| *s < close)
    }
}

/// Builds a report from visits fed one at a time (a store streams them), so a year of a large
/// municipality never has to be in memory as rows.
#[derive(Debug)]
pub struct Builder {
    params: Params,
    span: (DateTime<Utc>, DateTime<Utc>),
    groups: Vec<Group>,
    group_of: HashMap<(PlaceId, u64, u64), usize>,
    visits_at: HashMap<PlaceId, u32>,
    visits_heat: HashMap<(u8, u8), u32>,
    two_person: TwoPerson,
}

fn weekday_number(d: Weekday) -> u8 {
    u8::try_from(d.number_from_monday()).expect("BUG: 1..=7 fits")
}

impl Builder {
    pub fn new(params: Params) -> Self {
        Builder {
            span: params.span(),
            params,
            groups: Vec::new(),
            group_of: HashMap::new(),
            visits_at: HashMap::new(),
            visits_heat: HashMap::new(),
            two_person: TwoPerson::default(),
        }
    }

    pub fn add_visit(&mut self, v: &VisitFact) {
        let key = (v.place, v.at.lat.to_bits(), v.at.lon.to_bits());
        let i = *self.group_of.entry(key).or_insert_with(|| {
            self.groups.push(Group {
                place: v.place,
                at: v.at,
                spans: Vec::new(),
                longest: 0,
            });
            self.groups.len() - 1
        });
        let (s, e) = v.span(self.params.now);
        let g = &mut self.groups[i];
        g.spans.push((s, e));
        g.longest = g.longest.max(e - s);
        if (self.span.0..self.span.1).contains(&v.started_at) {
            self.count_visit(v);
        }
    }

    fn count_visit(&mut self, v: &VisitFact) {
        *self.visits_at.entry(v.place).or_default() += 1;
        let local = v.started_at.with_timezone(&self.params.zone);
        let hour = u8::try_from(local.hour()).expect("BUG: an hour fits");
        *self
            .visits_heat
            .entry((weekday_number(local.weekday()), hour))
            .or_default() += 1;
        let t = &mut self.two_person;
        t.visits += 1;
        t.by_two += u32::from(v.participants >= 2);
        t.met_policy += u32::from(v.met_policy());
    }

    /// The windows of `stop` in local dates `from..until` that closed by now, judged.
    fn judged<'a>(
        &'a self,
        stop: &'a PlannedStop,
        from: NaiveDate,
        until: NaiveDate,
    ) -> impl Iterator<Item = (Window, Outcome)> + 'a {
        let groups: Vec<&Group> = self
            .groups
            .iter()
            .filter(|g| g.place == stop.place || stop.shape.distance_m(g.at) == 0.0)
            .collect();
        let (now, late_after) = (self.params.now, self.params.late_after());
        windows(stop, self.params.zone, from, until)
            .take_while(move |w| w.closes <= now)
            .map(move |w| {
                let spans = groups.iter().flat_map(|g| g.near(&w));
                (w, judge(&w, late_after, spans))
            })
    }

    /// The report, with the plan, and the alarms and incidents of the period.
    pub fn finish(mut self, plan: &Plan, alarms: &[AlarmFact], incidents: &[IncidentFact]) -> CoverageReport {
        for g in &mut self.groups {
            g.spans.sort_unstable();
        }
        let (from, until) = self.params.period();
        let mut acc = Figures::default();
        for stop in &plan.stops {
            let mut tally = Tally::default();
            for (w, o) in self.judged(stop, from, until) {
                tally.add(o);
                acc.add(stop, &w, o, self.params.zone);
            }
            acc.stops.push(stop_tally(plan, stop, tally));
        }
        let gaps = self.gaps(plan);
        let in_span = |t: &DateTime<Utc>| (self.span.0..self.span.1).contains(t);
        let (drills, real): (Vec<&AlarmFact>, Vec<&AlarmFact>) = alarms
            .iter()
            .filter(|a| in_span(&a.raised_at))
            .partition(|a| a.drill);
        CoverageReport {
            from: self.params.from,
            to: self.params.to,
            time_zone: self.params.zone.name().to_owned(),
            late_after_minutes: self.params.late_after_minutes,
            as_of: self.params.now,
            totals: acc.totals,
            weeks: acc
                .weeks
                .into_iter()
                .map(|((year, week), tally)| WeekTally { year, week, tally })
                .collect(),
            areas: acc
                .areas
                .into_iter()
                .map(|(a, tally)| AreaTally {
                    area_id: a.map(|a| a.0),
                    name: a.and_then(|a| plan.areas.get(&a).cloned()),
                    tally,
                })
                .collect(),
            routes: acc
                .routes
                .into_iter()
                .map(|(r, tally)| RouteTally {
                    route_id: r.0,
                    name: plan.routes.get(&r).cloned().unwrap_or_default(),
                    tally,
                })
                .collect(),
            heat: heat(acc.heat, &self.visits_heat),
            stops: acc.stops,
            places: place_visits(plan, &self.visits_at),
            two_person: TwoPerson {
                met_policy_share: share(self.two_person.met_policy, self.two_person.visits),
                ..self.two_person
            },
            alarms: ack_stats(real),
            drills: ack_stats(drills),
            incidents: incident_counts(plan, incidents.iter().filter(|i| in_span(&i.occurred_at))),
            gaps,
        }
    }

    fn gaps(&self, plan: &Plan) -> Vec<Gap> {
        let (from, until) = self.params.gap_period();
        plan.stops
            .iter()
            .filter_map(|stop| {
                let mut tally = Tally::default();
                self.judged(stop, from, until).for_each(|(_, o)| tally.add(o));
                (tally.missed * 2 > tally.planned).then(|| {
                    let s = stop_tally(plan, stop, tally);
                    Gap {
                        route_id: s.route_id,
                        route_name: plan.routes.get(&stop.route).cloned().unwrap_or_default(),
                        position: s.position,
                        place_id: s.place_id,
                        place_name: s.place_name,
                        weekday: s.weekday,
                        opens: s.opens,
                        closes: s.closes,
                        tally,
                    }
                })
            })
            .collect()
    }
}

/// The groupings of judged windows, as they are summed.
#[derive(Default)]
struct Figures {
    totals: Tally,
    weeks: BTreeMap<(i32, u32), Tally>,
    areas: BTreeMap<Option<AreaId>, Tally>,
    routes: BTreeMap<RouteId, Tally>,
    heat: BTreeMap<(u8, u8), Tally>,
    stops: Vec<StopTally>,
}

impl Figures {
    fn add(&mut self, stop: &PlannedStop, w: &Window, o: Outcome, zone: Tz) {
        let week = w.date.iso_week();
        let hour = u8::try_from(w.opens.with_timezone(&zone).hour()).expect("BUG: an hour fits");
        self.totals.add(o);
        self.weeks.entry((week.year(), week.week())).or_default().add(o);
        self.areas.entry(stop.area).or_default().add(o);
        self.routes.entry(stop.route).or_default().add(o);
        self.heat
            .entry((weekday_number(w.date.weekday()), hour))
            .or_default()
            .add(o);
    }
}

fn stop_tally(plan: &Plan, stop: &PlannedStop, tally: Tally) -> StopTally {
    let (name, center) = plan
        .places
        .get(&stop.place)
        .cloned()
        .unwrap_or_else(|| (String::new(), stop.shape.center()));
    StopTally {
        route_id: stop.route.0,
        position: stop.position,
        place_id: stop.place.0,
        place_name: name,
        lat: center.lat,
        lon: center.lon,
        area_id: stop.area.map(|a| a.0),
        weekday: weekday_number(stop.weekday),
        opens: stop.opens,
        closes: stop.closes,
        tally,
    }
}

fn heat(windows: BTreeMap<(u8, u8), Tally>, visits: &HashMap<(u8, u8), u32>) -> Vec<HeatCell> {
    let mut cells: BTreeMap<(u8, u8), (Tally, u32)> = windows.into_iter().map(|(k, t)| (k, (t, 0))).collect();
    for (k, n) in visits {
        cells.entry(*k).or_default().1 = *n;
    }
    cells
        .into_iter()
        .map(|((weekday, hour), (tally, visits))| HeatCell {
            weekday,
            hour,
            tally,
            visits,
        })
        .collect()
}

fn place_name(plan: &Plan, place: PlaceId) -> String {
    plan.places.get(&place).map(|p| p.0.clone()).unwrap_or_default()
}

fn place_visits(plan: &Plan, counts: &HashMap<PlaceId, u32>) -> Vec<PlaceVisits> {
    let mut out: Vec<PlaceVisits> = counts
        .iter()
        .map(|(p, n)| PlaceVisits {
            place_id: p.0,
            name: place_name(plan, *p),
            visits: *n,
        })
        .collect();
    out.sort_by(|a, b| b.visits.cmp(&a.visits).then_with(|| a.name.cmp(&b.name)));
    out
}

fn incident_counts<'a>(plan: &Plan, incidents: impl Iterator<Item = &'a IncidentFact>) -> Vec<IncidentCount> {
    let mut counts: BTreeMap<(PlaceId, IncidentKind), u32> = BTreeMap::new();
    for i in incidents {
        *counts.entry((i.place, i.kind)).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((place, kind), count)| IncidentCount {
            place_id: place.0,
            place_name: place_name(plan, place),
            kind,
            count,
        })
        .collect()
}

/// The report over `visits` in one go (tests and small callers; the server streams).
pub fn report(
    params: Params,
    plan: &Plan,
    visits: &[VisitFact],
    alarms: &[AlarmFact],
    incidents: &[IncidentFact],
) -> CoverageReport {
    let mut b = Builder::new(params);
    for v in visits {
        b.add_visit(v);
    }
    b.finish(plan, alarms, incidents)
}

#[cfg(test)]
#[path = "coverage_tests.rs"]
mod tests;
