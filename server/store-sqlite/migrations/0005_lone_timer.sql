-- The lone timer after a two-person break: when the pair broke, and the interval it runs at.
-- Additive, so a replica still on the previous version keeps working against this schema.

alter table visit add column alone_since text;
alter table visit add column break_check_in_minutes integer not null default 10;
