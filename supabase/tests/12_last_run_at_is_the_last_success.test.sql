-- DESIGN.md §3: last_run_at is when the schedule's last successful run finished (the ERP card's "Lần cuối"),
-- a successful manual run of the same credential and sync type counts, and the grid lives apart from it
-- in last_slot_at. now() is fixed in this transaction: "when it finished" is now().
begin;
select plan(12);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1200000-0000-0000-0000-000000000001', 'downtime-shop', 'client', 'ct', true),
  ('c1200000-0000-0000-0000-000000000002', 'manual-shop', 'client', 'ct', true);

-- Three days of downtime: a daily schedule on the 01:00-ago grid last succeeded four days ago; its slot of
-- three days ago is the one the first tick after the downtime claims.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, last_run_at, last_slot_at, next_run_at) values
  ('51200000-0000-0000-0000-000000000001', 'c1200000-0000-0000-0000-000000000001', 'products_full', 'daily',
   now() - interval '4 days 1 hour' + interval '95 seconds', now() - interval '4 days 1 hour', now() - interval '3 days 1 hour');
create temporary table run as select * from public.kiotviet_claim_due('w-downtime', 10);
select is((select slot_at from run), now() - interval '3 days 1 hour', 'downtime: the overdue slot is claimed once');
select is(public.kiotviet_finish_run((select run_id from run), 'success', 10), now() + interval '23 hours',
          'downtime: after the run the next one is back on the grid (same minute, the first slot after now)');
select is(last_run_at, now(), 'downtime: last_run_at is when the run finished, not the slot of three days ago')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000001';
select is(last_slot_at, now() - interval '3 days 1 hour', 'downtime: the grid column keeps the slot the run stood for')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000001';
select is((select completed_at from public.kiotviet_sync_logs where id = (select run_id from run)),
          (select last_run_at from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000001'),
          'downtime: last sync equals the run''s completed_at, to the microsecond');
select is((select count(*)::int from public.kiotviet_claim_due('w-downtime', 10)), 0, 'downtime: the missed slots are not run again');

-- A failed run keeps last_run_at: "last sync" names the last success.
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = '51200000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set last_run_at = now() - interval '1 hour' where id = '51200000-0000-0000-0000-000000000001';
select public.kiotviet_finish_run(run_id, 'failed', p_error => 'KiotViet 503') from public.kiotviet_claim_due('w-downtime', 10);
select is(last_run_at, now() - interval '1 hour', 'a failed run leaves last_run_at at the last success')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000001';

-- Manual runs count for the schedule of their credential and sync type only.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency) values
  ('51200000-0000-0000-0000-000000000002', 'c1200000-0000-0000-0000-000000000002', 'products_full', 'hourly'),
  ('51200000-0000-0000-0000-000000000003', 'c1200000-0000-0000-0000-000000000002', 'attributes', 'daily');
select public.kiotviet_finish_run(public.kiotviet_start_run('c1200000-0000-0000-0000-000000000002', 'products_full'), 'success', 5);
select is(last_run_at, now(), 'a successful manual run (the ERP''s button) is its schedule''s last sync')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000002';
select is(next_run_at, now() + interval '1 hour', 'a successful manual run leaves a healthy schedule''s next run on its grid')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000002';
select is(last_run_at, null, 'a manual run of another sync type is not this schedule''s last sync')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000003';
select public.kiotviet_finish_run(public.kiotviet_start_run('c1200000-0000-0000-0000-000000000002', 'attributes', 'api'), 'partial');
select is(last_run_at, null, 'a partial manual run is not a last sync')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000003';

-- Insert: the grid starts one period before the first slot.
select is(last_slot_at, now(), 'insert: the grid''s origin is now, the first run one period later')
  from public.kiotviet_sync_schedules where id = '51200000-0000-0000-0000-000000000002';
select * from finish();
rollback;
