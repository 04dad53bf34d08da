-- Each refusal of the schedule functions names its rule in the error's constraint field, so a caller
-- (kvsync's CLI) answers it by that name and never by the message's wording
-- (20261202940000_schedule_rule_names.sql).
begin;
select plan(7);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c2300000-0000-0000-0000-000000000001', 'rules-shop', 'client', 'ct', true),
  ('c2300000-0000-0000-0000-000000000002', 'rules-shop-old', 'client-old', 'ct', false);

-- the constraint field of the error a statement raises (null when it raises none)
create function pg_temp.rule_of(stmt text) returns text language plpgsql as $$
declare
  name text;
begin
  execute stmt;
  return null;
exception when others then
  get stacked diagnostics name = constraint_name;
  return name;
end $$;

select is(pg_temp.rule_of($$select public.kiotviet_set_schedule('c2300000-0000-0000-0000-000000000001', 'inventory', 'daily', p_timezone => 'Mars/Olympus')$$),
  'kiotviet_sync_schedules_timezone_known', 'an unknown time zone names its rule');
select is(pg_temp.rule_of($$select public.kiotviet_set_schedule('c23fffff-0000-0000-0000-000000000001', 'inventory', 'daily')$$),
  'kiotviet_sync_schedules_credential_id_fkey', 'an unknown credential names the foreign key');
select is(pg_temp.rule_of($$select public.kiotviet_set_schedule('c2300000-0000-0000-0000-000000000001', 'inventory', p_enabled => true)$$),
  'kiotviet_sync_schedules_frequency_given', 'a new schedule without a frequency names its rule');

create temporary table sids as
  select 'on'::text as k, public.kiotviet_set_schedule('c2300000-0000-0000-0000-000000000001', 'products_full', 'daily') as id
  union all
  select 'inactive', public.kiotviet_set_schedule('c2300000-0000-0000-0000-000000000002', 'products_full', 'daily');
select public.kiotviet_set_schedule('c2300000-0000-0000-0000-000000000001', 'categories', 'daily', p_enabled => false);
insert into sids select 'off', id from public.kiotviet_sync_schedules
 where credential_id = 'c2300000-0000-0000-0000-000000000001' and sync_type = 'categories';
select is(pg_temp.rule_of(format('select public.kiotviet_run_schedule_now(%L)', (select id from sids where k = 'off'))),
  'kiotviet_sync_schedules_enabled', 'run now of a schedule switched off names its rule');
select is(pg_temp.rule_of(format('select public.kiotviet_run_schedule_now(%L)', (select id from sids where k = 'inactive'))),
  'kiotviet_credentials_active', 'run now on an inactive credential names its rule');
select public.kiotviet_pause_schedule((select id from sids where k = 'on'), null);
select is(pg_temp.rule_of(format('select public.kiotviet_run_schedule_now(%L)', (select id from sids where k = 'on'))),
  'kiotviet_sync_schedules_not_paused', 'run now of a paused schedule names its rule');
select throws_like(format('select public.kiotviet_run_schedule_now(%L)', (select id from sids where k = 'on')),
  '%is paused: paused by an operator%', 'the message is as it was');
select * from finish();
rollback;
