-- A visit's timers have no alarm, an alarm's deadlines no visit: neither needs an entry under
-- the id it lacks. Every check-in moves its visit's two timers (a new row version each, since
-- the due time is indexed), and each move wrote a null into the alarms' index.
drop index deadline_visit_idx;
create index deadline_visit_idx on deadline (visit_id) where state = 'armed' and visit_id is not null;
drop index deadline_alarm_idx;
create index deadline_alarm_idx on deadline (alarm_id) where state = 'armed' and alarm_id is not null;
