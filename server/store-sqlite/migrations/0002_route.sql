-- Planned routes: stops (places) on weekdays between local times of the team's zone.

create table route (
    route_id blob primary key,
    team_id blob not null references team (team_id),
    name text not null,
    valid_from date not null,            -- first day the route applies
    valid_until date,                    -- last day, or open-ended
    created_at text not null
);

create table route_stop (
    route_id blob not null references route (route_id),
    position integer not null,           -- order of the stop on the route
    place_id blob not null references place (place_id),
    weekday integer not null constraint route_stop_weekday_check check (weekday between 1 and 7), -- 1 = Monday
    opens_minute integer not null,       -- minutes after local midnight
    closes_minute integer not null,
    created_at text not null,
    constraint route_stop_pkey primary key (route_id, position),
    constraint route_stop_window_check check (opens_minute < closes_minute)
);
