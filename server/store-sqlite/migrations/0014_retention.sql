-- Retention of visit details and of the audit log (daily maintenance job).

-- The one place per team that old home visits point to once pseudonymised, instead of the home.
alter table place add column pseudonym boolean not null default false;
create unique index place_one_pseudonym_key on place (team_id) where pseudonym;

-- The audit log stays append-only, with one narrow exception: a line older than a year by this
-- database's own clock may be deleted (the retention job). No update and no younger line,
-- whatever the application asks. (`at` is RFC 3339 text, which sorts as time.)
drop trigger audit_log_no_delete;
create trigger audit_log_no_delete before delete on audit_log
when old.at >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-365 days')
begin
    select raise(abort, 'audit_log is append-only');
end;
