-- A worker's ask for a supervisor's approval of a lone visit (rule 5) and the answer to it
-- are live events of the team: they matter only while the worker waits at the door, so they
-- have no table of their own. The phones' battery reports (`status`) are live events too.
-- SQLite cannot change a check constraint: the table is built anew, ids and counter kept
-- (a board resumes by id, so an id must never be given out twice).

create table live_event_new (
    live_event_id integer primary key autoincrement,
    team_id blob not null references team (team_id),
    kind text not null constraint live_event_kind_check
        check (kind in ('visit', 'alarm', 'shift', 'status', 'approval_request', 'approval_answer')),
    payload text not null,               -- the record as it is after the change (JSON)
    created_at text not null
);
insert into live_event_new (live_event_id, team_id, kind, payload, created_at)
    select live_event_id, team_id, kind, payload, created_at from live_event;
delete from sqlite_sequence where name = 'live_event_new';
insert into sqlite_sequence (name, seq) select 'live_event_new', seq from sqlite_sequence where name = 'live_event';
drop table live_event;
alter table live_event_new rename to live_event;
create index live_event_team_idx on live_event (team_id, live_event_id);
