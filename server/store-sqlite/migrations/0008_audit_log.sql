-- The audit log: who read whose positions, who acknowledged and resolved what, and every
-- administrative change. Append-only, enforced by the database itself; kept longer than the
-- positions it speaks of.

create table audit_log (
    audit_log_id integer primary key autoincrement,
    at text not null,
    actor_id blob,                       -- who did or read it; null for the command line
    action text not null,                -- position.read, alarm.acknowledge, admin.create_person, ...
    subject_id blob,                     -- whose data it concerns
    object text                          -- what: an alarm id, a device id, a team's name
);
create index audit_log_subject_idx on audit_log (subject_id, audit_log_id);

create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;
create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;
