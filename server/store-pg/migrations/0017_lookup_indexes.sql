-- Lookups on every request or firing that scanned whole tables: a person's teams (every
-- authenticated call and every recipient), a visit's alarms, a place's warnings, a team's open
-- shifts, a team's places, an alarm's pending messages. At 100,000 people the teams scan alone
-- cost ~10 ms per lookup.
create index team_member_person_idx on team_member (person_id);
create index alarm_visit_idx on alarm (visit_id);
create index alarm_person_idx on alarm (person_id);
create index place_warning_place_idx on place_warning (place_id);
create index place_team_idx on place (team_id);
create index shift_team_open_idx on shift (team_id) where ended_at is null;
create index outbox_pending_alarm_idx on outbox (alarm_id) where state = 'pending';
create index device_person_idx on device (person_id);
