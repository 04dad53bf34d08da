-- A run can be watched live (20261202205000_realtime_logs.sql): kiotviet_sync_logs is in the
-- supabase_realtime publication, RLS applies to what a subscriber sees, and the heartbeat's progress is
-- stored as the ERP would read it.
begin;
select plan(5);
select ok(exists (select from pg_publication_tables where pubname = 'supabase_realtime'
                   and schemaname = 'public' and tablename = 'kiotviet_sync_logs'),
          'kiotviet_sync_logs is in the supabase_realtime publication');
select ok(exists (select from pg_publication_tables where pubname = 'supabase_realtime'
                   and schemaname = 'public' and tablename = 'kiotviet_products_full'),
          'kiotviet_products_full stays in it');
select ok((select relrowsecurity from pg_class where oid = 'public.kiotviet_sync_logs'::regclass),
          'RLS is on for kiotviet_sync_logs, so Realtime shows a subscriber only what it may select');

delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1900000-0000-0000-0000-000000000001', 'live-shop', 'client', 'ct', true);
create temporary table r as select public.kiotviet_start_run('c1900000-0000-0000-0000-000000000001', 'products_full') as id;
select public.kiotviet_heartbeat((select id from r), 'w', '{"stream":"products","done":450,"total":1000,"pages":5,"records":470}');
select is((select (progress ->> 'done')::int * 100 / (progress ->> 'total')::int from public.kiotviet_sync_logs where id = (select id from r)),
          45, 'the heartbeat''s progress carries done and total: 45% of the products');
set local role anon;
select throws_ok($$select count(*) from public.kiotviet_sync_logs$$, '42501', null,
  'anon may not read log rows (nor their live changes)');
reset role;
select * from finish();
rollback;
