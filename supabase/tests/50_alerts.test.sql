-- Alert state and delivery (20261202600000_alerts.sql): one event per change of state, running long past
-- k × the usual duration, stale streams, delivery claims, retries with backoff and giving up.
begin;
select plan(22);

-- whatever earlier tests committed is set aside (this transaction is rolled back)
delete from public.kiotviet_alert_events;
delete from public.kiotviet_alert_state;
delete from public.kiotviet_sync_logs;
delete from public.kiotviet_sync_schedules;

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c0000000-0000-0000-0000-0000000000a1', 'alert-shop', 'alert-client', 'x', true);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, enabled, next_run_at,
                                            consecutive_failures, last_status, last_error) values
  ('50000000-0000-0000-0000-0000000000a1', 'c0000000-0000-0000-0000-0000000000a1', 'products_full', 'hourly', true,
   now() + interval '5 minutes', 2, 'failed', 'products: kiotviet: GET /products: status 503');
-- usual duration 10 s (three runs), a stream that last succeeded 2 days ago, one that succeeded now
insert into public.kiotviet_sync_logs (credential_id, schedule_id, sync_type, status, trigger, started_at, completed_at, stats) values
  ('c0000000-0000-0000-0000-0000000000a1', '50000000-0000-0000-0000-0000000000a1', 'products_full', 'success', 'cron',
   now() - interval '3 days', now() - interval '3 days' + interval '10 seconds', '{"products":{"count":1},"categories":{"count":1}}'),
  ('c0000000-0000-0000-0000-0000000000a1', '50000000-0000-0000-0000-0000000000a1', 'products_full', 'success', 'cron',
   now() - interval '2 days', now() - interval '2 days' + interval '10 seconds', '{"products":{"count":1},"categories":{"count":1}}'),
  ('c0000000-0000-0000-0000-0000000000a1', '50000000-0000-0000-0000-0000000000a1', 'products_full', 'partial', 'cron',
   now() - interval '1 hour', now() - interval '1 hour' + interval '10 seconds', '{"products":{"count":0,"error":"status 503"},"categories":{"count":1}}'),
  ('c0000000-0000-0000-0000-0000000000a1', '50000000-0000-0000-0000-0000000000a1', 'products_full', 'failed', 'cron',
   now() - interval '30 minutes', now() - interval '30 minutes' + interval '10 seconds', '{"products":{"count":0,"error":"status 503"}}');

select is((select last_success_at from public.kiotviet_freshness() where stream = 'products'),
          (select completed_at from public.kiotviet_sync_logs where started_at < now() - interval '47 hours' and started_at > now() - interval '49 hours'),
          'freshness: a stream''s last success is the finish of its last run without an error for it');
select ok((select last_success_at > now() - interval '2 hours' from public.kiotviet_freshness() where stream = 'categories'),
          'freshness: a partial run counts for the streams that succeeded in it');

create temp table ev1 as select * from public.kiotviet_alert_scan(2, 3, 0, 86400, array['email', 'telegram']);
select is((select array_agg(kind order by kind) from ev1), array['failing', 'stale'],
          'a schedule with 2 failures (limit 2) is failing and a stream without success for a day is stale');
select is((select details ->> 'retailer_name' from ev1 where kind = 'failing'), 'alert-shop', 'the event names the shop');
select is((select (details ->> 'failures')::int from ev1 where kind = 'failing'), 2, 'and the tries');
select ok((select details ? 'failing_since' from ev1 where kind = 'failing'), 'and since when');
select is((select count(*)::int from public.kiotviet_alert_deliveries d join ev1 on ev1.event_id = d.event_id), 4,
          'one pending delivery per event and channel');
select is_empty($$select * from public.kiotviet_alert_scan(2, 3, 0, 86400, array['email'])$$,
                'scanning again raises nothing: one alert per change of state');

-- a run going for 100 s against a usual 10 s (factor 3): running long, once
insert into public.kiotviet_sync_logs (credential_id, schedule_id, sync_type, status, trigger, started_at, worker, lease_expires_at)
values ('c0000000-0000-0000-0000-0000000000a1', '50000000-0000-0000-0000-0000000000a1', 'products_full', 'running', 'cron',
        now() - interval '100 seconds', 'w1', now() + interval '1 minute');
select is((select array_agg(kind) from public.kiotviet_alert_scan(2, 3, 0, 86400, array['email'])), array['running_long'],
          'a run past 3 × its usual duration is running long');
select is_empty($$select * from public.kiotviet_alert_scan(2, 3, 0, 86400, array['email'])$$, 'and only once');
select is_empty($$select * from public.kiotviet_alert_scan(2, 3, 600, 86400, array['email'])$$,
                'a higher minimum does not raise it again either (the state is kept, not recomputed into news)');
delete from public.kiotviet_sync_logs where status = 'running';
select is_empty($$select * from public.kiotviet_alert_scan(2, 3, 0, 86400, array['email'])$$, 'the long run ending is no news');

-- recovery
update public.kiotviet_sync_schedules set consecutive_failures = 0, last_status = 'success', last_error = null
 where id = '50000000-0000-0000-0000-0000000000a1';
select is((select array_agg(kind) from public.kiotviet_alert_scan(2, 3, 0, 86400, array['email'])), array['recovered'],
          'a failing schedule back to 0 failures has recovered');
select is((select count(*)::int from public.kiotviet_alert_events where dedupe_key like 'schedule:%'), 2,
          'failing and recovered are the schedule''s only events');

-- delivery: claim, fail, back off, give up; success is final
create temp table c1 as select * from public.kiotviet_alert_claim(100, 60);
select is((select count(*)::int from c1), 6, 'every pending delivery is claimed once');
select is_empty($$select * from public.kiotviet_alert_claim(100, 60)$$, 'claimed deliveries are not claimed again within the lease');
select is(public.kiotviet_alert_delivered(event_id, channel, 'SMTP login refused', 2), 'pending', 'a failed send is kept for a retry')
  from c1 where channel = 'telegram' and kind = 'failing';
select ok((select next_attempt_at > now() + interval '20 seconds' from public.kiotviet_alert_deliveries d
            join c1 using (event_id, channel) where channel = 'telegram' and c1.kind = 'failing'), 'after a backoff');
update public.kiotviet_alert_deliveries set next_attempt_at = now() where channel = 'telegram';
select is((select public.kiotviet_alert_delivered(event_id, channel, 'SMTP login refused', 2)
             from public.kiotviet_alert_claim(100, 60, (select event_id from c1 where channel = 'telegram' and kind = 'failing'))
            where channel = 'telegram'),
          'failed', 'given up after the last attempt');
select is(public.kiotviet_alert_delivered(event_id, channel, null, 8), 'sent', 'a send that worked is sent')
  from c1 where channel = 'email' and kind = 'failing';
select is((select array[channel, failed::text, last_error] from public.kiotviet_alert_problems()),
          array['telegram', '1', 'SMTP login refused'], 'problems: the channel, how many gave up, the last error');

select ok(not has_function_privilege('authenticated', 'public.kiotviet_alert_scan(integer, numeric, integer, integer, text[], integer)', 'execute'),
          'only the service role may scan');
select * from finish();
rollback;
