//! The SQL of routes and coverage, shared by both dialects: a child of `shared.rs`, so it uses
//! the same pool, errors and helpers. See `makker_store::coverage` for the contract.
//!
//! INVARIANT: visit facts are streamed row by row to the caller; a report never holds a
//! year's rows at once. No query here selects a person.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use makker_domain::area::{Area, outline_from_json};
use makker_domain::coverage::{AlarmFact, VisitFact};
use makker_domain::geo::Position;
use makker_domain::incident::{Deadline, Incident, IncidentKind};
use makker_domain::place::Warning;
use makker_domain::route::Route;
use makker_domain::visit::Visit;
use makker_domain::{AreaId, IncidentId, PersonId, PlaceId, RouteId, TeamId, VisitId, WarningId};
use makker_store::coverage::CoverageStore;
use makker_store::{Assessment, Changes, StoreError, StoreResult};
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::{SqlStore, Tx, apply_changes, db_err, enum_str, minute_of_day, parse, write_new_visit};

/// Writes a route and all its stops (replacing any it had), inside `tx`.
pub(super) async fn write_route(tx: &mut Tx, r: &Route, now: DateTime<Utc>) -> StoreResult<()> {
    // A route id of another team is never taken over: the update then changes nothing.
    sqlx::query(
        "insert into route (route_id, team_id, name, valid_from, valid_until, created_at) \
         values ($1, $2, $3, $4, $5, $6) on conflict (route_id) do update set name = excluded.name, \
         valid_from = excluded.valid_from, valid_until = excluded.valid_until \
         where route.team_id = excluded.team_id",
    )
    .bind(r.id.0)
    .bind(r.team.0)
    .bind(&r.name)
    .bind(r.valid_from)
    .bind(r.valid_until)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    sqlx::query("delete from route_stop where route_id = $1")
        .bind(r.id.0)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    for (position, stop) in r.stops.iter().enumerate() {
        sqlx::query(
            "insert into route_stop (route_id, position, place_id, weekday, opens_minute, closes_minute, \
             created_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id.0)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(stop.place.0)
        .bind(i32::try_from(stop.weekday.number_from_monday()).expect("BUG: 1..=7 fits"))
        .bind(minute_of_day(stop.opens))
        .bind(minute_of_day(stop.closes))
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Writes a place warning inside `tx`.
pub(super) async fn write_warning(tx: &mut Tx, w: &Warning) -> StoreResult<()> {
    sqlx::query(
        "insert into place_warning (place_warning_id, place_id, kind, text, created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(w.id.0)
    .bind(w.place.0)
    .bind(enum_str(&w.kind))
    .bind(&w.text)
    .bind(w.created_at)
    .bind(w.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[derive(FromRow)]
struct AreaRow {
    area_id: Uuid,
    team_id: Uuid,
    name: String,
    outline: Json<serde_json::Value>,
}

#[derive(FromRow)]
struct VisitFactRow {
    place_id: Uuid,
    center_lat: f64,
    center_lon: f64,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    min_participants: i32,
    participants: i64,
    pair_broke: bool,
}

impl VisitFactRow {
    fn into_fact(self) -> StoreResult<VisitFact> {
        Ok(VisitFact {
            place: PlaceId(self.place_id),
            at: parse(Position::parse(self.center_lat, self.center_lon))?,
            started_at: self.started_at,
            ended_at: self.ended_at,
            participants: u8::try_from(self.participants).unwrap_or(u8::MAX),
            required: parse(u8::try_from(self.min_participants))?,
            pair_broke: self.pair_broke,
        })
    }
}

/// The visit facts of a team in a period. Participants are counted only as far as the figures
/// need: 1, or 2 when a second took part, exactly only where the policy asked for three or
/// more. PostgreSQL finds the second participants (`position` 1) with one hash join, four times
/// faster than a count per visit; SQLite, which joins by nested loops, counts from the
/// primary key's covering index instead, which is faster there.
fn visit_facts_sql() -> String {
    let exact = "(select count(*) from visit_participant vp where vp.visit_id = v.visit_id)";
    let (participants, join) = if <super::Db as sqlx::Database>::NAME == "SQLite" {
        (exact.to_owned(), "")
    } else {
        (
            format!(
                "case when v.min_participants >= 3 then {exact} \
                 when second.visit_id is null then 1 else 2 end"
            ),
            "left join visit_participant second on second.visit_id = v.visit_id and second.position = 1",
        )
    };
    format!(
        "select v.place_id, p.center_lat, p.center_lon, v.started_at, v.ended_at, v.min_participants, \
         {participants} as participants, v.alone_since is not null as pair_broke \
         from visit v join place p on p.place_id = v.place_id {join} \
         where v.team_id = $1 and v.started_at >= $2 and v.started_at < $3"
    )
}

#[derive(FromRow)]
struct IncidentRow {
    incident_id: Uuid,
    team_id: Uuid,
    place_id: Uuid,
    visit_id: Option<Uuid>,
    reported_by: Uuid,
    kind: String,
    description: String,
    occurred_at: DateTime<Utc>,
    authority_due_at: Option<DateTime<Utc>>,
    authority_done_at: Option<DateTime<Utc>>,
    police_due_at: Option<DateTime<Utc>>,
    police_done_at: Option<DateTime<Utc>>,
    place_warning_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

fn deadline(due: Option<DateTime<Utc>>, done: Option<DateTime<Utc>>) -> Option<Deadline> {
    due.map(|due_at| Deadline {
        due_at,
        done_at: done,
    })
}

impl IncidentRow {
    fn into_incident(self) -> StoreResult<Incident> {
        Ok(Incident {
            id: IncidentId(self.incident_id),
            team: TeamId(self.team_id),
            place: PlaceId(self.place_id),
            visit: self.visit_id.map(VisitId),
            reported_by: PersonId(self.reported_by),
            kind: parse(IncidentKind::parse(&self.kind))?,
            description: self.description,
            occurred_at: self.occurred_at,
            reported_at: self.created_at,
            authority: deadline(self.authority_due_at, self.authority_done_at),
            police: deadline(self.police_due_at, self.police_done_at),
            warning: self.place_warning_id.map(WarningId),
        })
    }
}

const INCIDENT_COLUMNS: &str = "incident_id, team_id, place_id, visit_id, reported_by, kind, description, \
     occurred_at, authority_due_at, authority_done_at, police_due_at, police_done_at, place_warning_id, created_at";

impl SqlStore {
    async fn incidents_where(
        &self,
        condition: &'static str,
        team: TeamId,
        binds: &[DateTime<Utc>],
    ) -> StoreResult<Vec<Incident>> {
        let sql = format!("select {INCIDENT_COLUMNS} from incident where team_id = $1 and {condition}");
        let mut q = sqlx::query_as::<_, IncidentRow>(sqlx::AssertSqlSafe(sql)).bind(team.0);
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.into_iter().map(IncidentRow::into_incident).collect()
    }
}

#[async_trait]
impl CoverageStore for SqlStore {
    async fn save_areas(&self, areas: &[Area], now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for a in areas {
            let outline = serde_json::to_value(a.geometry()).expect("BUG: a geometry serializes");
            sqlx::query(
                "insert into area (area_id, team_id, name, outline, created_at) values ($1, $2, $3, $4, $5) \
                 on conflict (area_id) do update set name = excluded.name, outline = excluded.outline \
                 where area.team_id = excluded.team_id",
            )
            .bind(a.id.0)
            .bind(a.team.0)
            .bind(&a.name)
            .bind(Json(outline))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn areas(&self, team: TeamId) -> StoreResult<Vec<Area>> {
        let rows: Vec<AreaRow> = sqlx::query_as(
            "select area_id, team_id, name, outline from area where team_id = $1 order by name",
        )
        .bind(team.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                Ok(Area {
                    id: AreaId(r.area_id),
                    team: TeamId(r.team_id),
                    name: r.name,
                    outline: parse(outline_from_json(r.outline.0))?,
                })
            })
            .collect()
    }

    async fn delete_area(&self, team: TeamId, id: AreaId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("delete from area where area_id = $1 and team_id = $2")
            .bind(id.0)
            .bind(team.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(db_err)
    }

    async fn save_routes(&self, routes: &[Route], now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for r in routes {
            write_route(&mut tx, r, now).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn route(&self, id: RouteId) -> StoreResult<Route> {
        let (team,): (Uuid,) = sqlx::query_as("select team_id from route where route_id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        makker_store::Store::routes(self, TeamId(team))
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(StoreError::NotFound)
    }

    async fn visit_facts(
        &self,
        team: TeamId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: &mut (dyn FnMut(VisitFact) + Send),
    ) -> StoreResult<()> {
        let mut rows = sqlx::query_as::<_, VisitFactRow>(sqlx::AssertSqlSafe(visit_facts_sql()))
            .bind(team.0)
            .bind(from)
            .bind(to)
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(db_err)? {
            each(row.into_fact()?);
        }
        Ok(())
    }

    async fn alarm_facts(
        &self,
        team: TeamId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<AlarmFact>> {
        let rows: Vec<(DateTime<Utc>, Option<DateTime<Utc>>, bool)> = sqlx::query_as(
            "select raised_at, acknowledged_at, drill from alarm \
             where team_id = $1 and raised_at >= $2 and raised_at < $3",
        )
        .bind(team.0)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(raised_at, acknowledged_at, drill)| AlarmFact {
                raised_at,
                acknowledged_at,
                drill,
            })
            .collect())
    }

    async fn insert_incident(&self, i: &Incident, warning: Option<&Warning>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        if let Some(w) = warning {
            write_warning(&mut tx, w).await?;
        }
        sqlx::query(
            "insert into incident (incident_id, team_id, place_id, visit_id, reported_by, kind, description, \
             occurred_at, authority_due_at, authority_done_at, police_due_at, police_done_at, place_warning_id, \
             created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(i.id.0)
        .bind(i.team.0)
        .bind(i.place.0)
        .bind(i.visit.map(|v| v.0))
        .bind(i.reported_by.0)
        .bind(i.kind.as_str())
        .bind(&i.description)
        .bind(i.occurred_at)
        .bind(i.authority.map(|d| d.due_at))
        .bind(i.authority.and_then(|d| d.done_at))
        .bind(i.police.map(|d| d.due_at))
        .bind(i.police.and_then(|d| d.done_at))
        .bind(i.warning.map(|w| w.0))
        .bind(i.reported_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn incident(&self, id: IncidentId) -> StoreResult<Incident> {
        let sql = format!("select {INCIDENT_COLUMNS} from incident where incident_id = $1");
        let row: IncidentRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        row.into_incident()
    }

    async fn incidents(
        &self,
        team: TeamId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Incident>> {
        self.incidents_where(
            "occurred_at >= $2 and occurred_at < $3 order by occurred_at desc",
            team,
            &[from, to],
        )
        .await
    }

    async fn incidents_pending(&self, team: TeamId) -> StoreResult<Vec<Incident>> {
        let mut list = self
            .incidents_where(
                "((authority_due_at is not null and authority_done_at is null) \
                 or (police_due_at is not null and police_done_at is null))",
                team,
                &[],
            )
            .await?;
        let soonest = |i: &Incident| {
            [i.authority, i.police]
                .into_iter()
                .flatten()
                .filter(|d| d.done_at.is_none())
                .map(|d| d.due_at)
                .min()
        };
        list.sort_by_key(soonest);
        Ok(list)
    }

    async fn save_incident_deadlines(&self, i: &Incident) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "update incident set authority_due_at = $2, authority_done_at = $3, police_due_at = $4, \
             police_done_at = $5 where incident_id = $1",
        )
        .bind(i.id.0)
        .bind(i.authority.map(|d| d.due_at))
        .bind(i.authority.and_then(|d| d.done_at))
        .bind(i.police.map(|d| d.due_at))
        .bind(i.police.and_then(|d| d.done_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(db_err)
    }

    async fn insert_history(
        &self,
        visits: &[(Visit, Assessment)],
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for (v, a) in visits {
            write_new_visit(&mut tx, v, a, false, None, &Changes::default()).await?;
            // A new visit is never alone yet; a past one may have been.
            if let Some(since) = v.alone_since {
                sqlx::query("update visit set alone_since = $2 where visit_id = $1")
                    .bind(v.id.0)
                    .bind(since)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        apply_changes(&mut tx, changes, now).await?;
        tx.commit().await.map_err(db_err)
    }
}
