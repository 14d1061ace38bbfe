-- The last battery level each worker's phone reported during their open shift, for the
-- supervisors' board. One row per person, replaced by each report and deleted when the shift
-- ends: no history of a phone is kept.

create table phone_status (
    person_id uuid primary key references person (person_id),
    shift_id uuid not null references shift (shift_id), -- the shift it was reported in; shown only while that one is open
    battery_pct integer not null constraint phone_status_battery_pct_check check (battery_pct between 0 and 100),
    charging boolean,                    -- unknown when the phone does not say
    reported_at timestamptz not null,    -- the server's time of the report
    created_at timestamptz not null
);
