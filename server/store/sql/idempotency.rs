//! Idempotency keys claimed and answered in batches (PostgreSQL). The app's offline queue
//! gives every signal a key, so every check-in also claims its key before it runs and stores
//! its answer after: alone, each was a statement and a commit of its own, and with keys the
//! server served a quarter of the check-ins it served without. Claims waiting together are
//! now one statement and one commit, and so are answers, as the check-ins' reads and saves
//! are.

use std::sync::Arc;

use makker_store::Store;

use super::reads::{Batches, rounds};
use super::{
    DateTime, IDEMPOTENCY_CLAIM_LAPSES, Idempotency, PersonId, SqlStore, StoreError, StoreResult, Utc, Uuid,
    db_err, idempotency_of,
};

/// A claim: the person, the key, the request's hash, and the time.
pub(crate) type Claim = (PersonId, String, String, DateTime<Utc>);

/// A claimed key's answer: the person, the key, the status, and the body.
pub(crate) type Answer = (PersonId, String, u16, String);

/// Where claims and answers queue to share a statement.
#[derive(Debug)]
pub(crate) struct Keys {
    pub claims: Batches<Claim, Idempotency>,
    pub answers: Batches<Answer, ()>,
}

impl Keys {
    /// Starts the two batch runners on `store` (a handle without batches of its own), each
    /// keeping a connection of its own if `keep`, whose commits do not wait for the disk.
    ///
    /// A claim need not be on disk before its request runs: whatever the request then writes
    /// commits after it, and PostgreSQL writes its log in order, so a write that is on disk
    /// has its claim there too; a claim lost with nothing after it frees a key that nothing
    /// used. An answer lost in a crash leaves its claim to lapse, as a crash before the
    /// answer always did. Either way the key's row is seen by others at once, and the two
    /// waits for the disk are gone from every keyed request.
    pub(crate) fn start(store: &SqlStore, keep: bool) -> Keys {
        const SETUP: &[&str] = &[super::super::OWN_CONNECTION, super::super::LAZY_COMMIT];
        let (claiming, answering) = (store.keeping_set(keep, SETUP), store.keeping_set(keep, SETUP));
        Keys {
            claims: Batches::start(Arc::new(move |claims| {
                let store = claiming.clone();
                Box::pin(async move { claim_all(&store, claims).await })
            })),
            answers: Batches::start(Arc::new(move |answers| {
                let store = answering.clone();
                Box::pin(async move { answer_all(&store, answers).await })
            })),
        }
    }
}

/// Each claim's outcome, in order. A key asked for twice waits for a later statement, which
/// sees the first one's claim (one statement may not claim a row twice).
async fn claim_all(store: &SqlStore, claims: Vec<Claim>) -> StoreResult<Vec<Idempotency>> {
    let mut outcomes: Vec<Option<Idempotency>> = vec![None; claims.len()];
    let numbered: Vec<(usize, Claim)> = claims.into_iter().enumerate().collect();
    for round in rounds(numbered, |(_, (person, key, ..))| (*person, key.clone())) {
        let claims: Vec<&Claim> = round.iter().map(|(_, c)| c).collect();
        let found = match claim_round(store, &claims).await {
            Ok(found) => found,
            Err(StoreError::Transient(e)) => return Err(StoreError::Transient(e)),
            // One claim broke a rule: the others must not fail with it.
            Err(_) => vec![None; claims.len()],
        };
        for ((i, c), outcome) in round.iter().zip(found) {
            outcomes[*i] = Some(match outcome {
                Some(o) => o,
                // `store` has no batches of its own: this claims the key alone.
                None => store.idempotency_begin(c.0, &c.1, &c.2, c.3).await?,
            });
        }
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// One statement for `claims` (keys distinct): claims each key that is free, or whose claim
/// lapsed for the same request, and reads what became of the others. `None` where a claim
/// that committed after the statement began holds the key: the statement cannot see it.
async fn claim_round(store: &SqlStore, claims: &[&Claim]) -> StoreResult<Vec<Option<Idempotency>>> {
    let rows: Vec<ClaimRow> = store
        .fetch_all(
            sqlx::query_as(sqlx::AssertSqlSafe(CLAIM_ALL.as_str()))
                .bind(claims.iter().map(|(person, ..)| person.0).collect::<Vec<Uuid>>())
                .bind(claims.iter().map(|(_, key, ..)| key.as_str()).collect::<Vec<_>>())
                .bind(
                    claims
                        .iter()
                        .map(|(.., hash, _)| hash.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(claims.iter().map(|(.., now)| *now).collect::<Vec<_>>()),
        )
        .await
        .map_err(db_err)?;
    if rows.len() != claims.len() {
        return Err(StoreError::Other("a claim of idempotency keys lost a row".into()));
    }
    claims
        .iter()
        .zip(rows)
        .map(
            |((.., asked, _), (claimed, hash, status, body))| match (claimed, hash) {
                (true, _) => Ok(Some(Idempotency::Started)),
                (false, Some(hash)) => idempotency_of(hash == *asked, status, body).map(Some),
                (false, None) => Ok(None),
            },
        )
        .collect()
}

/// Whether the statement claimed the key; else the request hash, status and body of the row
/// holding it, if the statement could see one.
type ClaimRow = (bool, Option<String>, Option<i32>, Option<String>);

/// Claims in key order, so that two processes claiming the same keys wait for each other
/// instead of deadlocking; the answer keeps the order asked. Each key is looked up by the
/// primary key (`lateral … offset 0`): the plan is generic, kept from when the table may have
/// been small, and a join would then scan the whole table for every batch.
static CLAIM_ALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "with k as (select * from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) \
         with ordinality as k (k_person, k_key, k_hash, k_now, k_at)), \
         claimed as (insert into idempotency (person_id, idempotency_key, request_hash, created_at) \
         select k_person, k_key, k_hash, k_now from k order by k_person, k_key \
         on conflict (person_id, idempotency_key) do update set created_at = excluded.created_at \
         where idempotency.status_code is null and idempotency.request_hash = excluded.request_hash \
         and idempotency.created_at < excluded.created_at - interval '{} seconds' \
         returning person_id, idempotency_key) \
         select c.person_id is not null, i.request_hash, i.status_code, i.response_body from k \
         left join claimed c on c.person_id = k_person and c.idempotency_key = k_key \
         left join lateral (select request_hash, status_code, response_body from idempotency \
         where person_id = k_person and idempotency_key = k_key offset 0) as i on true \
         order by k_at",
        IDEMPOTENCY_CLAIM_LAPSES.num_seconds()
    )
});

/// Stores the answers in one statement. Each row is found by its primary key and updated by
/// its address (`ctid`), for the same reason as the claims' lookups; only the claim's own
/// request answers it, so no other statement moves the row in between.
async fn answer_all(store: &SqlStore, answers: Vec<Answer>) -> StoreResult<Vec<()>> {
    let _: Vec<(Uuid,)> = store
        .fetch_all(
            sqlx::query_as(
                "with a as (select * from unnest($1::uuid[], $2::text[], $3::int4[], $4::text[]) \
                 as a (a_person, a_key, a_status, a_body)), \
                 t as (select i.ctid as t_row, a_status, a_body from a cross join lateral \
                 (select ctid from idempotency where person_id = a_person and idempotency_key = a_key \
                 offset 0) as i) \
                 update idempotency set status_code = a_status, response_body = a_body from t \
                 where ctid = t_row returning person_id",
            )
            .bind(answers.iter().map(|(person, ..)| person.0).collect::<Vec<Uuid>>())
            .bind(
                answers
                    .iter()
                    .map(|(_, key, ..)| key.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                answers
                    .iter()
                    .map(|(.., status, _)| i32::from(*status))
                    .collect::<Vec<_>>(),
            )
            .bind(answers.iter().map(|(.., body)| body.as_str()).collect::<Vec<_>>()),
        )
        .await
        .map_err(db_err)?;
    Ok(vec![(); answers.len()])
}
