-- kiotviet_purge removes settled alerts (20261202920100_purge_alerts.sql) and applied webhook events
-- (20261202920300_purge_webhook_events.sql) past the retention.
begin;
select plan(5);

-- whatever earlier tests committed is set aside (this transaction is rolled back)
delete from public.kiotviet_alert_events;
delete from public.kiotviet_alert_state;
delete from public.kiotviet_webhook_events;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c0000000-0000-0000-0000-0000000000d1', 'purge-alert-shop', 'purge-alert-client', 'x', true),
  ('c0000000-0000-0000-0000-0000000000d2', 'purge-quiet-shop', 'purge-quiet-client', 'x', true);
-- webhook events: old applied ones go, except each shop's newest; pending and parked stay whatever their age
insert into public.kiotviet_webhook_events (credential_id, dedupe_key, body, status, received_at) values
  ('c0000000-0000-0000-0000-0000000000d1', 'old-applied', '{}', 'applied', now() - interval '40 days'),
  ('c0000000-0000-0000-0000-0000000000d1', 'old-parked', '{}', 'parked', now() - interval '40 days'),
  ('c0000000-0000-0000-0000-0000000000d1', 'old-pending', '{}', 'pending', now() - interval '39 days'),
  ('c0000000-0000-0000-0000-0000000000d1', 'new-applied', '{}', 'applied', now() - interval '1 day'),
  ('c0000000-0000-0000-0000-0000000000d2', 'quiet-older', '{}', 'applied', now() - interval '50 days'),
  ('c0000000-0000-0000-0000-0000000000d2', 'quiet-newest', '{}', 'applied', now() - interval '45 days');
-- kiotviet_purge: alerts older than the retention go once every delivery is final --------------------------
insert into public.kiotviet_alert_state (subject, credential_id, state, version, updated_at) values
  ('stale:c0000000-0000-0000-0000-0000000000d1:gone', 'c0000000-0000-0000-0000-0000000000d1', 'ok', 2, now() - interval '40 days'),
  ('stale:c0000000-0000-0000-0000-0000000000d1:keep', 'c0000000-0000-0000-0000-0000000000d1', 'ok', 2, now() - interval '40 days'),
  ('stale:c0000000-0000-0000-0000-0000000000d1:bad', 'c0000000-0000-0000-0000-0000000000d1', 'stale', 1, now() - interval '40 days'),
  ('stale:c0000000-0000-0000-0000-0000000000d1:new', 'c0000000-0000-0000-0000-0000000000d1', 'ok', 2, now() - interval '1 day');
insert into public.kiotviet_alert_events (id, dedupe_key, kind, credential_id, created_at) values
  ('e0000000-0000-0000-0000-0000000000d1', 'stale:c0000000-0000-0000-0000-0000000000d1:gone:1', 'stale', 'c0000000-0000-0000-0000-0000000000d1', now() - interval '40 days'),
  ('e0000000-0000-0000-0000-0000000000d2', 'stale:c0000000-0000-0000-0000-0000000000d1:keep:1', 'stale', 'c0000000-0000-0000-0000-0000000000d1', now() - interval '40 days'),
  ('e0000000-0000-0000-0000-0000000000d3', 'stale:c0000000-0000-0000-0000-0000000000d1:new:1', 'stale', 'c0000000-0000-0000-0000-0000000000d1', now() - interval '1 day');
insert into public.kiotviet_alert_deliveries (event_id, channel, status) values
  ('e0000000-0000-0000-0000-0000000000d1', 'email', 'sent'), ('e0000000-0000-0000-0000-0000000000d1', 'telegram', 'failed'),
  ('e0000000-0000-0000-0000-0000000000d2', 'email', 'sent'), ('e0000000-0000-0000-0000-0000000000d2', 'telegram', 'pending'),
  ('e0000000-0000-0000-0000-0000000000d3', 'email', 'sent');
create temp table purged as select public.kiotviet_purge() as r;
select is((select r - 'cutoff' - 'cron_job_run_details' - 'net_http_response' - 'kiotviet_sync_logs' from purged),
          '{"kiotviet_alert_events": 1, "kiotviet_alert_deliveries": 2, "kiotviet_alert_state": 1, "kiotviet_webhook_events": 2}'::jsonb,
          'the purge says what it removed of the alerts and the webhook events');
select set_eq($$select id::text from public.kiotviet_alert_events$$,
  array['e0000000-0000-0000-0000-0000000000d2', 'e0000000-0000-0000-0000-0000000000d3'],
  'old events whose deliveries are all final go (with their deliveries); one still being retried and recent ones stay');
select set_eq($$select subject from public.kiotviet_alert_state$$,
  array['stale:c0000000-0000-0000-0000-0000000000d1:keep', 'stale:c0000000-0000-0000-0000-0000000000d1:bad',
        'stale:c0000000-0000-0000-0000-0000000000d1:new'],
  'an old ok state with no event left goes; one whose event stays, one not ok, and a recent one stay');

select set_eq($$select dedupe_key from public.kiotviet_webhook_events$$,
  array['old-parked', 'old-pending', 'new-applied', 'quiet-newest'],
  'old applied webhook events go; parked, not yet applied, recent ones and a quiet shop''s newest stay');
select is((select last_received_at from public.kiotviet_webhook_health() where credential_id = 'c0000000-0000-0000-0000-0000000000d2'),
          (select received_at from public.kiotviet_webhook_events where dedupe_key = 'quiet-newest'),
          'so the last webhook of a shop quiet for longer than the retention is still known');

select * from finish();
rollback;
