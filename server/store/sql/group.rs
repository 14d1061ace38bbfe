//! Group commit of visit saves (DESIGN.md §6): check-ins that arrive together share one
//! transaction, one statement per table and one WAL flush, instead of paying for each. On
//! PostgreSQL a batch of check-ins is a single statement (`one_statement.rs`).
//!
//! A save is queued; a few committer tasks each take whatever is queued (up to
//! [`BATCH_MAX`](super::reads::BATCH_MAX)) and write it in one transaction. While one waits
//! for its commit to flush, the next gathers the saves that arrived meanwhile, so under load
//! the batches grow by themselves and an idle server commits a lone save at once, without
//! waiting for company.
//! A save is answered only after its transaction committed.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{
    Changes, DateTime, Db, Notices, QueryBuilder, SqlStore, StoreError, StoreResult, Utc, Uuid, Visit,
    apply_quietly, constraint, db_err, enum_str, live_rows, write_participants,
};

/// Transactions of saves in flight at once.
const COMMITTERS: usize = 2;

/// A changed visit read at `version`, with what the change caused.
pub(crate) struct Save {
    pub visit: Visit,
    pub version: i64,
    pub changes: Changes,
    pub now: DateTime<Utc>,
}

pub(crate) struct Queued {
    save: Save,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Where saves queue for the committers.
pub(crate) type Saves = mpsc::UnboundedSender<Queued>;

/// Starts the committers on `store` (a handle without a queue of its own), each keeping a
/// connection of its own if `keep`; they end when the last sender is dropped.
pub(crate) fn start(store: &SqlStore, keep: bool) -> Saves {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..COMMITTERS {
        let (store, rx) = (store.keeping(keep), Arc::clone(&rx));
        tokio::spawn(async move {
            while let Some(batch) = super::reads::next_batch(&rx).await {
                commit(&store, batch).await;
            }
        });
    }
    tx
}

/// Queues `save` and waits for its commit. Should the committers be gone (their runtime
/// ended), the save is written here alone.
pub(crate) async fn queue(saves: &Saves, store: &SqlStore, save: Save) -> StoreResult<()> {
    let (done, answer) = oneshot::channel();
    if let Err(mpsc::error::SendError(q)) = saves.send(Queued { save, done }) {
        return save_alone(store, &q.save).await;
    }
    answer
        .await
        .unwrap_or_else(|_| Err(StoreError::Transient("the committer stopped".into())))
}

/// Writes one save in a transaction of its own.
pub(crate) async fn save_alone(store: &SqlStore, save: &Save) -> StoreResult<()> {
    let (saved, n) = save_many(store, &[save]).await?;
    store.notify_committed(n).await;
    answer(save, &saved)
}

/// Commits `batch` in as few transactions as it takes for each to hold a visit once (two
/// saves of the same visit read the same version; the second must see the first's commit to
/// be refused), and answers every save.
async fn commit(store: &SqlStore, batch: Vec<Queued>) {
    for round in super::reads::rounds(batch, |q| q.save.visit.id) {
        let saves: Vec<&Save> = round.iter().map(|q| &q.save).collect();
        let mut notices = None;
        let answers: Vec<StoreResult<()>> = match save_many(store, &saves).await {
            Ok((saved, n)) => {
                notices = Some(n);
                saves.iter().map(|s| answer(s, &saved)).collect()
            }
            // The database is away: each alone would fail alike.
            Err(StoreError::Transient(e)) => saves
                .iter()
                .map(|_| Err(StoreError::Transient(e.clone())))
                .collect(),
            // One save's write broke a rule: the others must not fail with it.
            Err(_) => {
                let mut answers = Vec::with_capacity(saves.len());
                for s in &saves {
                    answers.push(save_alone(store, s).await);
                }
                answers
            }
        };
        for (q, a) in round.into_iter().zip(answers) {
            // The caller may have gone (its request was dropped); its save stands.
            let _ = q.done.send(a);
        }
        // After the answers: the phones need not wait for the other processes' hint.
        if let Some(n) = notices {
            store.notify_committed(n).await;
        }
    }
}

fn answer(save: &Save, saved: &HashSet<Uuid>) -> StoreResult<()> {
    if saved.contains(&save.visit.id.0) {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            constraint: constraint::VISIT_VERSION.into(),
        })
    }
}

/// Writes the saves of different visits at once; returns the visits saved and what to
/// notify the other processes of, once answered. A visit saved by someone else since it was
/// read is left out, with what its change caused.
///
/// Rows are written at the latest `now` of the saves (they are milliseconds apart).
async fn save_many(store: &SqlStore, saves: &[&Save]) -> StoreResult<(HashSet<Uuid>, Notices)> {
    let Some(now) = saves.iter().map(|s| s.now).max() else {
        return Ok((HashSet::new(), Notices::default()));
    };
    let changes: Vec<&Changes> = saves.iter().map(|s| &s.changes).collect();
    let n = Notices {
        live: true,
        ..Notices::of_all(&changes, now)
    };
    #[cfg(makker_pg)]
    if saves.iter().all(|s| plain(&s.changes)) {
        let saved = super::one_statement::save(store, saves, now, n).await?;
        // Sent at its commit: one round trip fewer than notifying after it.
        return Ok((saved, Notices::default()));
    }
    let saved = save_in_transaction(store, saves, now).await?;
    Ok((saved, n))
}

/// A check-in's change: events, and the visit's timers moved; nothing else. (A check-out
/// cancels its timers and the reminders still queued: not plain.)
#[cfg_attr(not(makker_pg), allow(dead_code))]
fn plain(c: &Changes) -> bool {
    let Changes {
        events: _,
        same_participants,
        visit_timers,
        new_alarms,
        saved_alarms,
        calm_alarms,
        arm,
        outbox,
        audit,
    } = c;
    *same_participants
        && visit_timers.as_ref().is_some_and(|(_, t)| !t.is_empty())
        && new_alarms.is_empty()
        && saved_alarms.is_empty()
        && calm_alarms.is_empty()
        && arm.is_empty()
        && outbox.is_empty()
        && audit.is_empty()
}

/// The saves as one transaction: the versioned update, then what the saved ones caused.
async fn save_in_transaction(
    store: &SqlStore,
    saves: &[&Save],
    now: DateTime<Utc>,
) -> StoreResult<HashSet<Uuid>> {
    let mut tx = store.begin().await?;
    let mut update = QueryBuilder::<Db>::new("with ");
    let lock = push_save_rows(&mut update, saves);
    update.push(" ");
    push_update(&mut update, lock);
    update.push(" returning visit_id");
    let saved: Vec<(Uuid,)> = update
        .build_query_as()
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    let saved: HashSet<Uuid> = saved.into_iter().map(|r| r.0).collect();
    let done: Vec<&Save> = saves
        .iter()
        .copied()
        .filter(|s| saved.contains(&s.visit.id.0))
        .collect();
    if done.is_empty() {
        return Ok(saved);
    }
    let joined_or_left: Vec<&Visit> = done
        .iter()
        .filter(|s| !s.changes.same_participants)
        .map(|s| &s.visit)
        .collect();
    write_participants(&mut tx, &joined_or_left, now).await?;
    let changes: Vec<&Changes> = done.iter().map(|s| &s.changes).collect();
    apply_quietly(&mut tx, &changes, now, None).await?;
    let live: Vec<_> = done.iter().map(|s| (s.visit.team, &s.visit)).collect();
    live_rows(&mut tx, "visit", &live, now).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(saved)
}

/// `[locked as (…), ]d (…) as (values …)`: the saves' rows for [`push_update`], and the
/// ordered lock of their visits when there are several (PostgreSQL); returns whether it
/// locks.
fn push_save_rows(q: &mut QueryBuilder<Db>, saves: &[&Save]) -> bool {
    let lock = saves.len() > 1 && !super::super::FOR_UPDATE.is_empty();
    if lock {
        // Concurrent batches lock their visits in the same order: they wait, never deadlock.
        // The update counts this, so every lock is taken before any row is written.
        let mut ids: Vec<Uuid> = saves.iter().map(|s| s.visit.id.0).collect();
        ids.sort_unstable();
        q.push("locked as (select visit_id as l_id from visit where visit_id in (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id);
        }
        q.push(format!(") order by visit_id{}), ", super::super::FOR_UPDATE));
    }
    q.push(
        "d (d_id, d_version, d_state, d_planned_end, d_last_check_in_at, d_ended_at, d_last_seen_at, \
         d_alone_since, d_tell_colleague) as (",
    );
    q.push_values(saves, |mut b, s| {
        let v = &s.visit;
        b.push_bind(v.id.0)
            .push_bind(s.version)
            .push_bind(enum_str(&v.state))
            .push_bind(v.planned_end)
            .push_bind(v.last_check_in_at)
            .push_bind(v.ended_at)
            .push_bind(v.last_seen_at)
            .push_bind(v.alone_since)
            .push_bind(v.tell_colleague.map(|p| p.0));
    });
    q.push(")");
    lock
}

/// The versioned update of the visits in `d`; the caller ends it (`returning visit_id`).
///
/// INVARIANT: the version check and the write are one statement, so of two concurrent saves
/// of the same read only the first succeeds.
pub(super) fn push_update(q: &mut QueryBuilder<Db>, lock: bool) {
    q.push(
        "update visit set state = d_state, planned_end = d_planned_end, last_check_in_at = d_last_check_in_at, \
         ended_at = d_ended_at, last_seen_at = d_last_seen_at, alone_since = d_alone_since, \
         tell_colleague = d_tell_colleague, version = version + 1 from d",
    );
    q.push(" where visit_id = d_id and version = d_version");
    if lock {
        // Counting `locked` takes all its locks, once, before any row is written; a join
        // would scan it again for every row saved.
        q.push(" and (select count(*) from locked) > 0");
    }
}
