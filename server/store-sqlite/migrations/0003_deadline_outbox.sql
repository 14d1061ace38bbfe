-- The deadline engine: every timer is a row; every message goes out through the outbox.

create table deadline (
    deadline_id integer primary key autoincrement,
    kind text not null constraint deadline_kind_check check (kind in ('reminder', 'overdue', 'silence', 'escalate', 'follow_up')),
    visit_id blob references visit (visit_id),
    alarm_id blob references alarm (alarm_id),
    due_at text not null,
    state text not null constraint deadline_state_check check (state in ('armed', 'fired', 'cancelled')),
    claimed_by text,                     -- the process holding the lease
    claim_expires_at text,                -- a lapsed lease may be claimed again
    fired_at text,
    created_at text not null
);
create index deadline_armed_due_idx on deadline (due_at) where state = 'armed';
create index deadline_visit_idx on deadline (visit_id) where state = 'armed';
create index deadline_alarm_idx on deadline (alarm_id) where state = 'armed';

create table outbox (
    outbox_id blob primary key,
    dedup_key text not null constraint outbox_dedup_key unique, -- e.g. alarm:<id>:2:<person>:sms
    alarm_id blob references alarm (alarm_id),
    visit_id blob references visit (visit_id),
    person_id blob not null references person (person_id), -- the recipient
    channel text not null constraint outbox_channel_check check (channel in ('push', 'sms')),
    kind text not null,                  -- reminder, alarm, stand_down, tell_colleague, ...
    body text not null,                  -- the text, in the recipient's language
    drill boolean not null,
    state text not null constraint outbox_state_check check (state in ('pending', 'sent', 'failed', 'cancelled')),
    attempts integer not null,
    next_attempt_at text not null,
    claimed_by text,
    claim_expires_at text,
    provider text,                       -- who accepted it
    provider_ref text,                   -- the provider's id for it
    last_error text,
    receipt text,                        -- the provider's last delivery report (delivered, failed, ...)
    receipt_at text,
    created_at text not null,
    sent_at text
);
create index outbox_pending_idx on outbox (next_attempt_at) where state = 'pending';

create table outbox_attempt (
    outbox_attempt_id integer primary key autoincrement,
    outbox_id blob not null references outbox (outbox_id),
    attempt integer not null,
    provider text not null,
    outcome text not null constraint outbox_attempt_outcome_check check (outcome in ('sent', 'retry', 'failed')),
    detail text,                         -- the provider's answer or the error
    created_at text not null
);
create index outbox_attempt_outbox_idx on outbox_attempt (outbox_id);
