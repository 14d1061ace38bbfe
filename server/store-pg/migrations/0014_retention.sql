-- Retention of visit details and of the audit log (daily maintenance job).

-- The one place per team that old home visits point to once pseudonymised, instead of the home.
alter table place add column pseudonym boolean not null default false;
create unique index place_one_pseudonym_key on place (team_id) where pseudonym;

-- The audit log stays append-only, with one narrow exception: a line older than a year by this
-- database's own clock may be deleted (the retention job). No update, no younger line, and no
-- truncate, whatever the application asks.
create or replace function audit_log_append_only() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' and old.at < now() - interval '365 days' then
        return old;
    end if;
    raise exception 'audit_log is append-only';
end
$$;

create function audit_log_no_truncate() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only';
end
$$;
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_no_truncate();
