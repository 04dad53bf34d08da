-- Row-level security and privileges on kiotviet_* (20261130000400_rls.sql), per the ERP contract's RLS matrix.
begin;
select plan(55);

-- Identities, as PostgREST sets them.
create temp table ids (name text primary key, claims text) on commit drop;
insert into ids values
  ('anon', '{"role":"anon"}'),
  ('user', '{"sub":"a0000000-0000-0000-0000-000000000001","role":"authenticated","app_metadata":{"role":"user"}}'),
  ('admin', '{"sub":"a0000000-0000-0000-0000-000000000002","role":"authenticated","app_metadata":{"role":"admin"}}'),
  ('owner', '{"sub":"a0000000-0000-0000-0000-000000000003","role":"authenticated","app_metadata":{"role":"Owner"}}');
grant select on ids to anon, authenticated;

-- One row in every table, as the service would write them.
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, encrypted_client_secret)
values ('c0000000-0000-0000-0000-0000000000a1', 'rls-shop', 'rls-client', 'CIPHERTEXT-TOKEN', 'CIPHERTEXT-SECRET');
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency)
values ('50000000-0000-0000-0000-0000000000a1', 'c0000000-0000-0000-0000-0000000000a1', 'products_full', 'daily');
insert into public.kiotviet_sync_logs (id, credential_id, sync_type, status, trigger, completed_at)
values ('10000000-0000-0000-0000-0000000000a1', 'c0000000-0000-0000-0000-0000000000a1', 'products_full', 'success', 'manual', now());
insert into public.kiotviet_sync_state (credential_id, stream) values ('c0000000-0000-0000-0000-0000000000a1', 'products');
insert into public.kiotviet_categories (id, category_name) values (990001, 'rls-category');
insert into public.kiotviet_products (id, code, name, category_id) values (990001, 'RLS-P1', 'rls product', 990001);
insert into public.kiotviet_inventory (product_id, branch_id) values (990001, 1);
insert into public.kiotviet_products_full (id, code, name) values (990001, 'RLS-P1', 'rls product');
insert into public.kiotviet_attributes (id, name) values (990001, 'rls-attribute');
insert into public.kiotviet_branches (id, branch_name) values (990001, 'rls-branch');

-- Structure ------------------------------------------------------------------------------------------------
select is_empty($$select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname like 'kiotviet\_%'
                     and not c.relrowsecurity$$,
  'RLS is enabled on every kiotviet_* table');

select set_eq($$select tablename::text, policyname::text, array_to_string(roles, ','), cmd from pg_policies
                where schemaname = 'public' and tablename like 'kiotviet\_%'$$,
  $$values ('kiotviet_products_full', 'kiotviet_products_full_read', 'anon,authenticated', 'SELECT'),
           ('kiotviet_products_full', 'kiotviet_products_full_admin', 'authenticated', 'ALL'),
           ('kiotviet_products', 'kiotviet_products_read', 'anon,authenticated', 'SELECT'),
           ('kiotviet_products', 'kiotviet_products_admin', 'authenticated', 'ALL'),
           ('kiotviet_inventory', 'kiotviet_inventory_read', 'anon,authenticated', 'SELECT'),
           ('kiotviet_inventory', 'kiotviet_inventory_admin', 'authenticated', 'ALL'),
           ('kiotviet_categories', 'kiotviet_categories_read', 'anon,authenticated', 'SELECT'),
           ('kiotviet_categories', 'kiotviet_categories_delete_permitted', 'authenticated', 'DELETE'),
           ('kiotviet_categories', 'kiotviet_categories_admin', 'authenticated', 'ALL'),
           ('kiotviet_attributes', 'kiotviet_attributes_read', 'authenticated', 'SELECT'),
           ('kiotviet_attributes', 'kiotviet_attributes_admin', 'authenticated', 'ALL'),
           ('kiotviet_branches', 'kiotviet_branches_read', 'authenticated', 'SELECT'),
           ('kiotviet_branches', 'kiotviet_branches_admin', 'authenticated', 'ALL'),
           ('kiotviet_credentials', 'kiotviet_credentials_admin', 'authenticated', 'ALL'),
           ('kiotviet_sync_logs', 'kiotviet_sync_logs_admin', 'authenticated', 'ALL'),
           ('kiotviet_sync_schedules', 'kiotviet_sync_schedules_admin', 'authenticated', 'ALL')$$,
  'the policies on kiotviet_* are exactly the contract matrix (none on sync_state / sync_seen)');

select is((select count(*)::int from pg_policies where schemaname = 'public' and tablename like 'kiotviet\_%'
            and 'anon' = any(roles) and cmd <> 'SELECT'), 0, 'no policy lets anon write');

select table_privs_are('public', 'kiotviet_products_full', 'anon', array['SELECT'], 'anon may only SELECT kiotviet_products_full');
select table_privs_are('public', 'kiotviet_products', 'anon', array['SELECT'], 'anon may only SELECT kiotviet_products');
select table_privs_are('public', 'kiotviet_inventory', 'anon', array['SELECT'], 'anon may only SELECT kiotviet_inventory');
select table_privs_are('public', 'kiotviet_categories', 'anon', array['SELECT'], 'anon may only SELECT kiotviet_categories');
select table_privs_are('public', 'kiotviet_attributes', 'anon', array['SELECT'], 'anon may SELECT kiotviet_attributes (RLS then shows none)');
select table_privs_are('public', 'kiotviet_credentials', 'anon', array[]::text[], 'anon has no table-wide privilege on kiotviet_credentials');
select table_privs_are('public', 'kiotviet_sync_logs', 'anon', array[]::text[], 'anon has no privilege on kiotviet_sync_logs');
select table_privs_are('public', 'kiotviet_sync_schedules', 'anon', array[]::text[], 'anon has no privilege on kiotviet_sync_schedules');
select table_privs_are('public', 'kiotviet_branches', 'anon', array[]::text[], 'anon has no privilege on kiotviet_branches');
select table_privs_are('public', 'kiotviet_sync_state', 'anon', array[]::text[], 'anon has no privilege on kiotviet_sync_state');
select table_privs_are('public', 'kiotviet_sync_state', 'authenticated', array[]::text[], 'authenticated has no privilege on kiotviet_sync_state');
select table_privs_are('public', 'kiotviet_sync_seen', 'anon', array[]::text[], 'anon has no privilege on kiotviet_sync_seen');
select table_privs_are('public', 'kiotviet_sync_seen', 'authenticated', array[]::text[], 'authenticated has no privilege on kiotviet_sync_seen');
select table_privs_are('public', 'kiotviet_credentials', 'authenticated', array['INSERT', 'UPDATE', 'DELETE'],
  'authenticated has no table-wide SELECT on kiotviet_credentials (column grants only)');
select table_privs_are('public', 'kiotviet_sync_state', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'service_role may read and write kiotviet_sync_state');
select is((select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind = 'r' and c.relname like 'kiotviet\_%'
              and not (has_table_privilege('service_role', c.oid, 'select') and has_table_privilege('service_role', c.oid, 'insert')
                       and has_table_privilege('service_role', c.oid, 'update') and has_table_privilege('service_role', c.oid, 'delete'))),
  0, 'service_role may read and write every kiotviet_* table');

select ok(not has_column_privilege('authenticated', 'public.kiotviet_credentials', 'encrypted_token', 'select')
          and not has_column_privilege('authenticated', 'public.kiotviet_credentials', 'encrypted_client_secret', 'select')
          and not has_column_privilege('anon', 'public.kiotviet_credentials', 'encrypted_token', 'select')
          and not has_column_privilege('anon', 'public.kiotviet_credentials', 'encrypted_client_secret', 'select'),
  'no API role may select encrypted_token or encrypted_client_secret');
select ok(has_column_privilege('authenticated', 'public.kiotviet_credentials', 'retailer_name', 'select')
          and has_column_privilege('authenticated', 'public.kiotviet_credentials', 'token_expires_at', 'select'),
  'authenticated may select the credential columns the ERP reads');

select is((select prosecdef and proconfig @> array['search_path=""'] from pg_proc where oid = 'public.kiotviet_is_admin()'::regprocedure),
  true, 'kiotviet_is_admin is SECURITY DEFINER with an empty search_path');
select ok(not has_function_privilege('anon', 'public.kiotviet_is_admin()', 'execute')
          and has_function_privilege('authenticated', 'public.kiotviet_is_admin()', 'execute'),
  'kiotviet_is_admin is executable by authenticated, not anon');

-- anon (the ERP at HEAD, mock auth) ---------------------------------------------------------------------------
set local role anon;
select set_config('request.jwt.claims', (select claims from ids where name = 'anon'), true);
select is((select name from public.kiotviet_products_full where code = 'RLS-P1'), 'rls product',
  'anon reads kiotviet_products_full (public page /p/:code)');
select is((select count(*)::int from public.kiotviet_products p join public.kiotviet_inventory i on i.product_id = p.id
            join public.kiotviet_categories c on c.id = p.category_id where p.id = 990001), 1,
  'anon reads kiotviet_products, kiotviet_inventory and kiotviet_categories');
select is_empty($$select 1 from public.kiotviet_attributes where id = 990001$$, 'anon sees no attributes (empty, not an error)');
select is_empty($$select id, retailer_name from public.kiotviet_credentials$$, 'anon sees no credential (empty, not an error)');
select throws_ok($$select encrypted_token from public.kiotviet_credentials$$, '42501', null, 'anon cannot select encrypted_token');
select throws_ok($$select 1 from public.kiotviet_sync_logs$$, '42501', null, 'anon cannot read kiotviet_sync_logs');
select throws_ok($$select 1 from public.kiotviet_sync_schedules$$, '42501', null, 'anon cannot read kiotviet_sync_schedules');
select throws_ok($$select 1 from public.kiotviet_sync_state$$, '42501', null, 'anon cannot read kiotviet_sync_state');
select throws_ok($$update public.kiotviet_products_full set name = 'x' where id = 990001$$, '42501', null, 'anon cannot write kiotviet_products_full');
select throws_ok($$select public.kiotviet_is_admin()$$, '42501', null, 'anon cannot call kiotviet_is_admin');
reset role;

-- authenticated, not an admin ----------------------------------------------------------------------------------
set local role authenticated;
select set_config('request.jwt.claims', (select claims from ids where name = 'user'), true);
select is(public.kiotviet_is_admin(), false, 'a user whose app_metadata.role is "user" is not an admin');
select is((select name from public.kiotviet_attributes where id = 990001), 'rls-attribute', 'authenticated reads kiotviet_attributes');
select is((select branch_name from public.kiotviet_branches where id = 990001), 'rls-branch', 'authenticated reads kiotviet_branches');
select is_empty($$select id from public.kiotviet_credentials where id = 'c0000000-0000-0000-0000-0000000000a1'$$,
  'a non-admin sees no credential');
select is_empty($$select id from public.kiotviet_sync_logs where id = '10000000-0000-0000-0000-0000000000a1'$$, 'a non-admin sees no run log');
select is_empty($$update public.kiotviet_sync_schedules set enabled = false returning id$$, 'a non-admin updates no schedule');
select throws_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type) values ('c0000000-0000-0000-0000-0000000000a1', 'attributes')$$,
  '42501', null, 'a non-admin cannot insert a schedule (RLS error, as the ERP shows it)');
select is_empty($$delete from public.kiotviet_categories where id = 990001 returning id$$,
  'a non-admin without manage_kiotviet deletes no category');
reset role;

-- admin by JWT app_metadata (no public.is_admin in this database) ------------------------------------------------
set local role authenticated;
select set_config('request.jwt.claims', (select claims from ids where name = 'admin'), true);
select is(public.kiotviet_is_admin(), true, 'without public.is_admin, app_metadata.role admin is an admin');
select is((select retailer_name from public.kiotviet_credentials where id = 'c0000000-0000-0000-0000-0000000000a1'), 'rls-shop',
  'an admin reads the credential (the columns the ERP selects)');
select throws_ok($$select encrypted_token from public.kiotviet_credentials$$, '42501', null, 'an admin cannot select encrypted_token');
select throws_ok($$select * from public.kiotviet_credentials$$, '42501', null, 'an admin cannot select * from kiotviet_credentials');
select is((select status from public.kiotviet_sync_logs where id = '10000000-0000-0000-0000-0000000000a1'), 'success', 'an admin reads the run log');
select lives_ok($$insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours)
                  values ('c0000000-0000-0000-0000-0000000000a1', 'attributes', 'custom', 6)$$,
  'an admin inserts a schedule as the ERP does');
select isnt_empty($$update public.kiotviet_sync_schedules set frequency = 'hourly' where id = '50000000-0000-0000-0000-0000000000a1' returning id$$,
  'an admin updates a schedule');
select throws_ok($$select 1 from public.kiotviet_sync_state$$, '42501', null, 'even an admin cannot read kiotviet_sync_state');
select set_config('request.jwt.claims', (select claims from ids where name = 'owner'), true);
select is(public.kiotviet_is_admin(), true, 'without public.is_admin, app_metadata.role owner (any case) is an admin');
reset role;

-- admin by the ERP's public.is_admin(uuid), created after the migration -------------------------------------------
create function public.is_admin(_user_id uuid) returns boolean language sql stable as
  $$ select _user_id = 'a0000000-0000-0000-0000-000000000001'::uuid $$;
set local role authenticated;
select set_config('request.jwt.claims', (select claims from ids where name = 'user'), true);
select is(public.kiotviet_is_admin(), true, 'public.is_admin(auth.uid()) decides when it exists, even if created later');
select set_config('request.jwt.claims', (select claims from ids where name = 'admin'), true);
select is(public.kiotviet_is_admin(), false, 'when public.is_admin exists, a JWT claim alone does not make an admin');
reset role;

-- manage_kiotviet may delete categories (the ERP's permission tables, made here) -----------------------------------
create table public.user_roles (user_id uuid, role_id int);
create table public.role_permissions (role_id int, feature_id int);
create table public.features (id int, code text);
insert into public.user_roles values ('a0000000-0000-0000-0000-000000000003', 7);
insert into public.role_permissions values (7, 70);
insert into public.features values (70, 'manage_kiotviet');
set local role authenticated;
select set_config('request.jwt.claims', (select claims from ids where name = 'owner'), true);
select isnt_empty($$delete from public.kiotviet_categories where id = 990001 returning id$$,
  'a user holding manage_kiotviet deletes categories');
reset role;
select is_empty($$select 1 from public.kiotviet_categories where id = 990001$$, 'the permitted delete really removed the category');

-- service_role bypasses RLS -----------------------------------------------------------------------------------------
set local role service_role;
select is((select encrypted_token from public.kiotviet_credentials where id = 'c0000000-0000-0000-0000-0000000000a1'), 'CIPHERTEXT-TOKEN',
  'service_role reads credentials, ciphertext included');
reset role;

select * from finish();
rollback;
