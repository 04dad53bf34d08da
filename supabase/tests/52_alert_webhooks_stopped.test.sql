-- Alerts, continued: "webhooks stopped" and its recovery (20261202920000_alert_webhooks_stopped.sql).
begin;
select plan(13);

-- whatever earlier tests committed is set aside (this transaction is rolled back)
delete from public.kiotviet_alert_events;
delete from public.kiotviet_alert_state;
delete from public.kiotviet_webhook_events;
delete from public.kiotviet_webhook_registrations;
delete from public.kiotviet_sync_logs;
delete from public.kiotviet_sync_schedules;

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c0000000-0000-0000-0000-0000000000d1', 'hook-shop', 'hook-client', 'x', true),
  ('c0000000-0000-0000-0000-0000000000d2', 'quiet-new-shop', 'hook-client-2', 'x', true);
insert into public.kiotviet_webhook_registrations (credential_id, event_type, url) values
  ('c0000000-0000-0000-0000-0000000000d1', 'product.update', 'https://kvsync.example/functions/v1/kiotviet-webhook'),
  ('c0000000-0000-0000-0000-0000000000d2', 'product.update', 'https://kvsync.example/functions/v1/kiotviet-webhook');
insert into public.kiotviet_webhook_events (credential_id, dedupe_key, body, status, received_at) values
  ('c0000000-0000-0000-0000-0000000000d1', 'old', '{}', 'applied', now() - interval '3 hours');

create temp table w1 as select * from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 3600);
select is((select array_agg(kind) from w1), array['webhooks_stopped'],
          'a shop that received webhooks and none for longer than the limit: webhooks stopped');
select is((select details ->> 'retailer_name' from w1), 'hook-shop', 'the event names the shop');
select is((select (details ->> 'stopped_seconds')::int from w1), 3600, 'and the limit');
select ok((select details ? 'last_received_at' and details ->> 'credential_id' = 'c0000000-0000-0000-0000-0000000000d1' from w1),
          'and the last event and the credential (for the command that re-registers)');
select is((select count(*)::int from public.kiotviet_alert_deliveries d join w1 using (event_id)), 1, 'one delivery per channel');
select is_empty($$select * from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 3600)$$,
                'once: scanning again raises nothing, and a shop registered that never received is not stopped');
select is_empty($$select * from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 86400)$$,
                'a longer limit later is no recovery: the state changes only when events arrive');
select throws_ok($$select * from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 10)$$, '22023', null,
                 'a limit under a minute is refused');

insert into public.kiotviet_webhook_events (credential_id, dedupe_key, body, status, received_at) values
  ('c0000000-0000-0000-0000-0000000000d1', 'new', '{}', 'pending', now());
select is((select array_agg(kind || ':' || (details ->> 'previous_state'))
             from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 3600)),
          array['recovered:webhooks_stopped'], 'events arriving again: one recovery');

-- the events kiotviet_purge removed: the watch keeps its state, no false recovery
update public.kiotviet_webhook_events set received_at = now() - interval '2 hours';
select is((select array_agg(kind) from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 3600)),
          array['webhooks_stopped'], 'quiet again: stopped again');
delete from public.kiotviet_webhook_events;
select is_empty($$select * from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 3600)$$,
                'no event left at all (purged) is not a recovery');
delete from public.kiotviet_webhook_registrations where credential_id = 'c0000000-0000-0000-0000-0000000000d1';
select is_empty($$select * from public.kiotviet_alert_scan(1, 3, 600, 86400, array['email'], 3600)$$,
                'registrations removed: no message');
select is_empty($$select 1 from public.kiotviet_alert_state where subject = 'webhooks:c0000000-0000-0000-0000-0000000000d1'$$,
                'and the watch ends');

select * from finish();
rollback;
