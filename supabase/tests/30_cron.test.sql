-- The 5-minute dispatch tick and the daily purge (20261130000500_cron.sql).
begin;
select plan(25);
set local client_min_messages = warning;  -- the dispatch and install NOTICEs are for humans, not TAP
set local kvsync.net_dispatch = 'off';  -- queue only: nothing here must leave the machine

-- The jobs, as the migration left them ----------------------------------------------------------------------
select results_eq($$select schedule, command from cron.job where jobname = 'kiotviet-sync-scheduler'$$,
  $$values ('*/5 * * * *'::text, 'select public.kiotviet_dispatch()'::text)$$,
  'the tick job kiotviet-sync-scheduler runs select public.kiotviet_dispatch() every 5 minutes');
select is_empty($$select jobid from cron.job where command ~* '(https?://|bearer|authorization|eyJ)'
                   and (jobname ilike 'kiotviet%' or command ilike '%kiotviet%')$$,
  'no kiotviet job holds a URL or a key in its command');
select results_eq($$select schedule, command from cron.job where jobname = 'kiotviet-purge'$$,
  $$values ('17 20 * * *'::text, 'select public.kiotviet_purge()'::text)$$,
  'the purge job runs daily at 03:17 Vietnam time (20:17 UTC)');

-- kiotviet_dispatch: who may call it ---------------------------------------------------------------------------
select is((select prosecdef and proconfig @> array['search_path=""'] from pg_proc where oid = 'public.kiotviet_dispatch()'::regprocedure),
  true, 'kiotviet_dispatch is SECURITY DEFINER with an empty search_path');
select ok(not has_function_privilege('anon', 'public.kiotviet_dispatch()', 'execute')
          and not has_function_privilege('authenticated', 'public.kiotviet_dispatch()', 'execute')
          and not has_function_privilege('public', 'public.kiotviet_dispatch()', 'execute'),
  'anon and authenticated cannot call kiotviet_dispatch');
select ok(has_function_privilege('service_role', 'public.kiotviet_dispatch()', 'execute'), 'service_role may call kiotviet_dispatch');
select ok(not has_function_privilege('anon', 'public.kiotviet_purge(interval)', 'execute')
          and not has_function_privilege('authenticated', 'public.kiotviet_purge(interval)', 'execute'),
  'anon and authenticated cannot call kiotviet_purge');
select ok(not has_function_privilege('service_role', 'public.kiotviet_cron_install()', 'execute')
          and not has_function_privilege('authenticated', 'public.kiotviet_cron_install()', 'execute'),
  'only the database owner may (re)install the cron jobs');

-- kiotviet_dispatch: missing Vault secrets send nothing ------------------------------------------------------
delete from vault.secrets where name in ('kiotviet_dispatcher_url', 'kiotviet_cron_secret');
create temp table queued_before on commit drop as select coalesce(max(id), 0) as id from net.http_request_queue;
select is(public.kiotviet_dispatch(), null, 'without either Vault secret kiotviet_dispatch returns null');
select vault.create_secret('http://127.0.0.1:9/functions/v1/kiotviet-schedule-sync', 'kiotviet_dispatcher_url');
select is(public.kiotviet_dispatch(), null, 'without the kiotviet_cron_secret Vault secret kiotviet_dispatch returns null');
select is_empty($$select id from net.http_request_queue where id > (select id from queued_before)$$,
  'a dispatch without its secrets queues no request');

-- kiotviet_dispatch: one POST with the Vault values ------------------------------------------------------------
select vault.create_secret('s3cret-from-vault', 'kiotviet_cron_secret');
set local role service_role;  -- no Vault access of its own: SECURITY DEFINER reads it
create temp table sent on commit drop as select public.kiotviet_dispatch() as id;
reset role;
select isnt((select id from sent), null, 'with both secrets kiotviet_dispatch returns the pg_net request id');
select results_eq($$select method, url, convert_from(body, 'UTF8')::jsonb, timeout_milliseconds
                    from net.http_request_queue where id = (select id from sent)$$,
  $$values ('POST'::text, 'http://127.0.0.1:9/functions/v1/kiotviet-schedule-sync'::text, '{}'::jsonb, 10000)$$,
  'the dispatch POSTs {} to the Vault URL with an explicit 10 s timeout');
select is((select headers ->> 'Authorization' from net.http_request_queue where id = (select id from sent)),
  'Bearer s3cret-from-vault', 'the dispatch authenticates with Bearer <kiotviet_cron_secret>');
select is((select headers ->> 'Content-Type' from net.http_request_queue where id = (select id from sent)),
  'application/json', 'the dispatch sends Content-Type application/json');
select is((select count(*)::int from net.http_request_queue where id > (select id from queued_before)), 1,
  'one dispatch is one request');

-- kiotviet_cron_install replaces the earlier system's anon-key job in every form ------------------------------
select cron.schedule('KiotViet-Sync-Scheduler', '*/5 * * * *', $$select net.http_post(
  url:='https://abcdefgh.supabase.co/functions/v1/kiotviet-schedule-sync',
  headers:='{"Content-Type": "application/json", "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.anon.sig"}'::jsonb,
  body:='{}'::jsonb) as request_id;$$);
select cron.schedule('copy-of-the-old-tick', '*/5 * * * *', $$select net.http_post(
  url:='https://abcdefgh.supabase.co/functions/v1/kiotviet-schedule-sync',
  headers:='{"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.anon.sig"}'::jsonb) as request_id;$$);
insert into cron.job (schedule, command, username, jobname)
values ('*/5 * * * *', 'select 1', 'supabase_admin', 'kiotviet-sync-scheduler');
select cron.schedule('someone-elses-job', '0 * * * *', 'select 1');
select cron.schedule('kiotviet-sync-scheduler', '* * * * *', 'select 2');  -- ours, tampered with
select lives_ok($$select * from public.kiotviet_cron_install()$$, 'kiotviet_cron_install runs again (idempotent)');
select is_empty($$select jobid from cron.job where command ilike '%kiotviet-schedule-sync%' and command ilike '%authorization%'$$,
  'no job calling kiotviet-schedule-sync with an inline Authorization survives the install');
select results_eq($$select format('%s|%s|%s|%s', jobname, username, schedule, command) from cron.job
                    where lower(jobname) = 'kiotviet-sync-scheduler'$$,
  $$values (format('kiotviet-sync-scheduler|%s|*/5 * * * *|select public.kiotviet_dispatch()', current_user))$$,
  'exactly one kiotviet-sync-scheduler is left (any case, any user), and it is the Vault-based one');
select isnt_empty($$select 1 from cron.job where jobname = 'someone-elses-job'$$, 'jobs that are not the earlier tick are left alone');

-- kiotviet_purge: keeps what is recent and what still runs ------------------------------------------------------
insert into cron.job_run_details (jobid, status, start_time, end_time, command) values
  (-1, 'succeeded', now() - interval '40 days', now() - interval '40 days', 'purge-test-old'),
  (-1, 'succeeded', now() - interval '1 day', now() - interval '1 day', 'purge-test-new');
insert into net._http_response (id, status_code, created) values
  (-9001, 202, now() - interval '40 days'), (-9002, 202, now() - interval '1 hour');
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token)
values ('c0000000-0000-0000-0000-0000000000c1', 'purge-shop', 'purge-client', 'x');
insert into public.kiotviet_sync_logs (id, credential_id, sync_type, status, started_at, completed_at) values
  ('30000000-0000-0000-0000-0000000000c1', 'c0000000-0000-0000-0000-0000000000c1', 'products', 'success', now() - interval '40 days', now() - interval '40 days'),
  ('30000000-0000-0000-0000-0000000000c2', 'c0000000-0000-0000-0000-0000000000c1', 'products', 'failed', now() - interval '40 days', null),
  ('30000000-0000-0000-0000-0000000000c3', 'c0000000-0000-0000-0000-0000000000c1', 'products', 'running', now() - interval '40 days', null),
  ('30000000-0000-0000-0000-0000000000c4', 'c0000000-0000-0000-0000-0000000000c1', 'products', 'success', now() - interval '2 days', now() - interval '2 days');
select lives_ok($$select public.kiotviet_purge()$$, 'kiotviet_purge runs with its default retention');
select results_eq($$select command from cron.job_run_details where jobid = -1 order by command$$,
  array['purge-test-new'], 'the purge deletes cron.job_run_details past the retention, keeps newer ones');
select results_eq($$select id from net._http_response where id in (-9001, -9002)$$,
  array[-9002::bigint], 'the purge deletes net._http_response rows past the retention, keeps newer ones');
select set_eq($$select id::text from public.kiotviet_sync_logs where credential_id = 'c0000000-0000-0000-0000-0000000000c1'$$,
  array['30000000-0000-0000-0000-0000000000c3', '30000000-0000-0000-0000-0000000000c4'],
  'the purge deletes finished run logs past the retention, never a running one');
select throws_ok($$select public.kiotviet_purge('1 hour')$$, '22023', null, 'the purge refuses a retention under one day');

select * from finish();
rollback;
