//! Phone status (`phone_status`): the battery each worker's phone last reported in their open
//! shift, for the board.
//!
//! INVARIANT: a status belongs to one open shift. A report locks that shift's row, so it either
//! lands before the shift ends (and `end_shift`, in its own transaction, deletes it) or finds no
//! open shift; reads join the open shift, so nothing from an earlier shift is ever shown.

use chrono::{DateTime, Utc};
use makker_domain::{PersonId, TeamId};
use makker_store::{PhoneStatus, StoreResult};
use sqlx::{Pool, Transaction};
use uuid::Uuid;

use super::super::FOR_UPDATE;
use super::{BEGIN_WRITE, Db, db_err, live};

type Row = (Uuid, Uuid, i32, Option<bool>, DateTime<Utc>);

fn status((person, team, battery_pct, charging, reported_at): Row) -> PhoneStatus {
    PhoneStatus {
        person: PersonId(person),
        team: TeamId(team),
        // The column's check keeps it within 0..=100.
        battery_pct: u8::try_from(battery_pct).unwrap_or(0),
        charging,
        reported_at,
    }
}

pub(super) async fn report(
    pool: &Pool<Db>,
    person: PersonId,
    battery_pct: u8,
    charging: Option<bool>,
    at: DateTime<Utc>,
) -> StoreResult<PhoneStatus> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(db_err)?;
    let sql =
        format!("select shift_id, team_id from shift where person_id = $1 and ended_at is null{FOR_UPDATE}");
    let (shift, team): (Uuid, Uuid) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(person.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::query(
        "insert into phone_status (person_id, shift_id, battery_pct, charging, reported_at, created_at) \
         values ($1, $2, $3, $4, $5, $5) \
         on conflict (person_id) do update set shift_id = excluded.shift_id, \
         battery_pct = excluded.battery_pct, charging = excluded.charging, reported_at = excluded.reported_at",
    )
    .bind(person.0)
    .bind(shift)
    .bind(i32::from(battery_pct))
    .bind(charging)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let status = status((person.0, team, i32::from(battery_pct), charging, at));
    live(&mut tx, status.team, "status", &status, at).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(status)
}

/// The statuses reported in open shifts, of the people `filter` (on the shift `h`) picks.
async fn in_open_shifts(pool: &Pool<Db>, filter: &str, id: Uuid) -> StoreResult<Vec<PhoneStatus>> {
    let sql = format!(
        "select s.person_id, h.team_id, s.battery_pct, s.charging, s.reported_at from phone_status s \
         join shift h on h.shift_id = s.shift_id where {filter} = $1 and h.ended_at is null"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(rows.into_iter().map(status).collect())
}

pub(super) async fn of_team(pool: &Pool<Db>, team: TeamId) -> StoreResult<Vec<PhoneStatus>> {
    in_open_shifts(pool, "h.team_id", team.0).await
}

pub(super) async fn of_person(pool: &Pool<Db>, person: PersonId) -> StoreResult<Option<PhoneStatus>> {
    Ok(in_open_shifts(pool, "h.person_id", person.0).await?.pop())
}

/// Forgets a person's phone status; in `end_shift`'s transaction.
pub(super) async fn forget(tx: &mut Transaction<'static, Db>, person: PersonId) -> StoreResult<()> {
    sqlx::query("delete from phone_status where person_id = $1")
        .bind(person.0)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}
