-- Failed sign-ins per username, for the lockout: in the database so that every replica and a
-- restart agree. A successful sign-in deletes the row.

create table login_failure (
    username text primary key,        -- SHA-256 of the lowercased username, never the text
    failures integer not null,
    first_failed_at text not null,     -- the window of counted failures starts here
    locked_until text                  -- no sign-in, even with the right password, until then
);
