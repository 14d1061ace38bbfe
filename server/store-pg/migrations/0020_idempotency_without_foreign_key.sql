-- An idempotency key's claim no longer has PostgreSQL check that its person exists. Every
-- signal from the app carries a key, so each check-in claimed one, and each check locked the
-- person's row (a WAL record) while the check-in's own event locked it too, from another
-- transaction. The person is the one just signed in, and no person is ever deleted.
-- SQLite keeps this foreign key, enforced, and every store test runs on both databases.
alter table idempotency drop constraint idempotency_person_id_fkey;
