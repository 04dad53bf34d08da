-- The claim reads the due index in order and stops after limit × 6 claimable schedules (a credential has
-- at most six, one per sync type): it must still start the limit most overdue credentials, each with its
-- most overdue schedule, even when the most overdue rows all belong to credentials with six schedules
-- due. now() is fixed in this transaction; nothing sleeps.
begin;
select plan(4);

delete from public.kiotviet_sync_logs where status = 'running';
update public.kiotviet_sync_schedules set enabled = false;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c7000000-0000-0000-0000-0000000000a1', 'sixA', 'clientA', 'ct', true),
  ('c7000000-0000-0000-0000-0000000000b2', 'sixB', 'clientB', 'ct', true),
  ('c7000000-0000-0000-0000-0000000000c3', 'oneC', 'clientC', 'ct', true),
  ('c7000000-0000-0000-0000-0000000000d4', 'oneD', 'clientD', 'ct', true),
  ('c7000000-0000-0000-0000-0000000000e5', 'offE', 'clientE', 'ct', false);
-- A and B: six schedules each, interleaved, the twelve most overdue; C and D one each, later; E the most
-- overdue of all but inactive
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, next_run_at)
select ('57000000-0000-0000-0000-0000000000' || c.tag || n)::uuid, c.id, t.sync_type, 'daily',
       now() - make_interval(mins => (100 - 2 * n - c.shift)::int)
  from (values ('c7000000-0000-0000-0000-0000000000a1'::uuid, 'a', 0), ('c7000000-0000-0000-0000-0000000000b2'::uuid, 'b', 1)) c(id, tag, shift)
 cross join unnest(array['products_full', 'products', 'categories', 'inventory', 'attributes', 'all']) with ordinality t(sync_type, n);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, next_run_at) values
  ('57000000-0000-0000-0000-0000000000c1', 'c7000000-0000-0000-0000-0000000000c3', 'products', 'daily', now() - interval '20 minutes'),
  ('57000000-0000-0000-0000-0000000000d1', 'c7000000-0000-0000-0000-0000000000d4', 'products', 'daily', now() - interval '10 minutes'),
  ('57000000-0000-0000-0000-0000000000e1', 'c7000000-0000-0000-0000-0000000000e5', 'products', 'daily', now() - interval '200 minutes');

create temporary table claimed on commit drop as select * from public.kiotviet_claim_due('w-scan', 3);
select set_eq($$select credential_id from claimed$$,
  array['c7000000-0000-0000-0000-0000000000a1', 'c7000000-0000-0000-0000-0000000000b2', 'c7000000-0000-0000-0000-0000000000c3']::uuid[],
  'claim: a limit of 3 starts the three most overdue active credentials past twelve schedules of two of them');
select set_eq($$select schedule_id from claimed$$,
  array['57000000-0000-0000-0000-0000000000a1', '57000000-0000-0000-0000-0000000000b1', '57000000-0000-0000-0000-0000000000c1']::uuid[],
  'claim: each with its most overdue schedule');
select set_eq($$select credential_id from public.kiotviet_claim_due('w-scan', 10)$$,
  array['c7000000-0000-0000-0000-0000000000d4']::uuid[],
  'claim: the next claim starts only the credential not running yet, never the inactive one');
select is_empty($$select * from public.kiotviet_claim_due('w-scan', 10)$$, 'claim: then nothing is left to start');

select * from finish();
rollback;
