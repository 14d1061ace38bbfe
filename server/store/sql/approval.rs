//! Lone-visit approvals (rule 5) and the asks for them. A worker's ask and a supervisor's
//! decline are live events of the team and nothing else: they matter only while someone
//! waits at a door, and the boards and the asking phone read them from the live stream's
//! record. An approval is a `lone_approval` row, written with its live answer in one
//! transaction so that no board keeps showing a request that was answered.

use chrono::{DateTime, Utc};
use makker_domain::{PersonId, PlaceId, TeamId};
use makker_store::{LiveEvent, LoneApproval, StoreResult};
use sqlx::{Pool, Transaction};

use super::{ApprovalRow, BEGIN_WRITE, Db, LiveRow, db_err, live, live_event};

/// The live event kinds of asks and answers.
pub(super) const ASK: &str = "approval_request";
pub(super) const ANSWER: &str = "approval_answer";

impl From<ApprovalRow> for LoneApproval {
    fn from(r: ApprovalRow) -> Self {
        LoneApproval {
            id: r.lone_approval_id,
            worker: PersonId(r.worker_id),
            supervisor: PersonId(r.supervisor_id),
            place: PlaceId(r.place_id),
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        }
    }
}

pub(super) async fn insert(tx: &mut Transaction<'static, Db>, a: &LoneApproval) -> StoreResult<()> {
    sqlx::query(
        "insert into lone_approval (lone_approval_id, worker_id, supervisor_id, place_id, created_at, \
         expires_at, used_at) values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.id)
    .bind(a.worker.0)
    .bind(a.supervisor.0)
    .bind(a.place.0)
    .bind(a.created_at)
    .bind(a.expires_at)
    .bind(a.used_at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(super) async fn approve(
    pool: &Pool<Db>,
    a: &LoneApproval,
    team: TeamId,
    answer: &serde_json::Value,
) -> StoreResult<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(db_err)?;
    insert(&mut tx, a).await?;
    live(&mut tx, team, ANSWER, answer, a.created_at).await?;
    tx.commit().await.map_err(db_err)
}

/// An ask (`answer` false) or a decline (`answer` true) for the team's boards.
pub(super) async fn post(
    pool: &Pool<Db>,
    team: TeamId,
    answer: bool,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(db_err)?;
    live(&mut tx, team, if answer { ANSWER } else { ASK }, payload, now).await?;
    tx.commit().await.map_err(db_err)
}

pub(super) async fn events(
    pool: &Pool<Db>,
    team: TeamId,
    since: DateTime<Utc>,
) -> StoreResult<Vec<LiveEvent>> {
    // The team's index orders by id; the few rows of the last half hour are filtered by time.
    let rows: Vec<LiveRow> = sqlx::query_as(
        "select live_event_id, team_id, kind, payload, created_at from live_event \
         where team_id = $1 and kind in ($2, $3) and created_at >= $4 order by live_event_id",
    )
    .bind(team.0)
    .bind(ASK)
    .bind(ANSWER)
    .bind(since)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(rows.into_iter().map(live_event).collect())
}

pub(super) async fn usable(
    pool: &Pool<Db>,
    worker: PersonId,
    place: PlaceId,
    now: DateTime<Utc>,
) -> StoreResult<Option<LoneApproval>> {
    let row: Option<ApprovalRow> = sqlx::query_as(
        "select * from lone_approval where worker_id = $1 and place_id = $2 and used_at is null \
         and expires_at > $3 order by expires_at desc limit 1",
    )
    .bind(worker.0)
    .bind(place.0)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    Ok(row.map(LoneApproval::from))
}
