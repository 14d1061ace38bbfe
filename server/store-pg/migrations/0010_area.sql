-- Areas (districts) that coverage figures are grouped by, and the indexes the coverage
-- report reads visits and alarms by (a team's, in a period).

create table area (
    area_id uuid primary key,
    team_id uuid not null references team (team_id),
    name text not null,
    outline jsonb not null,                -- GeoJSON geometry (RFC 7946): Polygon or MultiPolygon, [lon, lat]
    created_at timestamptz not null,
    constraint area_team_name_key unique (team_id, name)
);

create index visit_team_started_idx on visit (team_id, started_at);
create index alarm_team_raised_idx on alarm (team_id, raised_at);
