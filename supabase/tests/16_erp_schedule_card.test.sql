-- The ERP's schedule card (erp-contract.md §4.8), replayed as an admin's JWT the way PostgREST runs its
-- calls: insert {credential_id, sync_type, frequency, custom_interval_hours?, enabled}, update {frequency,
-- custom_interval_hours, enabled} by id, and the read back of next_run_at ("Đồng bộ tiếp theo") and
-- last_run_at ("Lần cuối") it shows after each save. The runs are the service's (a manual sync).
begin;
select plan(15);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1600000-0000-0000-0000-000000000001', 'card-shop', 'client', 'ct', true);
create temporary table card (step text, next_run_at timestamptz, last_run_at timestamptz, enabled boolean);
grant all on card to authenticated;

create function pg_temp.as_admin() returns void language sql as $$
  select set_config('request.jwt.claims',
    '{"sub":"a1600000-0000-0000-0000-000000000001","role":"authenticated","app_metadata":{"role":"admin"}}', true);
  set local role authenticated;
$$;
-- what the card reads: select('*').eq('credential_id', …).eq('sync_type', 'products_full').maybeSingle()
create function pg_temp.card_reads(p_step text) returns void language sql as $$
  insert into card select p_step, next_run_at, last_run_at, enabled from public.kiotviet_sync_schedules
   where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
$$;

select pg_temp.as_admin();
insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, enabled)
values ('c1600000-0000-0000-0000-000000000001', 'products_full', 'daily', true);
select pg_temp.card_reads('insert');
select is(next_run_at || ' ' || coalesce(last_run_at::text, 'none'), (now() + interval '1 day') || ' none',
          'insert (daily): next run one day from now, no last sync') from card where step = 'insert';

update public.kiotviet_sync_schedules set frequency = 'daily', custom_interval_hours = null, enabled = false
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.card_reads('off');
select is(next_run_at, now() + interval '1 day', 'toggle off: the stored next run is kept') from card where step = 'off';
update public.kiotviet_sync_schedules set frequency = 'daily', custom_interval_hours = null, enabled = true
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.card_reads('on');
select is(next_run_at, now() + interval '1 day', 'toggle on with no run yet: the next slot, not due at once') from card where step = 'on';

-- The service syncs (the card's "Đồng bộ dữ liệu" button: a manual products_full run) and it succeeds.
reset role;
create temporary table manual as
  select public.kiotviet_start_run('c1600000-0000-0000-0000-000000000001', 'products_full', 'manual') as run_id;
select public.kiotviet_finish_run(run_id, 'success', 42) from manual;
grant select on manual to authenticated;
select pg_temp.as_admin();
select pg_temp.card_reads('synced');
select is(to_char(last_run_at, 'YYYY-MM-DD HH24:MI:SS'),
          (select to_char(completed_at, 'YYYY-MM-DD HH24:MI:SS') from public.kiotviet_sync_logs where id = (select run_id from manual)),
          'after a sync: "Lần cuối" is the run''s finish, to the second') from card where step = 'synced';

update public.kiotviet_sync_schedules set frequency = 'hourly', custom_interval_hours = null, enabled = true
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.card_reads('hourly');
select is(next_run_at, now() + interval '1 hour', 'change to hourly right after the sync: one hour after it, not due now')
  from card where step = 'hourly';
select is(last_run_at, (select completed_at from public.kiotviet_sync_logs where id = (select run_id from manual)),
          'a change of frequency keeps "Lần cuối"') from card where step = 'hourly';

update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 1, enabled = true
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.card_reads('custom1');
select is(next_run_at, now() + interval '1 hour', 'custom 1 h: one hour after the sync') from card where step = 'custom1';
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 168, enabled = true
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.card_reads('custom168');
select is(next_run_at, now() + interval '168 hours', 'custom 168 h: a week after the sync') from card where step = 'custom168';

select throws_ok($$update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 0, enabled = true
                    where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full'$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_hours_check"',
  'custom 0 h is refused by the rule''s name (the card''s toast shows it)');
select throws_ok($$update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 169, enabled = true
                    where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full'$$,
  '23514', 'new row for relation "kiotviet_sync_schedules" violates check constraint "kiotviet_sync_schedules_custom_interval_hours_check"',
  'custom 169 h is refused by the rule''s name');
select pg_temp.card_reads('refused');
select is(next_run_at, now() + interval '168 hours', 'a refused save changes nothing') from card where step = 'refused';

update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 168, enabled = false
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 168, enabled = true
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.card_reads('off-on');
select is(next_run_at, now() + interval '168 hours', 'toggle off and on after the sync: the next slot of its grid')
  from card where step = 'off-on';

-- A schedule with a time of day set by the CLI: the card's "custom 5 h" saves (the issue's toast error).
reset role;
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 6, time_of_day = '02:00'
 where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full';
select pg_temp.as_admin();
select lives_ok($$update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 5, enabled = true
                   where credential_id = 'c1600000-0000-0000-0000-000000000001' and sync_type = 'products_full'$$,
  'custom 5 h on a schedule with a time of day saves');
select pg_temp.card_reads('tod5');
select ok(next_run_at > now() and next_run_at <= now() + interval '5 hours', 'and its next run is within 5 hours')
  from card where step = 'tod5';
select is(count(*)::int, 10, 'the card read one row after every save (maybeSingle never sees two)') from card;
reset role;
select * from finish();
rollback;
