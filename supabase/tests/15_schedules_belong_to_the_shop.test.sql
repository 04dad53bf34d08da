-- DESIGN.md §3: schedules belong to the shop. A retailer's new credential, by any path
-- (kiotviet_save_credential: save-kiotviet-token and `kvsync credentials add`), takes over the schedules
-- of its other credentials, active or already deactivated; a shop never has two schedules of one type.
begin;
select plan(10);
delete from public.kiotviet_credentials;
insert into auth.users (id, email) values ('a1500000-0000-0000-0000-000000000001', 'owner15@example.com'),
                                           ('a1500000-0000-0000-0000-000000000002', 'other15@example.com');
insert into public.kiotviet_credentials (id, user_id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1500000-0000-0000-0000-000000000001', null, 'ShopX', 'old', 'ct', true),
  ('c1500000-0000-0000-0000-000000000009', null, 'othershop', 'other', 'ct', true);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, time_of_day, timezone) values
  ('51500000-0000-0000-0000-000000000001', 'c1500000-0000-0000-0000-000000000001', 'products_full', 'hourly', null, 'Asia/Ho_Chi_Minh'),
  ('51500000-0000-0000-0000-000000000002', 'c1500000-0000-0000-0000-000000000001', 'inventory', 'daily', '03:00', 'Europe/Paris'),
  ('51500000-0000-0000-0000-000000000009', 'c1500000-0000-0000-0000-000000000009', 'products_full', 'daily', null, 'Asia/Ho_Chi_Minh');
update public.kiotviet_sync_schedules set last_run_at = now() - interval '20 minutes' where id = '51500000-0000-0000-0000-000000000001';

-- The issue's case: `credentials deactivate`, then `credentials add` for the same retailer.
select ok(public.kiotviet_deactivate_credential('c1500000-0000-0000-0000-000000000001'), 'the old credential is deactivated');
select public.kiotviet_save_credential('c1500000-0000-0000-0000-000000000002', null, ' shopx ', 'new', 's', 't', now() + interval '1 day');
select set_eq($$select id, credential_id, frequency, time_of_day, timezone from public.kiotviet_sync_schedules where credential_id::text like 'c15%'$$,
  $$values ('51500000-0000-0000-0000-000000000001'::uuid, 'c1500000-0000-0000-0000-000000000002'::uuid, 'hourly', null::time, 'Asia/Ho_Chi_Minh'),
           ('51500000-0000-0000-0000-000000000002', 'c1500000-0000-0000-0000-000000000002', 'daily', '03:00', 'Europe/Paris'),
           ('51500000-0000-0000-0000-000000000009', 'c1500000-0000-0000-0000-000000000009', 'daily', null, 'Asia/Ho_Chi_Minh')$$,
  'the new credential takes over the shop''s schedules from the deactivated one, settings kept; another shop''s stay');
select is(last_run_at, now() - interval '20 minutes', 'a schedule taken over keeps its last sync')
  from public.kiotviet_sync_schedules where id = '51500000-0000-0000-0000-000000000001';
select ok(is_due is not null and credential_active, 'the status view shows the schedule on an active credential')
  from public.kiotviet_schedule_status where schedule_id = '51500000-0000-0000-0000-000000000001';

-- A second schedule of a type for the shop is refused, on any of its credentials, with the rule named.
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency)
                   values ('c1500000-0000-0000-0000-000000000001', 'products_full', 'hourly')$$,
  '23505', null, 'a second products_full schedule for the shop (on its old credential) is refused');
select throws_like($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency)
                     values ('c1500000-0000-0000-0000-000000000001', 'inventory', 'hourly')$$,
  '%one schedule per shop and sync type%', 'the refusal names the rule');

-- save-kiotviet-token (an owner's JWT) for the same shop, from another user: the shop's schedules follow.
select public.kiotviet_save_credential('c1500000-0000-0000-0000-000000000003', 'a1500000-0000-0000-0000-000000000002',
  'SHOPX', 'newer', 's', 't', now() + interval '1 day');
select is((select count(*)::int from public.kiotviet_sync_schedules where credential_id = 'c1500000-0000-0000-0000-000000000003'), 2,
  'a credential saved by another user for the same shop takes the schedules over');

-- Duplicates left by earlier versions (two credentials of the shop each with a products_full schedule):
-- the next saved credential keeps one, the most recently changed, with the newest last sync.
alter table public.kiotviet_sync_schedules disable trigger calculate_next_run_trigger;
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, last_run_at, updated_at) values
  ('51500000-0000-0000-0000-000000000004', 'c1500000-0000-0000-0000-000000000001', 'products_full', 'daily', now() - interval '1 minute', now() - interval '1 day');
alter table public.kiotviet_sync_schedules enable trigger calculate_next_run_trigger;
update public.kiotviet_sync_schedules set last_run_at = now() - interval '3 hours', updated_at = now()
 where id = '51500000-0000-0000-0000-000000000001';
select public.kiotviet_save_credential('c1500000-0000-0000-0000-000000000005', null, 'ShopX', 'newest', 's', 't', now() + interval '1 day');
select set_eq($$select s.id from public.kiotviet_sync_schedules s join public.kiotviet_credentials c on c.id = s.credential_id
                 where lower(c.retailer_name) = 'shopx' and s.sync_type = 'products_full'$$,
  $$values ('51500000-0000-0000-0000-000000000001'::uuid)$$, 'two products_full schedules of one shop become one');
select is(last_run_at, now() - interval '1 minute', 'the one kept carries the newest last sync')
  from public.kiotviet_sync_schedules where id = '51500000-0000-0000-0000-000000000001';
select is((select count(*)::int from public.kiotviet_sync_schedules where credential_id = 'c1500000-0000-0000-0000-000000000009'), 1,
  'the other shop''s schedule is untouched');
select * from finish();
rollback;
