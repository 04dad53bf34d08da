-- A manual sync of a credential whose running run's lease has expired rescues that run and goes ahead;
-- a run whose lease holds still keeps the credential (20261202206000_start_rescues_expired.sql).
begin;
select plan(5);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c2100000-0000-0000-0000-000000000001', 'outage-shop', 'client', 'ct', true);
insert into public.kiotviet_sync_logs (id, credential_id, sync_type, status, trigger, worker, started_at, heartbeat_at, lease_expires_at)
values ('12100000-0000-0000-0000-000000000001', 'c2100000-0000-0000-0000-000000000001', 'products_full', 'running', 'manual',
        'lost-db-worker', now() - interval '5 minutes', now() - interval '4 minutes', now() - interval '2 minutes');
create temporary table r as select public.kiotviet_start_run('c2100000-0000-0000-0000-000000000001', 'products_full') as id;
select ok((select id from r) is not null, 'a manual sync starts although the credential''s expired run was still running');
select is(status || ': ' || error_message, 'failed: worker lost-db-worker stopped heartbeating; lease expired at ' ||
          (now() - interval '2 minutes')::text, 'the expired run is rescued: failed, with the reason')
  from public.kiotviet_sync_logs where id = '12100000-0000-0000-0000-000000000001';
select is((select count(*)::int from public.kiotviet_sync_logs where status = 'running'), 1, 'one running run: the new one');
select throws_ok($$select public.kiotviet_start_run('c2100000-0000-0000-0000-000000000001', 'attributes')$$, '23505', null,
  'while the new run''s lease holds, a second sync is refused');
select is((select status from public.kiotviet_sync_logs where id = (select id from r)), 'running', 'and the new run goes on');
select * from finish();
rollback;
