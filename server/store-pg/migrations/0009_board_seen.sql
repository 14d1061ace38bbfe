-- When a supervisor board of each team was last seen connected. Every process writes it for
-- the boards it serves (a heartbeat), so "nobody is watching" is judged over all replicas.

create table board_seen (
    team_id uuid primary key references team (team_id),
    seen_at timestamptz not null
);
