-- kiotviet_purge removes settled alerts past the retention (20261202920100_purge_alerts.sql).
begin;
select plan(3);

-- whatever earlier tests committed is set aside (this transaction is rolled back)
delete from public.kiotviet_alert_events;
delete from public.kiotviet_alert_state;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c0000000-0000-0000-0000-0000000000d1', 'purge-alert-shop', 'purge-alert-client', 'x', true);
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
select is((select public.kiotviet_purge() - 'cutoff' - 'cron_job_run_details' - 'net_http_response' - 'kiotviet_sync_logs'),
          '{"kiotviet_alert_events": 1, "kiotviet_alert_deliveries": 2, "kiotviet_alert_state": 1}'::jsonb,
          'the purge says what it removed of the alerts');
select set_eq($$select id::text from public.kiotviet_alert_events$$,
  array['e0000000-0000-0000-0000-0000000000d2', 'e0000000-0000-0000-0000-0000000000d3'],
  'old events whose deliveries are all final go (with their deliveries); one still being retried and recent ones stay');
select set_eq($$select subject from public.kiotviet_alert_state$$,
  array['stale:c0000000-0000-0000-0000-0000000000d1:keep', 'stale:c0000000-0000-0000-0000-0000000000d1:bad',
        'stale:c0000000-0000-0000-0000-0000000000d1:new'],
  'an old ok state with no event left goes; one whose event stays, one not ok, and a recent one stay');

select * from finish();
rollback;
