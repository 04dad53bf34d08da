-- Scheduling rules (DESIGN.md §3): the grid helper kiotviet_next_slot, the backoff, the trigger
-- calculate_next_run_time() and what kiotviet_finish_run does to a schedule. Time is controlled through
-- explicit timestamps, or through now(), which is fixed inside this one transaction: values relative to
-- it are compared exactly. Nothing sleeps.
begin;
select plan(87);

-- Only this file's rows: whatever another test committed is out of the way until the rollback.
delete from public.kiotviet_credentials;

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1000000-0000-0000-0000-000000000001', 'shop1', 'client1', 'ct', true),
  ('c1000000-0000-0000-0000-000000000002', 'shop2', 'client2', 'ct', true),
  ('c1000000-0000-0000-0000-000000000003', 'shop3', 'client3', 'ct', true),
  ('c1000000-0000-0000-0000-000000000004', 'shop4', 'client4', 'ct', false);

------------------------------------------------------------------------------------------------------------
-- The length of a period
select is(public.kiotviet_schedule_interval('hourly', null), interval '1 hour', 'interval: hourly is one hour');
select is(public.kiotviet_schedule_interval('daily', null), interval '24 hours', 'interval: daily is 24 hours');
select is(public.kiotviet_schedule_interval('custom', 6), interval '6 hours', 'interval: custom is custom_interval_hours');

------------------------------------------------------------------------------------------------------------
-- kiotviet_next_slot with explicit timestamps
select is(public.kiotviet_next_slot('daily', null, '02:00', 'Asia/Ho_Chi_Minh', null, '2026-01-10 01:00+07'),
          '2026-01-10 02:00+07'::timestamptz,
          'next slot: daily at a time of day runs at that local time the same day when it is still ahead');
select is(public.kiotviet_next_slot('daily', null, '02:00', 'Asia/Ho_Chi_Minh', null, '2026-01-10 09:30+07'),
          '2026-01-11 02:00+07'::timestamptz,
          'next slot: daily at a time of day runs at that local time the next day once it has passed');
select is(public.kiotviet_next_slot('daily', null, '02:00', 'Asia/Ho_Chi_Minh', null, '2026-01-09 19:00+00'),
          '2026-01-11 02:00+07'::timestamptz,
          'next slot: the time of day is read in the schedule''s zone, not UTC (19:00 UTC is 02:00 the next day there)');
select is(public.kiotviet_next_slot('daily', null, '02:00', 'Asia/Ho_Chi_Minh', null, '2026-01-10 02:00+07'),
          '2026-01-11 02:00+07'::timestamptz,
          'next slot: strictly after (a daily slot at exactly its time moves to the next day)');
select is(public.kiotviet_next_slot('hourly', null, null, 'Asia/Ho_Chi_Minh', '2026-01-10 10:00+07', '2026-01-10 12:07+07'),
          '2026-01-10 13:00+07'::timestamptz,
          'next slot: hourly grid is anchored on the previous slot (10:00, finishing at 12:07 → 13:00)');
select is(public.kiotviet_next_slot('hourly', null, null, 'Asia/Ho_Chi_Minh', '2026-01-10 10:00+07', '2026-01-10 12:00+07'),
          '2026-01-10 13:00+07'::timestamptz,
          'next slot: strictly after (hourly at exactly a grid point moves one hour on)');
select is(public.kiotviet_next_slot('custom', 6, null, 'Asia/Ho_Chi_Minh', '2026-01-10 10:00+07', '2026-01-10 17:30+07'),
          '2026-01-10 22:00+07'::timestamptz,
          'next slot: custom 6h grid anchored on the previous slot');
select is(public.kiotviet_next_slot('custom', 6, '02:00', 'Asia/Ho_Chi_Minh', null, '2026-01-10 09:00+07'),
          '2026-01-10 14:00+07'::timestamptz,
          'next slot: custom 6h with a time of day runs at 02:00, 08:00, 14:00, 20:00 local');
select is(public.kiotviet_next_slot('custom', 6, '02:00', 'Asia/Ho_Chi_Minh', null, '2026-01-10 01:00+07'),
          '2026-01-10 02:00+07'::timestamptz,
          'next slot: custom 6h with a time of day, before the first slot of the day');
select is(public.kiotviet_next_slot('daily', null, null, 'Asia/Ho_Chi_Minh', '2026-01-10 02:00+07', '2026-01-10 02:07+07'),
          '2026-01-11 02:00+07'::timestamptz,
          'next slot: no drift (slot 02:00 finishing 02:07 → 02:00 the next day)');
select is(public.kiotviet_next_slot('daily', null, null, 'Asia/Ho_Chi_Minh', '2026-01-07 02:00+07', '2026-01-10 09:00+07'),
          '2026-01-11 02:00+07'::timestamptz,
          'next slot: an overdue grid skips the missed slots to the first one after now');
select is(public.kiotviet_next_slot('daily', null, '03:00', 'Europe/Berlin', null, '2026-03-28 03:00+01'),
          '2026-03-29 03:00+02'::timestamptz,
          'next slot: DST zone keeps a daily local hour across spring forward (23 hours later)');
select is(public.kiotviet_next_slot('hourly', null, null, 'Europe/Berlin', '2026-10-25 00:30+00', '2026-10-25 00:40+00'),
          '2026-10-25 01:30+00'::timestamptz,
          'hourly grid counts elapsed time: one hour between runs across the autumn DST change');
select is(public.kiotviet_next_slot('daily', null, null, 'Europe/Berlin', '2026-10-24 09:00+02', '2026-10-24 12:00+02'),
          '2026-10-25 09:00+01'::timestamptz,
          'next slot: DST zone keeps an anchored daily local hour across fall back (25 hours later)');

------------------------------------------------------------------------------------------------------------
-- Backoff: 5 min, 10, 20, … capped at the period
select is(public.kiotviet_backoff(1, interval '1 hour'), interval '5 minutes', 'backoff: first failure waits 5 minutes');
select is(public.kiotviet_backoff(2, interval '1 hour'), interval '10 minutes', 'backoff: second failure waits 10 minutes');
select is(public.kiotviet_backoff(3, interval '1 hour'), interval '20 minutes', 'backoff: third failure waits 20 minutes');
select is(public.kiotviet_backoff(4, interval '1 hour'), interval '40 minutes', 'backoff: fourth failure waits 40 minutes');
select is(public.kiotviet_backoff(5, interval '1 hour'), interval '1 hour', 'backoff: capped at the period (hourly caps at 1 hour)');
select is(public.kiotviet_backoff(1000, interval '24 hours'), interval '24 hours', 'backoff: many failures stay capped at the period');

------------------------------------------------------------------------------------------------------------
-- The trigger: insert
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, custom_interval_hours) values
  ('51000000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000001', 'products', 'daily', null),
  ('51000000-0000-0000-0000-000000000002', 'c1000000-0000-0000-0000-000000000001', 'categories', 'hourly', null),
  ('51000000-0000-0000-0000-000000000003', 'c1000000-0000-0000-0000-000000000001', 'inventory', 'custom', 6);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, time_of_day) values
  ('51000000-0000-0000-0000-000000000004', 'c1000000-0000-0000-0000-000000000001', 'attributes', 'daily', '02:00');

select is(next_run_at, now() + interval '24 hours', 'insert: daily first run is one period from now')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000001';
select is(next_run_at, now() + interval '1 hour', 'insert: hourly first run is one hour from now')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000002';
select is(next_run_at, now() + interval '6 hours', 'insert: custom 6h first run is six hours from now')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000003';
select is((next_run_at at time zone 'Asia/Ho_Chi_Minh')::time, '02:00'::time,
          'insert with time_of_day: first run is at that local time (Asia/Ho_Chi_Minh by default)')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000004';
select ok(next_run_at > now() and next_run_at <= now() + interval '24 hours',
          'insert with time_of_day: first run is the next such slot after now')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000004';

-- An admin who writes next_run_at on insert (run it now) is obeyed.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, next_run_at) values
  ('51000000-0000-0000-0000-000000000005', 'c1000000-0000-0000-0000-000000000001', 'all', 'daily', now() - interval '1 minute');
select is(next_run_at, now() - interval '1 minute', 'insert: an explicit next_run_at is kept')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000005';

------------------------------------------------------------------------------------------------------------
-- The trigger: changes
-- before the first run (no last_run_at): recomputed from now
update public.kiotviet_sync_schedules set frequency = 'hourly' where id = '51000000-0000-0000-0000-000000000001';
select is(next_run_at, now() + interval '1 hour', 'change of frequency before the first run: recomputed at once from now')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set custom_interval_hours = 12 where id = '51000000-0000-0000-0000-000000000003';
select is(next_run_at, now() + interval '12 hours', 'change of custom interval before the first run: recomputed at once')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000003';
update public.kiotviet_sync_schedules set time_of_day = '23:30' where id = '51000000-0000-0000-0000-000000000004';
select is((next_run_at at time zone 'Asia/Ho_Chi_Minh')::time, '23:30'::time, 'change of time of day: recomputed to the new local time')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000004';
select ok(next_run_at > now() and next_run_at <= now() + interval '24 hours', 'change of time of day: the next such slot after now')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000004';

-- after a run: from the last run, due now when the new period has already passed
update public.kiotviet_sync_schedules set last_run_at = now() - interval '30 minutes', next_run_at = now() + interval '23 hours',
  frequency = 'daily' where id = '51000000-0000-0000-0000-000000000002';
select is(next_run_at, now() + interval '23 hours 30 minutes', 'change of frequency after a run: one new period after the last run')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000002';
update public.kiotviet_sync_schedules set last_run_at = now() - interval '10 hours', frequency = 'custom', custom_interval_hours = 6
 where id = '51000000-0000-0000-0000-000000000002';
select is(next_run_at, now(), 'change of frequency after a run: due now when the new period since the last run has passed')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000002';

-- the ERP re-saving the same values does not move next_run_at
update public.kiotviet_sync_schedules set next_run_at = now() + interval '7 minutes' where id = '51000000-0000-0000-0000-000000000002';
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 6, time_of_day = null,
  timezone = 'Asia/Ho_Chi_Minh', enabled = true where id = '51000000-0000-0000-0000-000000000002';
select is(next_run_at, now() + interval '7 minutes', 'the ERP re-saving the same frequency does not recompute next_run_at')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000002';

-- enabled false → true
update public.kiotviet_sync_schedules set enabled = false, last_run_at = now() - interval '2 days' where id = '51000000-0000-0000-0000-000000000005';
select is(next_run_at, now() - interval '1 minute', 'disabling leaves next_run_at alone')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000005';
update public.kiotviet_sync_schedules set enabled = true where id = '51000000-0000-0000-0000-000000000005';
select is(next_run_at, now(), 'enabled false→true: due now when a whole period has passed since the last run')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000005';
update public.kiotviet_sync_schedules set enabled = false, last_run_at = now() - interval '24 hours' where id = '51000000-0000-0000-0000-000000000005';
update public.kiotviet_sync_schedules set enabled = true where id = '51000000-0000-0000-0000-000000000005';
select is(next_run_at, now(), 'enabled false→true: due now when exactly one period has passed')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000005';
update public.kiotviet_sync_schedules set enabled = false, last_run_at = now() - interval '3 hours', last_slot_at = now() - interval '3 hours'
 where id = '51000000-0000-0000-0000-000000000005';
update public.kiotviet_sync_schedules set enabled = true where id = '51000000-0000-0000-0000-000000000005';
select is(next_run_at, now() + interval '21 hours', 'enabled false→true: the next slot of its grid when less than a period has passed')
  from public.kiotviet_sync_schedules where id = '51000000-0000-0000-0000-000000000005';

------------------------------------------------------------------------------------------------------------
-- Refused values, each by the constraint that names the rule
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours)
                   values ('c1000000-0000-0000-0000-000000000002', 'products', 'custom', 0)$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_hours_check"',
  'custom_interval_hours 0 is refused by kiotviet_sync_schedules_custom_interval_hours_check');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours)
                   values ('c1000000-0000-0000-0000-000000000002', 'products', 'custom', -3)$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_hours_check"',
  'a negative custom_interval_hours is refused by kiotviet_sync_schedules_custom_interval_hours_check');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours)
                   values ('c1000000-0000-0000-0000-000000000002', 'products', 'custom', 169)$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_hours_check"',
  'custom_interval_hours 169 is refused by kiotviet_sync_schedules_custom_interval_hours_check');
select lives_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours)
                  values ('c1000000-0000-0000-0000-000000000002', 'products', 'custom', 168),
                         ('c1000000-0000-0000-0000-000000000002', 'categories', 'custom', 1)$$,
  'custom_interval_hours 1 and 168 are accepted');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency)
                   values ('c1000000-0000-0000-0000-000000000002', 'inventory', 'custom')$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_required"',
  'custom without custom_interval_hours is refused by kiotviet_sync_schedules_custom_interval_required');
select throws_ok($$update public.kiotviet_sync_schedules set custom_interval_hours = 0
                    where id = '51000000-0000-0000-0000-000000000003'$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_hours_check"',
  'changing custom_interval_hours to 0 is refused by kiotviet_sync_schedules_custom_interval_hours_check');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency)
                   values ('c1000000-0000-0000-0000-000000000002', 'inventory', 'weekly')$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_frequency_check"',
  'an unknown frequency is refused by kiotviet_sync_schedules_frequency_check');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, timezone)
                   values ('c1000000-0000-0000-0000-000000000002', 'inventory', 'daily', 'Mars/Olympus_Mons')$$,
  '22023', 'kiotviet_sync_schedules.timezone: unknown time zone "Mars/Olympus_Mons"',
  'an unknown time zone is refused on insert');
select throws_ok($$update public.kiotviet_sync_schedules set timezone = 'Asia/Saigon_Typo'
                    where id = '51000000-0000-0000-0000-000000000004'$$,
  '22023', 'kiotviet_sync_schedules.timezone: unknown time zone "Asia/Saigon_Typo"',
  'an unknown time zone is refused on update');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency)
                   values ('c1000000-0000-0000-0000-0000000000ff', 'inventory', 'daily')$$,
  '23503', null, 'a schedule for a missing credential is impossible (foreign key)');

------------------------------------------------------------------------------------------------------------
-- kiotviet_finish_run: what a run does to its schedule. Credential 3 gets one schedule at a time due, so
-- each claim below takes exactly that schedule.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency) values
  ('53000000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000003', 'products', 'daily'),
  ('53000000-0000-0000-0000-000000000002', 'c1000000-0000-0000-0000-000000000003', 'categories', 'hourly'),
  ('53000000-0000-0000-0000-000000000003', 'c1000000-0000-0000-0000-000000000003', 'inventory', 'daily');
create temporary table claimed (n serial, run_id uuid, schedule_id uuid, slot_at timestamptz, next_at timestamptz);

-- success, no drift: slot 7 minutes ago, finished now → the same minute the next day
update public.kiotviet_sync_schedules set next_run_at = now() - interval '7 minutes', last_slot_at = now() - interval '7 minutes' - interval '1 day'
 where id = '53000000-0000-0000-0000-000000000001';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
select is((select count(*)::int from claimed), 1, 'claim: the one due schedule is claimed');
update claimed set next_at = public.kiotviet_finish_run(run_id, 'success') where n = 1;
select is(s.last_run_at, now(), 'finish success: last_run_at is when the run finished (the card''s last sync)')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000001';
select is(s.last_slot_at, now() - interval '7 minutes', 'finish success: last_slot_at (the grid) is the slot the run was for')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000001';
select is(s.next_run_at, now() - interval '7 minutes' + interval '24 hours',
          'finish success: next_run_at is the first slot on the same grid after now (no drift)')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000001';
select is((select next_at from claimed where n = 1), now() + interval '23 hours 53 minutes',
          'finish success: kiotviet_finish_run returns the schedule''s next run');
select is(last_status || '/' || consecutive_failures, 'success/0', 'finish success: last_status success, no failures')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';

-- failure: backoff 5, 10, 20, 40, then capped at the hourly period; the count and the error kept
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute', last_run_at = now() - interval '60 minutes',
  last_slot_at = now() - interval '61 minutes' where id = '53000000-0000-0000-0000-000000000002';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'failed', p_error => 'KiotViet 503 #1') where n = 2;
select is(s.next_run_at, now() + interval '5 minutes', 'finish failed: first failure backs off 5 minutes')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000002';
select is(s.consecutive_failures, 1, 'finish failed: consecutive_failures counts the failure')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000002';
select is(s.last_error, 'KiotViet 503 #1', 'finish failed: last_error is kept')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000002';
select is(s.last_run_at || ' ' || s.last_slot_at, (now() - interval '60 minutes') || ' ' || (now() - interval '61 minutes'),
          'finish failed: last_run_at (the last success) and the grid stay')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000002';
select is(s.last_status, 'failed', 'finish failed: last_status failed')
  from public.kiotviet_sync_schedules s where s.id = '53000000-0000-0000-0000-000000000002';

-- each retry is claimed (the admin's "run now" is simulated by writing next_run_at) and fails again
update public.kiotviet_sync_schedules set next_run_at = now() where id = '53000000-0000-0000-0000-000000000002';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'failed', p_error => 'KiotViet 503 #2') where n = 3;
select is(next_run_at, now() + interval '10 minutes', 'finish failed: second failure backs off 10 minutes')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';
update public.kiotviet_sync_schedules set next_run_at = now() where id = '53000000-0000-0000-0000-000000000002';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'failed', p_error => 'KiotViet 503 #3') where n = 4;
select is(next_run_at, now() + interval '20 minutes', 'finish failed: third failure backs off 20 minutes')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';
update public.kiotviet_sync_schedules set next_run_at = now() where id = '53000000-0000-0000-0000-000000000002';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'failed', p_error => 'KiotViet 503 #4') where n = 5;
select is(next_run_at, now() + interval '40 minutes', 'finish failed: fourth failure backs off 40 minutes')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';
update public.kiotviet_sync_schedules set next_run_at = now() where id = '53000000-0000-0000-0000-000000000002';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'failed', p_error => 'KiotViet 503 #5') where n = 6;
select is(next_run_at, now() + interval '1 hour', 'finish failed: the backoff is capped at the period (hourly caps at 1 hour)')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';
select is(consecutive_failures || ' ' || last_error, '5 KiotViet 503 #5', 'finish failed: five failures counted, the last error kept')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';

-- success resets the failures
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = '53000000-0000-0000-0000-000000000002';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'success') where n = 7;
select is(consecutive_failures, 0, 'finish success after failures: consecutive_failures reset')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';
select is(last_error, null, 'finish success after failures: last_error cleared')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';
select is(next_run_at, now() + interval '59 minutes', 'finish success after failures: back on the hourly grid of its slot')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000002';

-- an overdue schedule runs once and then waits for the first slot after now
update public.kiotviet_sync_schedules set next_run_at = now() - interval '3 days' where id = '53000000-0000-0000-0000-000000000003';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
select is((select count(*)::int from claimed where n = 8 and schedule_id = '53000000-0000-0000-0000-000000000003'
                                               and slot_at = now() - interval '3 days'), 1,
          'overdue: a schedule whose slot was 3 days ago is claimed, for that slot');
update claimed set next_at = public.kiotviet_finish_run(run_id, 'success') where n = 8;
select is(next_run_at, now() + interval '1 day', 'overdue: after the run the next slot is the first one after now, not a missed one')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000003';
select is((select count(*)::int from public.kiotviet_claim_due('w1', 10)), 0, 'overdue: the missed slots are not run again');
select is((select count(*)::int from public.kiotviet_sync_logs where schedule_id = '53000000-0000-0000-0000-000000000003'), 1,
          'overdue: exactly one run for the three missed slots');

-- partial counts as a failure, skipped goes to the next slot without counting one
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = '53000000-0000-0000-0000-000000000001';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'partial', p_error => 'page 7 failed') where n = 9;
select is(next_run_at || ' ' || consecutive_failures, (now() + interval '5 minutes') || ' 1', 'finish partial: backs off like a failure')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = '53000000-0000-0000-0000-000000000001';
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10);
update claimed set next_at = public.kiotviet_finish_run(run_id, 'skipped') where n = 10;
select is(next_run_at || ' ' || consecutive_failures, (now() + interval '23 hours 53 minutes') || ' 1',
          'finish skipped: the next slot on the grid, failure count unchanged')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';

-- a run started by hand (manual) of the same credential and sync type is the schedule's last sync too
update public.kiotviet_sync_schedules set next_run_at = now() + interval '3 hours', last_run_at = now() - interval '2 days'
 where id = '53000000-0000-0000-0000-000000000001';
select is(public.kiotviet_finish_run(public.kiotviet_start_run('c1000000-0000-0000-0000-000000000003', 'products'), 'failed'), null,
          'finish of a manual run returns no next run');
select is(last_run_at || ' ' || consecutive_failures, (now() - interval '2 days') || ' 1',
          'a failed manual run leaves the schedule alone')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';
select public.kiotviet_finish_run(public.kiotviet_start_run('c1000000-0000-0000-0000-000000000003', 'products'), 'success');
select is(last_run_at || ' ' || consecutive_failures || ' ' || last_status, now() || ' 0 success',
          'a successful manual run of the same credential and sync type is the schedule''s last sync, failures reset')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';
select is(next_run_at, now() + interval '23 hours 53 minutes',
          'a schedule backing off after failures goes back to its grid after a successful manual run')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set next_run_at = now() + interval '3 hours' where id = '53000000-0000-0000-0000-000000000001';
select public.kiotviet_finish_run(public.kiotviet_start_run('c1000000-0000-0000-0000-000000000003', 'products'), 'success');
select is(next_run_at, now() + interval '3 hours', 'a successful manual run does not move a healthy schedule''s next run')
  from public.kiotviet_sync_schedules where id = '53000000-0000-0000-0000-000000000001';

------------------------------------------------------------------------------------------------------------
-- Credentials that cannot run
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, next_run_at) values
  ('54000000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000004', 'products', 'hourly', now() - interval '1 hour');
select is((select count(*)::int from public.kiotviet_claim_due('w1', 10) where schedule_id = '54000000-0000-0000-0000-000000000001'), 0,
          'an inactive credential''s due schedule is not claimed');
select is((select count(*)::int from public.kiotviet_sync_logs where credential_id = 'c1000000-0000-0000-0000-000000000004'), 0,
          'an inactive credential gets no run row');

delete from public.kiotviet_credentials where id = 'c1000000-0000-0000-0000-000000000003';
select is((select count(*)::int from public.kiotviet_sync_schedules where credential_id = 'c1000000-0000-0000-0000-000000000003'), 0,
          'a deleted credential''s schedules are deleted with it (cascade)');
select is((select count(*)::int from public.kiotviet_sync_logs where credential_id = 'c1000000-0000-0000-0000-000000000003'), 0,
          'a deleted credential''s run logs are deleted with it (cascade)');

------------------------------------------------------------------------------------------------------------
-- The grid survives the cron's 5-minute grain: a tick 4 minutes late still lands the next run on the slot.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, time_of_day, timezone, next_run_at) values
  ('55000000-0000-0000-0000-000000000001', 'c1000000-0000-0000-0000-000000000002', 'attributes', 'daily', '02:00',
   'Europe/Berlin', now() - interval '4 minutes');
insert into claimed (run_id, schedule_id, slot_at) select run_id, schedule_id, slot_at from public.kiotviet_claim_due('w1', 10)
 where schedule_id = '55000000-0000-0000-0000-000000000001';
select is((select public.kiotviet_finish_run(run_id, 'success') from claimed where n = 11) at time zone 'Europe/Berlin',
          (select public.kiotviet_next_slot('daily', null, '02:00', 'Europe/Berlin', null, now())) at time zone 'Europe/Berlin',
          'finish success with a time of day: the next run is that local time');
select is((next_run_at at time zone 'Europe/Berlin')::time, '02:00'::time, 'finish success with a time of day: 02:00 Berlin time')
  from public.kiotviet_sync_schedules where id = '55000000-0000-0000-0000-000000000001';

select lives_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours, time_of_day)
  values ('c1000000-0000-0000-0000-000000000001', 'products_full', 'custom', 5, '02:00')$$,
  'a time of day goes with any period (custom 5 h at 02:00)');
select * from finish();
rollback;
