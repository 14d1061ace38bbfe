-- A visit that ends cancels its reminders still waiting to be sent: find them by visit.
create index outbox_pending_visit_idx on outbox (visit_id) where state = 'pending';
