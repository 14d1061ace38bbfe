-- The audit log: who read whose positions, who acknowledged and resolved what, and every
-- administrative change. Append-only, enforced by the database itself; kept longer than the
-- positions it speaks of.

create table audit_log (
    audit_log_id bigint generated always as identity primary key,
    at timestamptz not null,
    actor_id uuid,                       -- who did or read it; null for the command line
    action text not null,                -- position.read, alarm.acknowledge, admin.create_person, ...
    subject_id uuid,                     -- whose data it concerns
    object text                          -- what: an alarm id, a device id, a team's name
);
create index audit_log_subject_idx on audit_log (subject_id, audit_log_id);

create function audit_log_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only';
end
$$;
create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_log_append_only();
