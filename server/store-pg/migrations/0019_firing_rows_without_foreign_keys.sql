-- The rows a deadline's firing and its sends write (alarm, SMS, attempt line, live event, next
-- deadline) no longer have PostgreSQL check their foreign keys. Each check locks the parent
-- row, a WAL record each, often for a parent the same transaction has just inserted: in a
-- burst of 10,000 deadlines due in one second the checks were about a third of the time.
-- No parent here is ever deleted (retention clears details of visits and alarms in place),
-- and every id written is one read from the database or inserted in the same transaction.
-- SQLite keeps these foreign keys, enforced, and every store test runs on both databases, so
-- a write that would break one still fails a test.
alter table alarm
    drop constraint alarm_team_id_fkey,
    drop constraint alarm_person_id_fkey,
    drop constraint alarm_visit_id_fkey;
alter table outbox
    drop constraint outbox_alarm_id_fkey,
    drop constraint outbox_visit_id_fkey,
    drop constraint outbox_person_id_fkey;
alter table outbox_attempt drop constraint outbox_attempt_outbox_id_fkey;
alter table live_event drop constraint live_event_team_id_fkey;
alter table deadline
    drop constraint deadline_alarm_id_fkey,
    drop constraint deadline_visit_id_fkey;
