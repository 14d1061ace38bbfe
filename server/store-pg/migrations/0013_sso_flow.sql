-- Single sign-on (OpenID Connect) sign-ins under way: what the callback needs to finish one.
-- In the database, so that any replica can finish a sign-in another one started; single use
-- (the callback deletes the row it takes), and short-lived.

create table sso_flow (
    state_hash text primary key,         -- SHA-256 of the OAuth `state`, which the browser carries
    nonce text not null,                 -- the ID token must name it (replay of an old token)
    pkce_verifier text not null,         -- the PKCE secret (RFC 7636); the provider saw only its hash
    return_to text not null,             -- our page to open once signed in
    expires_at timestamptz not null,
    created_at timestamptz not null
);
