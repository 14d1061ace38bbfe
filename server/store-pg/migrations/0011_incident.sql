-- Incidents against staff (threat, violence, offensive act, near miss) and the Danish
-- deadlines they start: notice to the working-environment authority within 9 days of the
-- first day of absence, a police report within 72 hours. A deadline is tracked until done.

create table incident (
    incident_id uuid primary key,
    team_id uuid not null references team (team_id),
    place_id uuid not null references place (place_id),
    visit_id uuid references visit (visit_id),
    reported_by uuid not null references person (person_id),
    kind text not null constraint incident_kind_check check (kind in ('threat', 'violence', 'offensive_act', 'near_miss')),
    description text not null,
    occurred_at timestamptz not null,
    authority_due_at timestamptz,               -- null: no absence followed (yet)
    authority_done_at timestamptz,
    police_due_at timestamptz,                  -- null: no police report to make
    police_done_at timestamptz,
    place_warning_id uuid references place_warning (place_warning_id), -- the warning it put on the place
    created_at timestamptz not null              -- when it was reported
);
create index incident_team_occurred_idx on incident (team_id, occurred_at);
