//! Check-ins saved as one statement on PostgreSQL: the versioned update and what it caused
//! (events, timers moved, live events) as data-modifying CTEs, one transaction of its own.
//!
//! Each column is bound as one array and unnested, so the statement has one text whatever
//! the batch: each connection prepares it once and PostgreSQL soon keeps a generic plan
//! instead of parsing and planning a new text for every batch size. A batch costs one round
//! trip instead of six (begin, update, events, timers, live, commit), and the notifications
//! to the other processes go out at its commit instead of in a round trip of their own after it.

use std::collections::HashSet;

use sqlx::types::Json;

use super::group::{Save, push_update};
use super::{
    DEADLINE_COLUMNS, DateTime, Db, EVENT_COLUMNS, LIVE_COLUMNS, MOVE_TIMERS, NewDeadline, NewEvent, Notices,
    Position, QueryBuilder, SqlStore, StoreResult, Utc, Uuid, VisitId, db_err, enum_str, timer_rows,
};

/// Writes `saves` (plain check-ins of different visits) at `now`, notifying `n` at its commit;
/// returns the visits saved. Each write after the versioned update takes only the rows of the
/// visits it saved, as the transaction of statements does.
pub(super) async fn save(
    store: &SqlStore,
    saves: &[&Save],
    now: DateTime<Utc>,
    n: Notices,
) -> StoreResult<HashSet<Uuid>> {
    let mut q = QueryBuilder::<Db>::new("with ");
    let ids: Vec<Uuid> = saves.iter().map(|s| s.visit.id.0).collect();
    push_visits(&mut q, saves, &ids);
    q.push(", saved as (");
    push_update(&mut q, true);
    // The ids again, for the visits' primary key: the plan is generic, and PostgreSQL would
    // otherwise join a small table by scanning it.
    q.push(" and visit_id = any(")
        .push_bind(ids)
        .push(") returning visit_id), ");
    let events: Vec<&NewEvent> = saves.iter().flat_map(|s| &s.changes.events).collect();
    push_events(&mut q, &events);
    let timers: Vec<&(VisitId, Vec<NewDeadline>)> = saves
        .iter()
        .filter_map(|s| s.changes.visit_timers.as_ref())
        .collect();
    push_timers(&mut q, &timers, now);
    push_live(&mut q, saves, now);
    q.push(" select visit_id from saved");
    push_notices(&mut q, n);
    let saved: Vec<(Uuid,)> = store.fetch_all(q.build_query_as()).await.map_err(db_err)?;
    Ok(saved.into_iter().map(|r| r.0).collect())
}

/// `locked` (the visits' ordered lock, as in group commit) and `d`, the saves' rows.
fn push_visits(q: &mut QueryBuilder<Db>, saves: &[&Save], ids: &[Uuid]) {
    q.push("locked as (select visit_id as l_id from visit where visit_id = any(")
        .push_bind(ids.to_vec())
        .push(") order by visit_id for update), d as (select * from unnest(")
        .push_bind(ids.to_vec());
    q.push(", ")
        .push_bind(saves.iter().map(|s| s.version).collect::<Vec<_>>())
        .push(", ")
        .push_bind(saves.iter().map(|s| enum_str(&s.visit.state)).collect::<Vec<_>>())
        .push(", ")
        .push_bind(saves.iter().map(|s| s.visit.planned_end).collect::<Vec<_>>())
        .push(", ")
        .push_bind(saves.iter().map(|s| s.visit.last_check_in_at).collect::<Vec<_>>())
        .push(", ")
        .push_bind(saves.iter().map(|s| s.visit.ended_at).collect::<Vec<_>>())
        .push(", ")
        .push_bind(saves.iter().map(|s| s.visit.last_seen_at).collect::<Vec<_>>())
        .push(", ")
        .push_bind(saves.iter().map(|s| s.visit.alone_since).collect::<Vec<_>>())
        .push(", ")
        .push_bind(
            saves
                .iter()
                .map(|s| s.visit.tell_colleague.map(|p| p.0))
                .collect::<Vec<_>>(),
        )
        .push(
            ") as d (d_id, d_version, d_state, d_planned_end, d_last_check_in_at, d_ended_at, \
             d_last_seen_at, d_alone_since, d_tell_colleague))",
        );
}

/// `events`: the saved visits' events appended to their logs.
fn push_events(q: &mut QueryBuilder<Db>, events: &[&NewEvent]) {
    let position = |e: &&NewEvent, f: fn(&Position) -> f64| e.stamp.position.as_ref().map(f);
    q.push(format!(
        "events as (insert into visit_event ({EVENT_COLUMNS}) select * from unnest("
    ))
    .push_bind(events.iter().map(|e| e.visit.0).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| e.person.map(|p| p.0)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| e.effect.kind()).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| Json(&e.effect)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| e.stamp.occurred_at()).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| e.stamp.received_at).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| e.stamp.client_time).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| position(e, |p| p.lat)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| position(e, |p| p.lon)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(events.iter().map(|e| e.stamp.received_at).collect::<Vec<_>>())
    .push(format!(
        ") as e ({EVENT_COLUMNS}) where visit_id in (select visit_id from saved)), "
    ));
}

/// `timers`, `moved` and `armed`: each saved visit's timers moved in place, and a kind with
/// no armed row to move armed anew.
fn push_timers(q: &mut QueryBuilder<Db>, timers: &[&(VisitId, Vec<NewDeadline>)], now: DateTime<Utc>) {
    let rows = timer_rows(timers);
    q.push("timers as (select * from unnest(")
        .push_bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .push(", ")
        .push_bind(rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())
        .push(", ")
        .push_bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .push(format!(
            ") as t (t_visit, t_kind, t_due) where t_visit in (select visit_id from saved)), \
             moved as ({MOVE_TIMERS}), "
        ));
    let wanted: Vec<&NewDeadline> = timers.iter().flat_map(|(_, t)| t).collect();
    q.push(format!(
        "armed as (insert into deadline ({DEADLINE_COLUMNS}) select * from unnest("
    ))
    .push_bind(wanted.iter().map(|d| enum_str(&d.kind)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(wanted.iter().map(|d| d.visit.map(|v| v.0)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(wanted.iter().map(|d| d.alarm.map(|a| a.0)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(wanted.iter().map(|d| d.due_at).collect::<Vec<_>>())
    .push(", ")
    .push_bind(vec!["armed"; wanted.len()])
    .push(", ")
    .push_bind(vec![now; wanted.len()])
    // `not in`, not `not exists`: PostgreSQL hashes the moved rows instead of scanning
    // them for each wanted timer (it cannot tell how many a CTE returns).
    .push(format!(
        ") as n ({DEADLINE_COLUMNS}) where visit_id in (select visit_id from saved) \
             and (visit_id, kind) not in (select visit_id, kind from moved where state = 'armed')), "
    ));
}

/// `live`: each saved visit as it is now, for the live boards.
fn push_live(q: &mut QueryBuilder<Db>, saves: &[&Save], now: DateTime<Utc>) {
    q.push(format!(
        "live as (insert into live_event ({LIVE_COLUMNS}) select {LIVE_COLUMNS} from unnest("
    ))
    .push_bind(saves.iter().map(|s| s.visit.id.0).collect::<Vec<_>>())
    .push(", ")
    .push_bind(saves.iter().map(|s| s.visit.team.0).collect::<Vec<_>>())
    .push(", ")
    .push_bind(vec!["visit"; saves.len()])
    .push(", ")
    .push_bind(saves.iter().map(|s| Json(&s.visit)).collect::<Vec<_>>())
    .push(", ")
    .push_bind(vec![now; saves.len()])
    .push(format!(
        ") as l (visit_id, {LIVE_COLUMNS}) where visit_id in (select visit_id from saved))"
    ));
}

/// The notifications `n` calls for, each a one-row subquery joined to the answer: evaluated
/// once, and sent at the statement's commit like any NOTIFY in a transaction.
fn push_notices(q: &mut QueryBuilder<Db>, n: Notices) {
    for (i, sql) in n.statements().enumerate() {
        q.push(format!(" cross join ({sql}) as n{i}"));
    }
}
