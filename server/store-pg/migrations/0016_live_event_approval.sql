-- A worker's ask for a supervisor's approval of a lone visit (rule 5) and the answer to it
-- are live events of the team: they matter only while the worker waits at the door, so they
-- have no table of their own. The phones' battery reports (`status`) are live events too.

alter table live_event drop constraint live_event_kind_check;
alter table live_event add constraint live_event_kind_check
    check (kind in ('visit', 'alarm', 'shift', 'status', 'approval_request', 'approval_answer'));
