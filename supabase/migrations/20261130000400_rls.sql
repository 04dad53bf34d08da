-- Row-level security and privileges for every kiotviet_* table, per the ERP contract's RLS matrix (§3.3):
--
--   table                        anon     authenticated (non-admin)          admin (authenticated)
--   kiotviet_products_full       SELECT   SELECT                             ALL
--   kiotviet_products/_inventory SELECT   SELECT                             ALL
--   kiotviet_categories          SELECT   SELECT; DELETE with manage_kiotviet ALL
--   kiotviet_attributes          (none)*  SELECT                             ALL
--   kiotviet_branches            -        SELECT                             ALL   (kvsync's; anon gets nothing new)
--   kiotviet_credentials         (none)*  -                                  ALL, never the encrypted_* columns
--   kiotviet_sync_logs           -        -                                  ALL
--   kiotviet_sync_schedules      -        -                                  ALL
--   kiotviet_sync_state/_seen    -        -                                  -     (kvsync's service_role only)
--   (none)*: SELECT granted but no policy, so the ERP gets an empty answer rather than an error (see below).
--
-- Privileges are explicit: Supabase's default privileges grant ALL on every new table in public to anon
-- and authenticated, so everything is revoked first and exactly what the policies can use is granted back
-- (a missing GRANT fails before any policy runs; a surplus one would leave RLS as the only barrier).
-- service_role bypasses RLS and gets the DML the Go service needs.
--
-- Applies to an empty database and to one that holds the earlier system's policies: those are dropped by
-- name, and any other policy left on one of kvsync's tables is dropped too (with a NOTICE naming it), so
-- the policies after this migration are exactly the ones below, whatever a database carried before.

------------------------------------------------------------------------------------------------------------
-- Who is an admin. The ERP defines public.is_admin(uuid) (user_roles ⋈ roles, owner/admin); where it
-- exists it is the single source of truth, so ERP admins manage KiotViet too. Where it does not (a
-- database without the ERP's role tables), the JWT's app_metadata.role decides: app_metadata is set only
-- by the server, never by the user, unlike user_metadata.
-- The lookup happens at call time (to_regprocedure), so it is right whether the ERP's function was created
-- before or after this migration, and if it is dropped later. SECURITY DEFINER so that callers need no
-- access to the ERP's role tables.
create or replace function public.kiotviet_is_admin() returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare
  result boolean;
begin
  if to_regprocedure('public.is_admin(uuid)') is not null then
    -- dynamic: a static call would not compile where the function does not exist
    execute 'select public.is_admin($1)' into result using auth.uid();
    return coalesce(result, false);
  end if;
  return coalesce(lower(auth.jwt() -> 'app_metadata' ->> 'role') in ('admin', 'owner'), false);
end $$;
comment on function public.kiotviet_is_admin() is
  'kvsync: true when the caller is an ERP admin (public.is_admin(auth.uid()) when it exists, else JWT app_metadata.role admin/owner)';

-- Whether the caller's ERP role holds a feature permission (user_roles → role_permissions → features).
-- Keeps the earlier categories DELETE rule for holders of 'manage_kiotviet'; false where the ERP's
-- permission tables do not exist, so the rule costs nothing elsewhere.
create or replace function public.kiotviet_has_permission(p_feature text) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare
  result boolean;
begin
  if auth.uid() is null
     or to_regclass('public.user_roles') is null
     or to_regclass('public.role_permissions') is null
     or to_regclass('public.features') is null then
    return false;
  end if;
  execute 'select exists (select from public.user_roles ur
             join public.role_permissions rp on rp.role_id = ur.role_id
             join public.features f on f.id = rp.feature_id
            where ur.user_id = $1 and f.code = $2)'
    into result using auth.uid(), p_feature;
  return coalesce(result, false);
end $$;
comment on function public.kiotviet_has_permission(text) is
  'kvsync: true when the caller''s ERP role has the feature (role_permissions/features); false without those tables';

-- Policies call these as the querying role. anon is never asked (every policy that calls them is TO
-- authenticated), so anon gets no EXECUTE.
revoke all on function public.kiotviet_is_admin() from public, anon, authenticated;
revoke all on function public.kiotviet_has_permission(text) from public, anon, authenticated;
grant execute on function public.kiotviet_is_admin() to authenticated, service_role;
grant execute on function public.kiotviet_has_permission(text) to authenticated, service_role;

------------------------------------------------------------------------------------------------------------
-- RLS on and privileges reset on each of kvsync's tables. Named one by one rather than by pattern: the
-- ERP's database may hold other kiotviet_* tables of its own, which this migration must not touch.
-- (supabase/tests/20_rls.test.sql fails when a kiotviet_* table of ours is missing from this list.)
do $$
declare
  t text;
begin
  foreach t in array array['kiotviet_credentials', 'kiotviet_sync_schedules', 'kiotviet_sync_logs', 'kiotviet_sync_state',
                           'kiotviet_sync_seen', 'kiotviet_categories', 'kiotviet_products', 'kiotviet_inventory',
                           'kiotviet_products_full', 'kiotviet_attributes', 'kiotviet_branches']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from public, anon, authenticated, service_role', t);
    execute format('grant select, insert, update, delete on table public.%I to service_role', t);
  end loop;
end $$;

------------------------------------------------------------------------------------------------------------
-- Policies: the earlier system's by name (ERP migrations 20251029173537, 20251030065934, 20251102081637,
-- 20251102102426, the categories DELETE rule, and 509493f's schedules), then anything else on these tables.
drop policy if exists "Admin full access credentials" on public.kiotviet_credentials;
drop policy if exists "Admin full access categories" on public.kiotviet_categories;
drop policy if exists "All users read categories" on public.kiotviet_categories;
drop policy if exists "Users can delete categories with permission" on public.kiotviet_categories;
drop policy if exists "Admin full access products" on public.kiotviet_products;
drop policy if exists "All users read products" on public.kiotviet_products;
drop policy if exists "Admin full access inventory" on public.kiotviet_inventory;
drop policy if exists "All users read inventory" on public.kiotviet_inventory;
drop policy if exists "Admin full access logs" on public.kiotviet_sync_logs;
drop policy if exists "allow_public_read_products" on public.kiotviet_products_full;
drop policy if exists "allow_authenticated_read" on public.kiotviet_products_full;
drop policy if exists "allow_admin_all" on public.kiotviet_products_full;
drop policy if exists "Admin can manage attributes" on public.kiotviet_attributes;
drop policy if exists "Users can view attributes" on public.kiotviet_attributes;
drop policy if exists "Admin full access schedules" on public.kiotviet_sync_schedules;

-- Any other policy on our tables (a hand-made one, a renamed copy) would be OR-ed with ours and could
-- let anon in.
do $$
declare
  p record;
begin
  for p in select schemaname, tablename, policyname from pg_catalog.pg_policies
            where schemaname = 'public' and policyname not like 'kiotviet\_%'
              and tablename in ('kiotviet_credentials', 'kiotviet_sync_schedules', 'kiotviet_sync_logs',
                                'kiotviet_sync_state', 'kiotviet_sync_seen', 'kiotviet_categories', 'kiotviet_products',
                                'kiotviet_inventory', 'kiotviet_products_full', 'kiotviet_attributes', 'kiotviet_branches')
  loop
    raise notice 'kvsync: dropping policy "%" on %.% (not part of the ERP contract''s RLS matrix)',
      p.policyname, p.schemaname, p.tablename;
    execute format('drop policy %I on %I.%I', p.policyname, p.schemaname, p.tablename);
  end loop;
end $$;

-- Catalogue tables the ERP's public pages read (§3.3: SELECT USING (true) for anon and authenticated).
drop policy if exists kiotviet_products_full_read on public.kiotviet_products_full;
create policy kiotviet_products_full_read on public.kiotviet_products_full
  for select to anon, authenticated using (true);
drop policy if exists kiotviet_products_read on public.kiotviet_products;
create policy kiotviet_products_read on public.kiotviet_products
  for select to anon, authenticated using (true);
drop policy if exists kiotviet_inventory_read on public.kiotviet_inventory;
create policy kiotviet_inventory_read on public.kiotviet_inventory
  for select to anon, authenticated using (true);
drop policy if exists kiotviet_categories_read on public.kiotviet_categories;
create policy kiotviet_categories_read on public.kiotviet_categories
  for select to anon, authenticated using (true);

-- Signed-in only: the ERP hides attributes from anon (§3.4); branches are kvsync's and stay as private.
drop policy if exists kiotviet_attributes_read on public.kiotviet_attributes;
create policy kiotviet_attributes_read on public.kiotviet_attributes
  for select to authenticated using (true);
drop policy if exists kiotviet_branches_read on public.kiotviet_branches;
create policy kiotviet_branches_read on public.kiotviet_branches
  for select to authenticated using (true);

-- The earlier rule: holders of the ERP feature 'manage_kiotviet' may delete categories.
drop policy if exists kiotviet_categories_delete_permitted on public.kiotviet_categories;
create policy kiotviet_categories_delete_permitted on public.kiotviet_categories
  for delete to authenticated using ((select public.kiotviet_has_permission('manage_kiotviet')));

-- Admins manage everything the ERP shows them. (select …) makes the check one initPlan per statement
-- instead of one call per row. The attributes table's earlier rule was "roles.level <= 2", which is
-- owner and admin: the same people kiotviet_is_admin() names.
do $$
declare
  t text;
begin
  foreach t in array array['kiotviet_products_full', 'kiotviet_products', 'kiotviet_inventory', 'kiotviet_categories',
                           'kiotviet_attributes', 'kiotviet_branches', 'kiotviet_credentials', 'kiotviet_sync_logs',
                           'kiotviet_sync_schedules']
  loop
    execute format('drop policy if exists %I on public.%I', t || '_admin', t);
    execute format('create policy %I on public.%I for all to authenticated
                      using ((select public.kiotviet_is_admin())) with check ((select public.kiotviet_is_admin()))',
                   t || '_admin', t);
  end loop;
end $$;
-- kiotviet_sync_state and kiotviet_sync_seen: RLS on and no policy: only service_role (bypassrls) and
-- the owner see them.

------------------------------------------------------------------------------------------------------------
-- Privileges matching the policies above.
grant select on table public.kiotviet_products_full, public.kiotviet_products, public.kiotviet_inventory,
  public.kiotviet_categories to anon;
-- The ERP runs as anon at HEAD (mock auth) and expects "no rows", not an error, from two tables it cannot
-- see (§3.4): the attribute list comes back empty and the settings page gets a null credential. So anon
-- keeps SELECT there with no policy of its own: RLS returns nothing, and the credential grant below
-- excludes the encrypted columns all the same. No other table is granted to anon.
grant select on table public.kiotviet_attributes to anon;
grant select, insert, update, delete on table public.kiotviet_products_full, public.kiotviet_products,
  public.kiotviet_inventory, public.kiotviet_categories, public.kiotviet_attributes, public.kiotviet_branches,
  public.kiotviet_sync_logs, public.kiotviet_sync_schedules to authenticated;

-- Credentials: no client ever reads ciphertext (the ERP selects id, retailer_name, client_id, is_active,
-- created_at, updated_at), so the API roles get SELECT on every column except encrypted_*: a select('*')
-- or a leaked admin session still cannot pull the tokens or client secrets. Computed from the catalogue so
-- the columns of earlier migrations are all covered; writes stay table-wide (admins only, by policy).
do $$
declare
  cols text;
begin
  select string_agg(format('%I', a.attname), ', ' order by a.attnum) into cols
    from pg_catalog.pg_attribute a
   where a.attrelid = 'public.kiotviet_credentials'::regclass and a.attnum > 0 and not a.attisdropped
     and a.attname not like 'encrypted\_%';
  execute format('grant select (%s) on table public.kiotviet_credentials to anon, authenticated', cols);
end $$;
grant insert, update, delete on table public.kiotviet_credentials to authenticated;
