-- The changes the supervisors' live board streams (SSE): one row per change, written in the
-- transaction of the change; its id is the stream's event id, so a reconnecting board asks for
-- what came after. Kept a day by the daily maintenance job; an older board resyncs.

create table live_event (
    live_event_id integer primary key autoincrement,
    team_id blob not null references team (team_id),
    kind text not null constraint live_event_kind_check check (kind in ('visit', 'alarm', 'shift')),
    payload text not null,               -- the visit, alarm or shift as it is now (JSON)
    created_at text not null
);
create index live_event_team_idx on live_event (team_id, live_event_id);
