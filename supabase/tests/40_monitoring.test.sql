-- Monitoring views (20261130000600_monitoring.sql): what they say, and who may see it.
begin;
select plan(32);

-- A shop with three schedules, a shop whose credential is off, and a run in progress.
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c0000000-0000-0000-0000-0000000000d1', 'mon-shop', 'mon-client', 'x', true),
  ('c0000000-0000-0000-0000-0000000000d2', 'mon-off', 'mon-client-2', 'x', false);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, enabled, next_run_at,
                                            consecutive_failures, last_status, last_error) values
  ('50000000-0000-0000-0000-0000000000d1', 'c0000000-0000-0000-0000-0000000000d1', 'products_full', 'daily', true,
   now() - interval '10 minutes', 2, 'failed', 'KiotViet 503'),
  ('50000000-0000-0000-0000-0000000000d2', 'c0000000-0000-0000-0000-0000000000d1', 'attributes', 'hourly', true,
   now() + interval '1 hour', 0, 'success', null),
  ('50000000-0000-0000-0000-0000000000d3', 'c0000000-0000-0000-0000-0000000000d1', 'categories', 'daily', false,
   now() - interval '1 hour', 0, null, null),
  ('50000000-0000-0000-0000-0000000000d4', 'c0000000-0000-0000-0000-0000000000d2', 'products_full', 'daily', true,
   now() - interval '1 hour', 0, null, null);
insert into public.kiotviet_sync_logs (credential_id, schedule_id, sync_type, status, trigger, started_at, completed_at,
                                       records_synced, api_calls, worker, progress, lease_expires_at) values
  -- in the last 7 days: 3 successes (10, 20, 30 s), 1 failure (40 s), 1 skip
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'success', 'cron',
   now() - interval '1 day', now() - interval '1 day' + interval '10 seconds', 100, 2, null, '{}', null),
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'success', 'cron',
   now() - interval '2 days', now() - interval '2 days' + interval '20 seconds', 200, 3, null, '{}', null),
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'success', 'cron',
   now() - interval '3 days', now() - interval '3 days' + interval '30 seconds', 300, 4, null, '{}', null),
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'failed', 'cron',
   now() - interval '4 days', now() - interval '4 days' + interval '40 seconds', 0, 1, null, '{}', null),
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'skipped', 'cron',
   now() - interval '5 days', now() - interval '5 days', 0, 0, null, '{}', null),
  -- 20 days ago: one slow success (100 s); 40 days ago: outside both windows
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'success', 'cron',
   now() - interval '20 days', now() - interval '20 days' + interval '100 seconds', 1000, 10, null, '{}', null),
  ('c0000000-0000-0000-0000-0000000000d1', '50000000-0000-0000-0000-0000000000d1', 'products_full', 'success', 'cron',
   now() - interval '40 days', now() - interval '40 days' + interval '1 second', 5, 1, null, '{}', null),
  -- running now, started by hand (no schedule): it is what holds the credential
  ('c0000000-0000-0000-0000-0000000000d1', null, 'attributes', 'running', 'manual',
   now() - interval '2 minutes', null, 0, 5, 'worker-7', '{"stream":"attributes","page":3}', now() + interval '1 minute');

-- Structure and access ----------------------------------------------------------------------------------------
select ok((select reloptions @> array['security_invoker=true'] from pg_class where oid = 'public.kiotviet_schedule_status'::regclass),
  'kiotviet_schedule_status runs as the caller (security_invoker), so RLS applies');
select ok((select reloptions @> array['security_invoker=true'] from pg_class where oid = 'public.kiotviet_run_stats'::regclass),
  'kiotviet_run_stats runs as the caller (security_invoker), so RLS applies');
select table_privs_are('public', 'kiotviet_schedule_status', 'anon', array[]::text[], 'anon has no privilege on kiotviet_schedule_status');
select table_privs_are('public', 'kiotviet_run_stats', 'anon', array[]::text[], 'anon has no privilege on kiotviet_run_stats');
select table_privs_are('public', 'kiotviet_schedule_status', 'authenticated', array['SELECT'], 'authenticated may only SELECT kiotviet_schedule_status');
select table_privs_are('public', 'kiotviet_run_stats', 'service_role', array['SELECT'], 'service_role may only SELECT kiotviet_run_stats');

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"a0000000-0000-0000-0000-0000000000d1","role":"authenticated","app_metadata":{"role":"user"}}', true);
select is_empty($$select 1 from public.kiotviet_schedule_status where credential_id = 'c0000000-0000-0000-0000-0000000000d1'$$,
  'a non-admin sees no schedule status');
select is_empty($$select 1 from public.kiotviet_run_stats where credential_id = 'c0000000-0000-0000-0000-0000000000d1'$$,
  'a non-admin sees no run stats');
select set_config('request.jwt.claims', '{"sub":"a0000000-0000-0000-0000-0000000000d2","role":"authenticated","app_metadata":{"role":"admin"}}', true);
select is((select count(*)::int from public.kiotviet_schedule_status where credential_id = 'c0000000-0000-0000-0000-0000000000d1'), 3,
  'an admin sees the schedule status of every schedule');

-- kiotviet_schedule_status (read as the admin) -------------------------------------------------------------------
select is((select is_due from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d1'), true,
  'an enabled schedule past next_run_at with an active credential is due');
select is((select is_due from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d2'), false,
  'a schedule whose next_run_at is ahead is not due');
select is((select seconds_until_next_run from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d2'),
  3600::bigint, 'seconds_until_next_run counts down to next_run_at');
select is((select seconds_until_next_run from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d1'),
  -600::bigint, 'seconds_until_next_run is negative when overdue');
select is((select is_due from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d3'), false,
  'a disabled schedule is never due');
select is((select is_due from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d4'), false,
  'a schedule whose credential is inactive is never due');
select results_eq($$select retailer_name, last_status, last_error, consecutive_failures from public.kiotviet_schedule_status
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values ('mon-shop'::text, 'failed'::text, 'KiotViet 503'::text, 2)$$,
  'the status shows the shop, the last outcome, its error and the failure count');
select results_eq($$select running_worker, running_trigger, running_progress, running_started_at from public.kiotviet_schedule_status
                    where schedule_id = '50000000-0000-0000-0000-0000000000d2'$$,
  $$values ('worker-7'::text, 'manual'::text, '{"stream":"attributes","page":3}'::jsonb, now() - interval '2 minutes')$$,
  'a manual run shows on the row of its own schedule (same credential and sync type): worker, trigger, progress, started_at');
select results_eq($$select running_log_id is null, credential_busy_log_id is not null from public.kiotviet_schedule_status
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values (true, true)$$,
  'another schedule of the credential shows no run of its own, and that the credential is busy');
select is((select next_retry_at from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d1'),
  now() - interval '10 minutes', 'a failing schedule shows its next retry');
select is((select next_retry_at from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d2'),
  null, 'a healthy schedule shows no retry');
select is((select next_run_local from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d2'),
  to_char((now() + interval '1 hour') at time zone 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI') || ' Asia/Ho_Chi_Minh',
  'times in the schedule''s zone, the zone named');
select is((select running_log_id from public.kiotviet_schedule_status where schedule_id = '50000000-0000-0000-0000-0000000000d4'), null,
  'a credential with no run in progress shows none');

-- kiotviet_run_stats (read as the admin) --------------------------------------------------------------------------
select results_eq($$select runs_7d, failed_7d, success_rate_7d, records_synced_7d, api_calls_7d from public.kiotviet_run_stats
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values (5::bigint, 1::bigint, 0.75::numeric, 600::bigint, 10::bigint)$$,
  '7 days: 5 runs, 1 failed, success rate 3 of 4 attempted (a skip is not an attempt), rows and API calls summed');
select results_eq($$select p50_seconds_7d, p95_seconds_7d from public.kiotviet_run_stats
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values (25::numeric, 38.5::numeric)$$,
  '7 days: p50 and p95 duration over attempted runs (10, 20, 30, 40 s)');
select results_eq($$select runs_30d, success_rate_30d, p50_seconds_30d, p95_seconds_30d, records_synced_30d from public.kiotviet_run_stats
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values (6::bigint, 0.8::numeric, 30::numeric, 88::numeric, 1600::bigint)$$,
  '30 days: the older slow run counts, the 40-day-old one does not');
select results_eq($$select runs_7d, success_rate_7d, p50_seconds_7d, records_synced_30d from public.kiotviet_run_stats
                    where schedule_id = '50000000-0000-0000-0000-0000000000d2'$$,
  $$values (1::bigint, null::numeric, null::numeric, 0::bigint)$$,
  'manual runs count for the schedule of their credential and type: the attributes run in progress is its one run, no rate yet');
select is((select manual_runs_7d from public.kiotviet_run_stats where schedule_id = '50000000-0000-0000-0000-0000000000d2'), 1::bigint,
  'and it is counted as manual');
select is((select manual_runs_30d from public.kiotviet_run_stats where schedule_id = '50000000-0000-0000-0000-0000000000d1'), 0::bigint,
  'a schedule run by cron only has no manual runs');
select results_eq($$select next_retry_at, timezone, last_failed_local from public.kiotviet_run_stats
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values (now() - interval '10 minutes', 'Asia/Ho_Chi_Minh'::text,
            to_char((now() - interval '4 days' + interval '40 seconds') at time zone 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI') || ' Asia/Ho_Chi_Minh')$$,
  'a failing schedule shows its next retry, its zone, and its last failure in that zone, named');
reset role;

set local role anon;
select throws_ok($$select 1 from public.kiotviet_schedule_status$$, '42501', null, 'anon cannot read kiotviet_schedule_status');
reset role;
set local role service_role;
select is((select count(*)::int from public.kiotviet_run_stats where credential_id in ('c0000000-0000-0000-0000-0000000000d1', 'c0000000-0000-0000-0000-0000000000d2')),
  4, 'service_role sees every schedule''s stats');
reset role;

-- a failed manual run: counted, and its reason shown
insert into public.kiotviet_sync_logs (credential_id, schedule_id, sync_type, status, trigger, started_at, completed_at, error_message)
values ('c0000000-0000-0000-0000-0000000000d1', null, 'products_full', 'failed', 'manual', now() - interval '1 hour',
        now() - interval '59 minutes', 'products: KiotViet 503 Service Unavailable');
select results_eq($$select manual_runs_7d, failed_7d, last_failure_reason from public.kiotviet_run_stats
                    where schedule_id = '50000000-0000-0000-0000-0000000000d1'$$,
  $$values (1::bigint, 2::bigint, 'products: KiotViet 503 Service Unavailable'::text)$$,
  'a failed manual run counts as a run and a failure of its schedule, and its reason is the last failure''s');

select * from finish();
rollback;
