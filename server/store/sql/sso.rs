//! Single sign-on flows under way (`sso_flow`): written at the redirect to the identity
//! provider, taken once by its callback.

use chrono::{DateTime, Utc};
use makker_store::{SsoFlow, StoreError, StoreResult};
use sqlx::Pool;

use super::{BEGIN_WRITE, Db, db_err};

pub(super) async fn begin(pool: &Pool<Db>, flow: &SsoFlow) -> StoreResult<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(db_err)?;
    // Abandoned sign-ins go here rather than in a job: the table stays as small as the traffic.
    sqlx::query("delete from sso_flow where expires_at < $1")
        .bind(flow.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::query(
        "insert into sso_flow (state_hash, nonce, pkce_verifier, return_to, expires_at, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&flow.state_hash)
    .bind(&flow.nonce)
    .bind(&flow.pkce_verifier)
    .bind(&flow.return_to)
    .bind(flow.expires_at)
    .bind(flow.created_at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

pub(super) async fn take(pool: &Pool<Db>, state_hash: &str) -> StoreResult<SsoFlow> {
    type Row = (String, String, String, DateTime<Utc>, DateTime<Utc>);
    // INVARIANT: delete-returning in one statement: of two callbacks with the same state,
    // exactly one gets the row.
    let row: Option<Row> = sqlx::query_as(
        "delete from sso_flow where state_hash = $1 \
         returning nonce, pkce_verifier, return_to, expires_at, created_at",
    )
    .bind(state_hash)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    let (nonce, pkce_verifier, return_to, expires_at, created_at) = row.ok_or(StoreError::NotFound)?;
    Ok(SsoFlow {
        state_hash: state_hash.to_owned(),
        nonce,
        pkce_verifier,
        return_to,
        created_at,
        expires_at,
    })
}
