-- Makker's foundation schema for PostgreSQL. Times are timestamptz (UTC), ids are uuid.
-- Never edit an applied migration: add a new one.

create table team (
    team_id uuid primary key,            -- uuid
    name text not null,                  -- shown on boards
    time_zone text not null,             -- IANA zone for display, e.g. Europe/Copenhagen
    created_at timestamptz not null
);

create table person (
    person_id uuid primary key,
    username text not null constraint person_username_key unique,
    display_name text not null,
    role text not null constraint person_role_check check (role in ('worker', 'supervisor', 'manager', 'admin')),
    phone text,                          -- E.164, for SMS
    lang text not null constraint person_lang_check check (lang in ('da', 'sv', 'en')),
    password_hash text,                  -- argon2id PHC string
    pin_hash text,                       -- check-out PIN, argon2id
    duress_pin_hash text,                -- duress PIN, argon2id
    created_at timestamptz not null
);

create table team_member (
    team_id uuid not null references team (team_id),
    person_id uuid not null references person (person_id),
    created_at timestamptz not null,
    constraint team_member_pkey primary key (team_id, person_id)
);

create table device (
    device_id uuid primary key,
    person_id uuid not null references person (person_id),
    token_hash text not null constraint device_token_hash_key unique, -- sha-256 hex of the bearer token
    name text not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    revoked_at timestamptz
);

create table shift (
    shift_id uuid primary key,
    person_id uuid not null references person (person_id),
    team_id uuid not null references team (team_id),
    started_at timestamptz not null,
    ended_at timestamptz,
    created_at timestamptz not null
);
create unique index shift_one_open_key on shift (person_id) where ended_at is null;

create table place (
    place_id uuid primary key,
    team_id uuid not null references team (team_id),
    name text not null,
    kind text not null constraint place_kind_check check (kind in ('park', 'drop_in', 'shelter', 'street', 'home', 'other')),
    shape jsonb not null,                -- json: circle or polygon
    center_lat double precision not null,
    center_lon double precision not null,
    created_at timestamptz not null
);

create table place_warning (
    place_warning_id uuid primary key,
    place_id uuid not null references place (place_id),
    kind text not null constraint place_warning_kind_check check (kind in ('dog', 'threat', 'violence', 'weapon', 'other')),
    text text not null,
    created_at timestamptz not null,
    expires_at timestamptz not null
);

create table assessment (
    assessment_id uuid primary key,
    place_id uuid not null references place (place_id),
    team_id uuid not null references team (team_id),
    person_id uuid not null references person (person_id),
    answers jsonb not null,              -- json: question id -> yes/no
    points integer not null,
    level text not null constraint assessment_level_check check (level in ('low', 'medium', 'high', 'very_high')),
    assessed_at timestamptz not null,
    created_at timestamptz not null
);

create table lone_approval (
    lone_approval_id uuid primary key,
    worker_id uuid not null references person (person_id),
    supervisor_id uuid not null references person (person_id),
    place_id uuid not null references place (place_id),
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
);

create table visit (
    visit_id uuid primary key,
    team_id uuid not null references team (team_id),
    place_id uuid not null references place (place_id),
    assessment_id uuid not null references assessment (assessment_id),
    kind text not null constraint visit_kind_check check (kind in ('street_contact', 'home_visit_announced', 'home_visit_unannounced', 'drop_in', 'shelter', 'park', 'other')),
    state text not null constraint visit_state_check check (state in ('active', 'ended')),
    points integer not null,             -- risk points at the start, warnings included
    level text not null constraint visit_level_check check (level in ('low', 'medium', 'high', 'very_high')),
    started_at timestamptz not null,
    planned_end timestamptz not null,
    last_check_in_at timestamptz not null,
    last_seen_at timestamptz not null,            -- the last sign of life from a phone (check-in, heartbeat)
    ended_at timestamptz,
    min_participants integer not null,   -- policy terms copied at the start
    check_in_minutes integer not null,
    max_minutes integer not null,
    grace_minutes integer not null,
    tell_colleague_on_exit boolean not null,
    chain text not null,
    lone_reason text,
    approved_by uuid references person (person_id),
    tell_colleague uuid references person (person_id),
    version bigint not null,            -- optimistic lock, +1 per save
    created_at timestamptz not null
);

create table visit_participant (
    visit_id uuid not null references visit (visit_id),
    person_id uuid not null references person (person_id),
    position integer not null,           -- order in which the participants were named
    role text not null constraint visit_participant_role_check check (role in ('talker', 'observer')),
    joined_at timestamptz not null,
    left_at timestamptz,
    created_at timestamptz not null,
    constraint visit_participant_pkey primary key (visit_id, person_id)
);
create unique index visit_participant_one_active_key on visit_participant (person_id) where left_at is null;

create table visit_event (
    visit_event_id bigint generated always as identity primary key,
    visit_id uuid not null references visit (visit_id),
    person_id uuid references person (person_id),
    kind text not null,
    payload jsonb not null,              -- json: the domain effect
    occurred_at timestamptz not null,           -- the phone's time when given (bounded), else received_at
    received_at timestamptz not null,
    client_time timestamptz,
    lat double precision,                -- only during a visit
    lon double precision,
    created_at timestamptz not null
);
create index visit_event_visit_idx on visit_event (visit_id, occurred_at);

create table alarm (
    alarm_id uuid primary key,
    team_id uuid not null references team (team_id),
    person_id uuid not null references person (person_id), -- the worker the alarm is about
    visit_id uuid references visit (visit_id),
    kind text not null constraint alarm_kind_check check (kind in ('missed_check_in', 'missed_check_out', 'sos', 'duress', 'lost_heartbeat')),
    state text not null constraint alarm_state_check check (state in ('open', 'acknowledged', 'resolved')),
    raised_at timestamptz not null,
    chain text not null,                 -- escalation chain from the policy
    step integer not null,               -- next escalation step to run
    acknowledged_by uuid references person (person_id),
    acknowledged_at timestamptz,
    resolved_by uuid references person (person_id),
    resolved_at timestamptz,
    outcome text,
    note text,
    lat double precision,                -- where the worker was when it was raised
    lon double precision,
    drill boolean not null,              -- a practice alarm: messages marked, kept out of statistics
    version integer not null,            -- optimistic lock, +1 per save
    created_at timestamptz not null
);

create table idempotency (
    person_id uuid not null references person (person_id),
    idempotency_key text not null,
    request_hash text not null,          -- sha-256 of method, path and body
    status_code integer,                 -- null while in progress
    response_body text,
    created_at timestamptz not null,
    constraint idempotency_pkey primary key (person_id, idempotency_key)
);
