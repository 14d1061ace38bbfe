//! Retention beyond positions: visit details pseudonymised, the audit log shortened.
//!
//! Pseudonymising keeps what statistics need — kinds, times, counts, risk levels, who was on
//! the visit (the worker's own record) — and blanks what describes citizens and their homes:
//! free text (lone reasons, alarm notes, warning texts), risk-assessment answers, message
//! texts, idempotency answers (copies of the above), and the link from old visits,
//! assessments and approvals to a home, which moves to the team's one pseudonym home.
//!
//! INVARIANT: each run is one transaction holding the maintenance lock, so one process at a
//! time does it and a crash leaves nothing half done.

use chrono::{DateTime, Utc};
use makker_domain::geo::{Position, Shape};
use makker_store::StoreResult;
use sqlx::types::Json;
use sqlx::{Pool, Transaction};
use uuid::Uuid;

use super::{BEGIN_WRITE, Db, db_err};

/// What old home visits point to instead of the home: one per team, far from any real place
/// (no search or map around a team's area finds it).
const PSEUDONYM_HOME: &str = "(pseudonymised home)";

/// A write transaction holding the maintenance lock; `None` when another process holds it.
pub(super) async fn maintenance_tx(pool: &Pool<Db>) -> StoreResult<Option<Transaction<'static, Db>>> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(db_err)?;
    // INVARIANT: one process at a time (a transaction-scoped advisory lock on PostgreSQL).
    let (locked,): (bool,) = sqlx::query_as(super::super::MAINTENANCE_LOCK)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    Ok(locked.then_some(tx))
}

/// Runs `statements` (each bound to `before`) in one transaction; the rows they changed.
async fn each(
    tx: &mut Transaction<'static, Db>,
    statements: &[&str],
    before: DateTime<Utc>,
) -> StoreResult<u64> {
    let mut changed = 0;
    for sql in statements {
        let done = sqlx::query(sqlx::AssertSqlSafe(*sql))
            .bind(before)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        changed += done.rows_affected();
    }
    Ok(changed)
}

/// Blanks the details of what happened before `before`; `None` when another process holds the
/// maintenance lock.
pub(super) async fn pseudonymise(pool: &Pool<Db>, before: DateTime<Utc>) -> StoreResult<Option<u64>> {
    let Some(mut tx) = maintenance_tx(pool).await? else {
        return Ok(None);
    };
    pseudonym_homes(&mut tx, before).await?;
    // The home of a visit, its assessment or an approval becomes the team's pseudonym home.
    let home_of = |table: &str, time: &str| {
        format!(
            "update {table} set place_id = (select h.place_id from place h join place p on h.team_id = p.team_id \
             where p.place_id = {table}.place_id and h.pseudonym) \
             where {time} < $1 and place_id in (select place_id from place where kind = 'home' and not pseudonym)"
        )
    };
    let homes = [
        home_of("visit", "started_at") + " and state = 'ended'",
        home_of("assessment", "assessed_at"),
        home_of("lone_approval", "created_at"),
    ];
    let statements: Vec<&str> = homes
        .iter()
        .map(String::as_str)
        .chain([
            "update visit set lone_reason = null where started_at < $1 and state = 'ended' and lone_reason is not null",
            "update assessment set answers = '{}' where assessed_at < $1 and answers <> '{}'",
            "update alarm set note = null where raised_at < $1 and state = 'resolved' and note is not null",
            "update place_warning set text = '' where expires_at < $1 and text <> ''",
            "update outbox set body = '' where created_at < $1 and body <> ''",
            "delete from idempotency where created_at < $1",
        ])
        .collect();
    let changed = each(&mut tx, &statements, before).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Some(changed))
}

/// Makes sure every team with an old home visit, assessment or approval has its pseudonym home.
async fn pseudonym_homes(tx: &mut Transaction<'static, Db>, before: DateTime<Utc>) -> StoreResult<()> {
    let teams: Vec<(Uuid,)> = sqlx::query_as(
        "select distinct p.team_id from place p \
         where p.kind = 'home' and not p.pseudonym \
         and not exists (select 1 from place h where h.team_id = p.team_id and h.pseudonym) \
         and (exists (select 1 from visit v where v.place_id = p.place_id and v.started_at < $1) \
           or exists (select 1 from assessment a where a.place_id = p.place_id and a.assessed_at < $1) \
           or exists (select 1 from lone_approval l where l.place_id = p.place_id and l.created_at < $1))",
    )
    .bind(before)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let nowhere = Position::parse(0.0, 0.0).expect("BUG: 0,0 is a position");
    let shape = Shape::Circle {
        center: nowhere,
        radius_m: 1.0,
    };
    for (team,) in teams {
        sqlx::query(
            "insert into place (place_id, team_id, name, kind, shape, center_lat, center_lon, created_at, pseudonym) \
             values ($1, $2, $3, 'home', $4, $5, $6, $7, true)",
        )
        .bind(Uuid::now_v7())
        .bind(team)
        .bind(PSEUDONYM_HOME)
        .bind(Json(&shape))
        .bind(nowhere.lat)
        .bind(nowhere.lon)
        .bind(before)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Deletes audit lines older than `before`; `None` when another process holds the lock. The
/// database refuses (and this fails) for a line younger than a year by its own clock.
pub(super) async fn purge_audit(pool: &Pool<Db>, before: DateTime<Utc>) -> StoreResult<Option<u64>> {
    let Some(mut tx) = maintenance_tx(pool).await? else {
        return Ok(None);
    };
    let changed = each(&mut tx, &["delete from audit_log where at < $1"], before).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Some(changed))
}
