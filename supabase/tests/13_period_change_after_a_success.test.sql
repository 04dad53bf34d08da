-- DESIGN.md §3: a change of frequency / interval / time of day is recomputed at once, before the first run
-- too: due now only when a whole new period has passed since the last successful run, else one new period
-- after it (with a time of day: the next such slot).
begin;
select plan(9);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1300000-0000-0000-0000-000000000001', 'change-shop', 'client', 'ct', true);

-- The issue's case: inventory every 2 h, a success two minutes ago, changed to daily.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, custom_interval_hours) values
  ('51300000-0000-0000-0000-000000000001', 'c1300000-0000-0000-0000-000000000001', 'inventory', 'custom', 2);
update public.kiotviet_sync_schedules set next_run_at = now() - interval '2 minutes 30 seconds'
 where id = '51300000-0000-0000-0000-000000000001';
select public.kiotviet_finish_run(run_id, 'success') from public.kiotviet_claim_due('w-change', 10);
update public.kiotviet_sync_schedules set last_run_at = now() - interval '2 minutes' where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set frequency = 'daily', custom_interval_hours = null
 where id = '51300000-0000-0000-0000-000000000001';
select is(next_run_at, now() - interval '2 minutes' + interval '1 day',
          'every 2 h → daily two minutes after a success: not due now, one day after the success')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';
select ok(not is_due, 'every 2 h → daily right after a success: the status view says not due')
  from public.kiotviet_schedule_status where schedule_id = '51300000-0000-0000-0000-000000000001';
select is(last_slot_at, now() - interval '2 minutes', 'the grid restarts at the last success')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';

-- daily → hourly 30 minutes after a success: one new hour after it
update public.kiotviet_sync_schedules set last_run_at = now() - interval '30 minutes' where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set frequency = 'hourly' where id = '51300000-0000-0000-0000-000000000001';
select is(next_run_at, now() + interval '30 minutes', 'daily → hourly 30 minutes after a success: one hour after it')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';

-- a whole new period has passed: due now
update public.kiotviet_sync_schedules set last_run_at = now() - interval '7 hours' where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 6 where id = '51300000-0000-0000-0000-000000000001';
select is(next_run_at, now(), 'hourly → every 6 h, 7 hours after the last success: due now')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set last_run_at = now() - interval '5 hours 59 minutes' where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set custom_interval_hours = 12 where id = '51300000-0000-0000-0000-000000000001';
select is(next_run_at, now() + interval '6 hours 1 minute', 'every 6 h → 12 h, 5 h 59 after the success: 12 hours after it')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';

-- with a time of day: the next such slot, or now when a whole period has passed
update public.kiotviet_sync_schedules set last_run_at = now() - interval '1 hour' where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set frequency = 'daily', custom_interval_hours = null, time_of_day = '03:00'
 where id = '51300000-0000-0000-0000-000000000001';
select is(next_run_at, public.kiotviet_next_slot('daily', null, '03:00', 'Asia/Ho_Chi_Minh', null, now()),
          'a time of day set an hour after a success: the next 03:00')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set last_run_at = now() - interval '2 days' where id = '51300000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set time_of_day = '04:00' where id = '51300000-0000-0000-0000-000000000001';
select is(next_run_at, now(), 'a time of day changed two days after the last success: due now')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000001';

-- before the first run: from now
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency) values
  ('51300000-0000-0000-0000-000000000002', 'c1300000-0000-0000-0000-000000000001', 'categories', 'daily');
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 3 where id = '51300000-0000-0000-0000-000000000002';
select is(next_run_at, now() + interval '3 hours', 'a change before the first run: one new period from now')
  from public.kiotviet_sync_schedules where id = '51300000-0000-0000-0000-000000000002';
select * from finish();
rollback;
