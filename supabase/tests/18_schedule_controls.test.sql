-- The operator's controls (kvsync schedule set | run | pause | resume | delete): set changes only what
-- it is given; run makes a schedule due (or claims it for an in-process run); each refusal names the rule.
begin;
select plan(14);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1800000-0000-0000-0000-000000000001', 'controls-shop', 'client', 'ct', true);

select public.kiotviet_set_schedule('c1800000-0000-0000-0000-000000000001', 'products_full', 'daily',
  p_time_of_day => '03:00', p_timezone => 'Europe/Paris');
select public.kiotviet_set_schedule('c1800000-0000-0000-0000-000000000001', 'products_full', p_enabled => false);
select is(frequency || ' ' || time_of_day || ' ' || timezone || ' ' || enabled, 'daily 03:00:00 Europe/Paris false',
          'set --disabled keeps the frequency, time of day and zone set before (the issue''s case)')
  from public.kiotviet_sync_schedules where credential_id = 'c1800000-0000-0000-0000-000000000001';
select public.kiotviet_set_schedule('c1800000-0000-0000-0000-000000000001', 'products_full', 'custom', 5, true);
select is(frequency || ' ' || custom_interval_hours || ' ' || time_of_day || ' ' || enabled, 'custom 5 03:00:00 true',
          'set --every 5h keeps the time of day (any period takes one)')
  from public.kiotviet_sync_schedules where credential_id = 'c1800000-0000-0000-0000-000000000001';
select public.kiotviet_set_schedule('c1800000-0000-0000-0000-000000000001', 'products_full', p_clear_time_of_day => true);
select is(coalesce(time_of_day::text, 'none') || ' ' || custom_interval_hours, 'none 5', 'set --at none clears the time of day only')
  from public.kiotviet_sync_schedules where credential_id = 'c1800000-0000-0000-0000-000000000001';
select throws_ok($$select public.kiotviet_set_schedule('c1800000-0000-0000-0000-000000000001', 'inventory', p_enabled => true)$$,
  '22023', null, 'a new schedule needs a frequency');
select throws_ok($$select public.kiotviet_set_schedule('c18fffff-0000-0000-0000-000000000001', 'inventory', 'daily')$$,
  'P0002', null, 'an unknown credential is named');
select throws_ok($$select public.kiotviet_set_schedule('c1800000-0000-0000-0000-000000000001', 'inventory', 'custom')$$,
  '22023', 'a custom frequency needs custom_interval_hours (1-168)', 'custom needs its hours');

create temporary table sid as select id from public.kiotviet_sync_schedules where credential_id = 'c1800000-0000-0000-0000-000000000001';
select is(public.kiotviet_run_schedule_now((select id from sid)), now(), 'run: due now');
select is((select count(*)::int from public.kiotviet_claim_due('w-controls', 10)), 1, 'run: the next tick claims it');
delete from public.kiotviet_sync_logs;
create temporary table claimed as select * from public.kiotviet_claim_schedule((select id from sid), 'w-wait');
select is((select count(*)::int from claimed where schedule_id = (select id from sid)), 1, 'run --wait: claims that schedule for this worker');
select throws_ok($$select * from public.kiotviet_claim_schedule((select id from sid), 'w-wait')$$, '23505', null,
  'run --wait while the credential is syncing is refused');
select public.kiotviet_finish_run(run_id, 'success') from claimed;
select is(last_run_at, now(), 'run --wait: a success is the schedule''s last sync')
  from public.kiotviet_sync_schedules where id = (select id from sid);

select public.kiotviet_pause_schedule((select id from sid), null);
select throws_like($$select public.kiotviet_run_schedule_now((select id from sid))$$, '%is paused: paused by an operator%',
  'run refuses a paused schedule, saying why');
select throws_ok($$select public.kiotviet_delete_schedule('51800000-ffff-0000-0000-000000000001')$$, 'P0002', null,
  'delete of an unknown schedule is refused');
select public.kiotviet_delete_schedule((select id from sid));
select is((select count(*)::int from public.kiotviet_sync_schedules where id = (select id from sid)), 0, 'delete removes it');
select * from finish();
rollback;
