-- Web Push subscriptions of workers' and supervisors' browsers (PushSubscription.toJSON()).

create table push_subscription (
    push_subscription_id uuid primary key,
    person_id uuid not null references person (person_id),
    device_id uuid references device (device_id), -- the phone that registered it
    endpoint text not null constraint push_subscription_endpoint_key unique, -- the push resource
    p256dh text not null,                -- the browser's public key, base64url
    auth text not null,                  -- the browser's auth secret, base64url
    created_at timestamptz not null
);
create index push_subscription_person_idx on push_subscription (person_id);
