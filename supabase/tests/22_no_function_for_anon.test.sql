-- No kvsync function is executable by anon, and each has an empty search_path (DESIGN.md: SQL logic in
-- SQL functions, SECURITY DEFINER, set search_path = '', service_role only). Checked over the catalogue,
-- so a function added later without its revoke fails here, whoever adds it. authenticated may execute
-- only the helpers its RLS policies and the status views call.
begin;
select plan(3);

select is(array(select p.oid::regprocedure::text from pg_catalog.pg_proc p
                 where p.pronamespace = 'public'::regnamespace and p.proname like 'kiotviet\_%'
                   and has_function_privilege('anon', p.oid, 'execute') order by 1),
          '{}'::text[], 'anon may execute no kvsync function');

select is(array(select p.oid::regprocedure::text from pg_catalog.pg_proc p
                 where p.pronamespace = 'public'::regnamespace and p.proname like 'kiotviet\_%'
                   and has_function_privilege('authenticated', p.oid, 'execute')
                   and p.proname not in ('kiotviet_is_admin', 'kiotviet_has_permission', 'kiotviet_local_time')
                 order by 1),
          '{}'::text[], 'authenticated may execute only the RLS helpers and the views'' time formatter');

select is(array(select p.oid::regprocedure::text from pg_catalog.pg_proc p
                 where p.pronamespace = 'public'::regnamespace and p.proname like 'kiotviet\_%'
                   and not coalesce(p.proconfig @> array['search_path=""'], false) order by 1),
          '{}'::text[], 'every kvsync function has an empty search_path');

select * from finish();
rollback;
