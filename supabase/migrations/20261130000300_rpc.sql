-- The RPC surface: every read and write kvsync's Go code does is one of these functions, so the same calls
-- work over a direct connection and over PostgREST, a DBA can read the logic, and pgTAP can test it.
-- All are SECURITY DEFINER with an empty search_path and executable by service_role only (grants at the end).

------------------------------------------------------------------------------------------------------------
-- Category names and root-to-leaf paths (" > " joined, as the ERP splits them). A category whose parent is
-- not (yet) here counts as a root; a cycle in bad data stops at the repeat instead of looping.
create or replace view public.kiotviet_category_paths with (security_invoker = true) as
with recursive t as (
  select c.id, c.category_name, 1 as level, c.category_name::text as path, array[c.id] as seen
    from public.kiotviet_categories c
   where c.parent_id is null
  union all
  select c.id, c.category_name, t.level + 1, t.path || ' > ' || c.category_name, t.seen || c.id
    from public.kiotviet_categories c
    join t on c.parent_id = t.id
   where not c.id = any (t.seen)
)
select id, category_name, level, path from t;

------------------------------------------------------------------------------------------------------------
-- What a schedule does after a run of it ends. One rule, used by kiotviet_finish_run and by
-- kiotviet_rescue_expired:
--   success → last_run_at = the slot the run was for, next_run_at = the first slot on the same grid after
--             now (no drift, and an overdue schedule runs once, not once per missed slot); failures reset;
--   failed / partial → capped exponential backoff (5 min, 10, 20, … never beyond one period), the count
--             and the error kept: never a retry on every tick.
create or replace function public.kiotviet_schedule_after_run(
  p_schedule_id uuid, p_status text, p_slot_at timestamptz, p_error text
) returns timestamptz
language plpgsql security definer set search_path = '' as $$
declare
  s public.kiotviet_sync_schedules;
  next_at timestamptz;
  slot timestamptz;
begin
  select * into s from public.kiotviet_sync_schedules where id = p_schedule_id for update;
  if not found then return null; end if;
  if p_status = 'success' then
    -- The slot this run stands for is the latest slot of the schedule's grid at or before the time it was
    -- claimed for: a run retried after failures (claimed at a backoff time, off the grid) or started early
    -- by an admin still lands on the grid, so the grid never moves. The grid is anchored at the last
    -- successful slot, or at the schedule's creation (its first slot was one period after it).
    slot := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
              coalesce(s.last_run_at, s.created_at),
              coalesce(p_slot_at, now()) - public.kiotviet_schedule_interval(s.frequency, s.custom_interval_hours));
    slot := least(coalesce(slot, p_slot_at, now()), coalesce(p_slot_at, now()));
    next_at := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                         slot, now());
    update public.kiotviet_sync_schedules
       set last_run_at = slot, next_run_at = next_at, consecutive_failures = 0,
           last_status = 'success', last_error = null, last_success_at = now()
     where id = p_schedule_id;
  elsif p_status in ('failed', 'partial') then
    next_at := now() + public.kiotviet_backoff(s.consecutive_failures + 1,
                 public.kiotviet_schedule_interval(s.frequency, s.custom_interval_hours));
    update public.kiotviet_sync_schedules
       set next_run_at = next_at, consecutive_failures = s.consecutive_failures + 1,
           last_status = p_status, last_error = left(p_error, 2000)
     where id = p_schedule_id;
  else
    -- skipped: try again at the next slot, without counting a failure
    next_at := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                         coalesce(p_slot_at, now()), now());
    update public.kiotviet_sync_schedules set next_run_at = next_at, last_status = p_status where id = p_schedule_id;
  end if;
  return next_at;
end $$;

------------------------------------------------------------------------------------------------------------
-- Claims up to p_limit due schedules in ONE statement and opens a running log row for each. Concurrent
-- dispatchers (any number of replicas) never get the same schedule: rows are locked FOR UPDATE SKIP
-- LOCKED, at most one schedule per credential is taken, and the one-running-per-credential index turns a
-- race for a credential into "do nothing" for the loser. Inactive or missing credentials are not run.
create or replace function public.kiotviet_claim_due(
  p_worker text, p_limit integer default 10, p_lease_seconds integer default 120
) returns table (run_id uuid, schedule_id uuid, credential_id uuid, sync_type text, slot_at timestamptz)
language sql volatile security definer set search_path = '' as $$
  with candidates as (
    -- the most overdue schedule of each credential that may run now (one run per credential at a time),
    -- so the limit counts credentials that can start, not schedules that would wait for each other
    select distinct on (s.credential_id) s.id, s.next_run_at
      from public.kiotviet_sync_schedules s
      join public.kiotviet_credentials c on c.id = s.credential_id and c.is_active
     where s.enabled
       and s.next_run_at <= now()
       and not exists (select from public.kiotviet_sync_logs l
                        where l.credential_id = s.credential_id and l.status = 'running')
     order by s.credential_id, s.next_run_at, s.id
  ), pick as (
    select s.id, s.credential_id, s.sync_type, s.next_run_at
      from public.kiotviet_sync_schedules s
     where s.id in (select id from candidates order by next_run_at, id limit greatest(p_limit, 0))
       and s.enabled and s.next_run_at <= now()  -- checked again on the row as locked
       for update of s skip locked
  )
  insert into public.kiotviet_sync_logs as l
    (sync_type, status, trigger, credential_id, schedule_id, slot_at, worker, lease_expires_at, heartbeat_at, started_at)
  select p.sync_type, 'running', 'cron', p.credential_id, p.id, p.next_run_at, p_worker,
         now() + make_interval(secs => p_lease_seconds), now(), now()
    from pick p
  on conflict (credential_id) where status = 'running' do nothing
  returning l.id, l.schedule_id, l.credential_id, l.sync_type, l.slot_at
$$;

-- Starts a run outside the schedule (the ERP's button, the CLI, the API). Same overlap guard as the
-- claim: a second run for a credential that is already syncing fails with unique_violation on
-- kiotviet_sync_logs_one_running, which the HTTP layer answers with 409.
create or replace function public.kiotviet_start_run(
  p_credential_id uuid, p_sync_type text, p_trigger text default 'manual', p_worker text default null,
  p_lease_seconds integer default 120, p_options jsonb default '{}'::jsonb
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  active boolean;
  running uuid;
  rid uuid;
begin
  select c.is_active into active from public.kiotviet_credentials c where c.id = p_credential_id;
  if not found then
    raise exception 'credential % does not exist', p_credential_id using errcode = 'P0002';
  end if;
  if not coalesce(active, false) then
    raise exception 'credential % is not active', p_credential_id using errcode = '55000',
      hint = 'Save the KiotViet connection again, or sync with the active credential.';
  end if;
  if p_sync_type not in ('categories', 'products', 'inventory', 'products_full', 'attributes', 'all') then
    raise exception 'syncType must be one of categories, products, inventory, products_full, attributes, all'
      using errcode = '22023';
  end if;
  begin
    insert into public.kiotviet_sync_logs
      (sync_type, status, trigger, credential_id, worker, lease_expires_at, heartbeat_at, started_at, options)
    values (p_sync_type, 'running', p_trigger, p_credential_id, p_worker,
            now() + make_interval(secs => p_lease_seconds), now(), now(), coalesce(p_options, '{}'::jsonb))
    returning id into rid;
  exception when unique_violation then
    select l.id into running from public.kiotviet_sync_logs l
     where l.credential_id = p_credential_id and l.status = 'running';
    raise exception 'credential % is already syncing (run %)', p_credential_id, running
      using errcode = '23505', constraint = 'kiotviet_sync_logs_one_running';
  end;
  return rid;
end $$;

-- Extends a running run's lease and publishes its progress. False when the run is no longer running (it
-- finished, or was rescued after its lease expired): the worker must stop writing. The lease goes to
-- whoever beats for the run: with fan-out, a claimed run is carried out by another replica than the one
-- that claimed it. What keeps the run exclusive is the claim (one running row per credential).
create or replace function public.kiotviet_heartbeat(
  p_run_id uuid, p_worker text, p_progress jsonb default null, p_lease_seconds integer default 120
) returns boolean
language sql volatile security definer set search_path = '' as $$
  with hb as (
    update public.kiotviet_sync_logs
       set heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           progress = coalesce(p_progress, progress), worker = coalesce(p_worker, worker)
     where id = p_run_id and status = 'running'
    returning 1
  )
  select exists (select from hb)
$$;

-- A page may only be written by a run that still holds its lease: a worker that was declared dead and
-- rescued must not keep writing behind the next run's back.
create or replace function public.kiotviet_assert_running(p_run_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  -- FOR SHARE: a rescue or finish of this run waits for the page's commit, so no page lands after its
  -- run was declared dead.
  perform from public.kiotviet_sync_logs where id = p_run_id and status = 'running' for share;
  if not found then
    raise exception 'run % is not running (finished, or rescued after its lease expired)', p_run_id
      using errcode = '55000';
  end if;
end $$;

-- Moves a stream's cursor forward, never back, in the transaction of the page that earned it.
create or replace function public.kiotviet_advance_cursor(p_credential_id uuid, p_stream text, p_cursor timestamptz)
returns void language sql volatile security definer set search_path = '' as $$
  insert into public.kiotviet_sync_state as s (credential_id, stream, cursor, updated_at)
  select p_credential_id, p_stream, p_cursor, now() where p_cursor is not null
  on conflict (credential_id, stream) do update
    set cursor = greatest(s.cursor, excluded.cursor), updated_at = now()
    where s.cursor is distinct from greatest(s.cursor, excluded.cursor)
$$;

create or replace function public.kiotviet_get_state(p_credential_id uuid)
returns table (stream text, cursor timestamptz, last_full_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select s.stream, s.cursor, s.last_full_at from public.kiotviet_sync_state s where s.credential_id = p_credential_id
$$;

------------------------------------------------------------------------------------------------------------
-- Categories page: upsert what changed, delete removed ids, link parents that are here now, recompute
-- levels, refresh the denormalised names and paths of products_full, advance the cursor. A category whose
-- parent has not arrived yet is kept with kiotviet_parent_id and linked when the parent comes.
create or replace function public.kiotviet_apply_categories(
  p_run_id uuid, p_credential_id uuid, p_rows jsonb, p_removed_ids bigint[], p_cursor timestamptz,
  p_full boolean default false
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  n_up integer := 0;
  n_del integer := 0;
  n_fix integer := 0;
begin
  perform public.kiotviet_assert_running(p_run_id);
  if coalesce(cardinality(p_removed_ids), 0) > 0 then
    delete from public.kiotviet_categories where id = any (p_removed_ids);
    get diagnostics n_del = row_count;
  end if;

  with src as (
    select distinct on (r.id) r.*
      from jsonb_to_recordset(coalesce(p_rows, '[]'::jsonb)) as r(id bigint, category_name text,
           kiotviet_parent_id bigint, retailer_id bigint, has_child boolean, modified_date timestamptz,
           created_date timestamptz)
     where r.id is not null
     order by r.id
  )
  insert into public.kiotviet_categories as t
    (id, category_name, kiotviet_parent_id, retailer_id, has_child, modified_date, created_date, credential_id, synced_at)
  select id, coalesce(category_name, ''), nullif(kiotviet_parent_id, 0), retailer_id, coalesce(has_child, false),
         modified_date, created_date, p_credential_id, now()
    from src
  on conflict (id) do update set
    category_name = excluded.category_name, kiotviet_parent_id = excluded.kiotviet_parent_id,
    retailer_id = excluded.retailer_id, has_child = excluded.has_child, modified_date = excluded.modified_date,
    created_date = excluded.created_date, credential_id = excluded.credential_id, synced_at = excluded.synced_at
  where (t.category_name, t.kiotviet_parent_id, t.retailer_id, t.has_child, t.modified_date, t.created_date, t.credential_id)
        is distinct from
        (excluded.category_name, excluded.kiotviet_parent_id, excluded.retailer_id, excluded.has_child,
         excluded.modified_date, excluded.created_date, excluded.credential_id);
  get diagnostics n_up = row_count;

  if p_full then
    insert into public.kiotviet_sync_seen (run_id, stream, id)
    select p_run_id, 'categories', (e ->> 'id')::bigint from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) e
    on conflict do nothing;
  end if;

  if n_up + n_del > 0 then
    n_fix := public.kiotviet_relink_categories();
  end if;
  perform public.kiotviet_advance_cursor(p_credential_id, 'categories', p_cursor);
  return jsonb_build_object('written', n_up + n_fix, 'deleted', n_del);
end $$;

-- After categories change: parents that have arrived are linked, levels follow the tree, products whose
-- category arrived late get it, and products_full's category name and path follow renames and moves.
-- Only rows whose value really changes are written.
create or replace function public.kiotviet_relink_categories() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer := 0;
  m integer;
begin
  update public.kiotviet_categories c
     set parent_id = p.id
    from public.kiotviet_categories p
   where p.id = c.kiotviet_parent_id and c.parent_id is distinct from p.id;
  get diagnostics m = row_count; n := n + m;
  update public.kiotviet_categories c set parent_id = null
   where c.parent_id is not null
     and not exists (select from public.kiotviet_categories p where p.id = c.kiotviet_parent_id);
  get diagnostics m = row_count; n := n + m;
  update public.kiotviet_categories c set level = v.level
    from public.kiotviet_category_paths v
   where v.id = c.id and c.level is distinct from v.level;
  get diagnostics m = row_count; n := n + m;
  update public.kiotviet_products p set category_id = p.kiotviet_category_id
   where p.category_id is null and p.kiotviet_category_id is not null
     and exists (select from public.kiotviet_categories c where c.id = p.kiotviet_category_id);
  get diagnostics m = row_count; n := n + m;
  update public.kiotviet_products_full f
     set category_name = v.category_name, category_path = v.path
    from public.kiotviet_category_paths v
   where f.category_id = v.id
     and (f.category_name, f.category_path) is distinct from (v.category_name, v.path);
  get diagnostics m = row_count; n := n + m;
  return n;
end $$;

------------------------------------------------------------------------------------------------------------
-- Products page (from /products?includeInventory=true): one fetch feeds kiotviet_products_full,
-- kiotviet_products and kiotviet_inventory in one transaction. p_rows are products_full-shaped objects
-- (snake_case column names; inventory_by_branch as the ERP reads it). Only rows whose values changed are
-- written, so an unchanged catalogue writes nothing and fires no realtime event. A product code reused by
-- a new product (KiotViet frees a deleted product's code) displaces the stale row instead of failing the
-- page; an unknown category leaves category_id empty in the legacy table until the category arrives.
create or replace function public.kiotviet_apply_products(
  p_run_id uuid, p_credential_id uuid, p_rows jsonb, p_removed_ids bigint[], p_cursor timestamptz,
  p_full boolean default false
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  n_full integer := 0;
  n_legacy integer := 0;
  n_inv integer := 0;
  n_del integer := 0;
  m integer;
  page_ids bigint[];
  page_codes text[];
begin
  perform public.kiotviet_assert_running(p_run_id);
  -- A page's commit need not wait for its WAL flush: the page and the cursor it earns commit together, so
  -- a crash can only lose a tail of pages with their cursor, which the next run reads again; and the
  -- run's finish (a normal commit) flushes every page before it.
  perform set_config('synchronous_commit', 'off', true);
  if coalesce(cardinality(p_removed_ids), 0) > 0 then
    delete from public.kiotviet_products_full where id = any (p_removed_ids);
    get diagnostics n_del = row_count;
    delete from public.kiotviet_products where id = any (p_removed_ids);  -- inventory rows cascade
    get diagnostics m = row_count; n_del := greatest(n_del, m);
  end if;

  -- The page's rows, shaped once and read by every statement below. The table lives as long as the
  -- session and empties itself at each commit: created once per connection, not once per page, so the
  -- plans of the statements below stay cached across pages.
  if to_regclass('pg_temp.kiotviet_page') is null then
    create temporary table kiotviet_page (like public.kiotviet_products_full including defaults) on commit delete rows;
  end if;
  delete from kiotviet_page;  -- empty already unless an earlier page ran in this transaction; no TRUNCATE (new file, replans)
  insert into kiotviet_page (id, code, name, barcode, full_name, description, order_template, category_id,
    category_name, category_path, trademark_id, trademark_name, base_price, total_on_hand, total_reserved,
    total_available, weight, min_stock, max_stock, has_variants, allow_sale, is_active, product_type,
    is_reward_point, is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images, attributes,
    units, price_books, product_formulas, product_serials, product_batch_expires, product_shelves,
    credential_id, modified_date)
  select distinct on (r.id) r.id, r.code, coalesce(r.name, ''), r.barcode, r.full_name, r.description, r.order_template,
    r.category_id, coalesce(v.category_name, r.category_name), coalesce(v.path, r.category_name),
    r.trademark_id, r.trademark_name, coalesce(r.base_price, 0),
    coalesce(inv.on_hand, 0), coalesce(inv.reserved, 0), coalesce(inv.available, 0),
    coalesce(r.weight, 0), coalesce(r.min_stock, 0), coalesce(r.max_stock, 999999999),
    coalesce(r.has_variants, false), coalesce(r.allow_sale, true), coalesce(r.is_active, true), coalesce(r.product_type, 2),
    coalesce(r.is_reward_point, true), coalesce(r.is_lot_serial_control, false), coalesce(r.is_batch_expire_control, false),
    coalesce(r.inventory_by_branch, '[]'), coalesce(r.images, '[]'), coalesce(r.attributes, '[]'), coalesce(r.units, '[]'),
    coalesce(r.price_books, '[]'), coalesce(r.product_formulas, '[]'), coalesce(r.product_serials, '[]'),
    coalesce(r.product_batch_expires, '[]'), coalesce(r.product_shelves, '[]'), p_credential_id, r.modified_date
  from jsonb_to_recordset(coalesce(p_rows, '[]'::jsonb)) as r(id bigint, code text, name text, barcode text,
    full_name text, description text, order_template text, category_id bigint, category_name text,
    trademark_id bigint, trademark_name text, base_price numeric, weight numeric, min_stock numeric,
    max_stock numeric, has_variants boolean, allow_sale boolean, is_active boolean, product_type integer,
    is_reward_point boolean, is_lot_serial_control boolean, is_batch_expire_control boolean,
    inventory_by_branch jsonb, images jsonb, attributes jsonb, units jsonb, price_books jsonb,
    product_formulas jsonb, product_serials jsonb, product_batch_expires jsonb, product_shelves jsonb,
    modified_date timestamptz)
  left join public.kiotviet_category_paths v on v.id = r.category_id
  left join lateral (
    select sum((b ->> 'on_hand')::numeric) as on_hand, sum((b ->> 'reserved')::numeric) as reserved,
           sum((b ->> 'available')::numeric) as available
      from jsonb_array_elements(coalesce(r.inventory_by_branch, '[]')) b
  ) inv on true
  where r.id is not null and r.code is not null
  order by r.id, r.modified_date desc nulls last;

  -- The page's ids and codes as arrays: "= any (array)" is planned as index lookups whatever the
  -- planner believes of the page table (never analyzed) and of a table growing under a first sync.
  select array_agg(id), array_agg(code) into page_ids, page_codes from kiotviet_page;

  -- a code now used by another product: the old holder is gone from KiotViet
  delete from public.kiotviet_products_full f where f.code = any (page_codes) and not f.id = any (page_ids);
  get diagnostics m = row_count; n_del := n_del + m;
  delete from public.kiotviet_products f where f.code = any (page_codes) and not f.id = any (page_ids);
  -- codes moving between products of this very page (two products swapping codes): park the current
  -- holders' codes first, since the unique code is checked row by row during the upsert
  update public.kiotviet_products_full f set code = 'kvsync-parked-' || f.id
    from kiotviet_page p where p.id = f.id and f.code <> p.code and f.code = any (page_codes);
  update public.kiotviet_products f set code = 'kvsync-parked-' || f.id
    from kiotviet_page p where p.id = f.id and f.code <> p.code and f.code = any (page_codes);

  insert into public.kiotviet_products_full as t (id, code, name, barcode, full_name, description, order_template,
    category_id, category_name, category_path, trademark_id, trademark_name, base_price, total_on_hand,
    total_reserved, total_available, weight, min_stock, max_stock, has_variants, allow_sale, is_active,
    product_type, is_reward_point, is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images,
    attributes, units, price_books, product_formulas, product_serials, product_batch_expires, product_shelves,
    credential_id, modified_date, synced_at)
  select id, code, name, barcode, full_name, description, order_template, category_id, category_name,
    category_path, trademark_id, trademark_name, base_price, total_on_hand, total_reserved, total_available,
    weight, min_stock, max_stock, has_variants, allow_sale, is_active, product_type, is_reward_point,
    is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images, attributes, units, price_books,
    product_formulas, product_serials, product_batch_expires, product_shelves, credential_id, modified_date, now()
  from kiotviet_page
  on conflict (id) do update set
    code = excluded.code, name = excluded.name, barcode = excluded.barcode, full_name = excluded.full_name,
    description = excluded.description, order_template = excluded.order_template,
    category_id = excluded.category_id, category_name = excluded.category_name,
    category_path = excluded.category_path, trademark_id = excluded.trademark_id,
    trademark_name = excluded.trademark_name, base_price = excluded.base_price,
    total_on_hand = excluded.total_on_hand, total_reserved = excluded.total_reserved,
    total_available = excluded.total_available, weight = excluded.weight, min_stock = excluded.min_stock,
    max_stock = excluded.max_stock, has_variants = excluded.has_variants, allow_sale = excluded.allow_sale,
    is_active = excluded.is_active, product_type = excluded.product_type,
    is_reward_point = excluded.is_reward_point, is_lot_serial_control = excluded.is_lot_serial_control,
    is_batch_expire_control = excluded.is_batch_expire_control,
    inventory_by_branch = excluded.inventory_by_branch, images = excluded.images,
    attributes = excluded.attributes, units = excluded.units, price_books = excluded.price_books,
    product_formulas = excluded.product_formulas, product_serials = excluded.product_serials,
    product_batch_expires = excluded.product_batch_expires, product_shelves = excluded.product_shelves,
    credential_id = excluded.credential_id, modified_date = excluded.modified_date, synced_at = excluded.synced_at
  where (t.code, t.name, t.barcode, t.full_name, t.description, t.order_template, t.category_id, t.category_name,
         t.category_path, t.trademark_id, t.trademark_name, t.base_price, t.total_on_hand, t.total_reserved,
         t.total_available, t.weight, t.min_stock, t.max_stock, t.has_variants, t.allow_sale, t.is_active,
         t.product_type, t.is_reward_point, t.is_lot_serial_control, t.is_batch_expire_control,
         t.inventory_by_branch, t.images, t.attributes, t.units, t.price_books, t.product_formulas,
         t.product_serials, t.product_batch_expires, t.product_shelves, t.credential_id, t.modified_date)
        is distinct from
        (excluded.code, excluded.name, excluded.barcode, excluded.full_name, excluded.description,
         excluded.order_template, excluded.category_id, excluded.category_name, excluded.category_path,
         excluded.trademark_id, excluded.trademark_name, excluded.base_price, excluded.total_on_hand,
         excluded.total_reserved, excluded.total_available, excluded.weight, excluded.min_stock,
         excluded.max_stock, excluded.has_variants, excluded.allow_sale, excluded.is_active,
         excluded.product_type, excluded.is_reward_point, excluded.is_lot_serial_control,
         excluded.is_batch_expire_control, excluded.inventory_by_branch, excluded.images, excluded.attributes,
         excluded.units, excluded.price_books, excluded.product_formulas, excluded.product_serials,
         excluded.product_batch_expires, excluded.product_shelves, excluded.credential_id, excluded.modified_date);
  get diagnostics n_full = row_count;

  insert into public.kiotviet_products as t (id, code, barcode, name, category_id, kiotviet_category_id,
    full_name, description, base_price, has_variants, allow_sale, is_active, images, attributes, units,
    product_type, credential_id, modified_date, synced_at)
  select p.id, p.code, p.barcode, p.name, c.id, p.category_id, p.full_name, p.description, p.base_price,
    p.has_variants, p.allow_sale, p.is_active, p.images, p.attributes, p.units, p.product_type,
    p.credential_id, p.modified_date, now()
  from kiotviet_page p left join public.kiotviet_categories c on c.id = p.category_id
  on conflict (id) do update set
    code = excluded.code, barcode = excluded.barcode, name = excluded.name, category_id = excluded.category_id,
    kiotviet_category_id = excluded.kiotviet_category_id, full_name = excluded.full_name,
    description = excluded.description, base_price = excluded.base_price, has_variants = excluded.has_variants,
    allow_sale = excluded.allow_sale, is_active = excluded.is_active, images = excluded.images,
    attributes = excluded.attributes, units = excluded.units, product_type = excluded.product_type,
    credential_id = excluded.credential_id, modified_date = excluded.modified_date, synced_at = excluded.synced_at
  where (t.code, t.barcode, t.name, t.category_id, t.kiotviet_category_id, t.full_name, t.description,
         t.base_price, t.has_variants, t.allow_sale, t.is_active, t.images, t.attributes, t.units,
         t.product_type, t.credential_id, t.modified_date)
        is distinct from
        (excluded.code, excluded.barcode, excluded.name, excluded.category_id, excluded.kiotviet_category_id,
         excluded.full_name, excluded.description, excluded.base_price::numeric(15, 2), excluded.has_variants,
         excluded.allow_sale, excluded.is_active, excluded.images, excluded.attributes, excluded.units,
         excluded.product_type, excluded.credential_id, excluded.modified_date);
  get diagnostics n_legacy = row_count;

  -- per-branch stock rows; branches a product no longer lists are removed
  with inv as (
    select p.id as product_id, (b ->> 'branch_id')::bigint as branch_id, b ->> 'branch_name' as branch_name,
           coalesce((b ->> 'on_hand')::numeric, 0) as on_hand, coalesce((b ->> 'reserved')::numeric, 0) as reserved,
           coalesce((b ->> 'available')::numeric, 0) as available
      from kiotviet_page p cross join lateral jsonb_array_elements(p.inventory_by_branch) b
     where b ? 'branch_id'
  ), gone as (
    delete from public.kiotviet_inventory i
     where i.product_id = any (page_ids)
       and not exists (select from inv where inv.product_id = i.product_id and inv.branch_id = i.branch_id)
    returning 1
  ), up as (
    insert into public.kiotviet_inventory as t (product_id, branch_id, branch_name, on_hand, reserved, available, credential_id, synced_at)
    select distinct on (product_id, branch_id) product_id, branch_id, branch_name, on_hand, reserved, available, p_credential_id, now()
      from inv order by product_id, branch_id
    on conflict (product_id, branch_id) do update set
      branch_name = excluded.branch_name, on_hand = excluded.on_hand, reserved = excluded.reserved,
      available = excluded.available, credential_id = excluded.credential_id, synced_at = excluded.synced_at
    where (t.branch_name, t.on_hand, t.reserved, t.available, t.credential_id)
          is distinct from (excluded.branch_name, excluded.on_hand::numeric(15, 3), excluded.reserved::numeric(15, 3),
                            excluded.available::numeric(15, 3), excluded.credential_id)
    returning 1
  )
  select (select count(*) from up) + (select count(*) from gone) into n_inv;

  if p_full then
    insert into public.kiotviet_sync_seen (run_id, stream, id)
    select p_run_id, 'products', id from kiotviet_page on conflict do nothing;
  end if;
  perform public.kiotviet_advance_cursor(p_credential_id, 'products', p_cursor);
  return jsonb_build_object('written', n_full, 'products', n_legacy, 'inventory', n_inv, 'deleted', n_del);
end $$;

------------------------------------------------------------------------------------------------------------
-- Stock page (from /productOnHands, read in full every time because stock movements do not bump a
-- product's modifiedDate). Merges on_hand / reserved per branch into kiotviet_inventory and
-- products_full.inventory_by_branch (keeping location, min and max), and the totals. p_rows:
-- [{product_id, branches: [{branch_id, on_hand, reserved}]}]. Products not (yet) synced are skipped.
create or replace function public.kiotviet_apply_stock(p_run_id uuid, p_credential_id uuid, p_rows jsonb)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  n_inv integer := 0;
  n_full integer := 0;
  known bigint[];
begin
  perform public.kiotviet_assert_running(p_run_id);
  perform set_config('synchronous_commit', 'off', true);  -- as in kiotviet_apply_products
  if to_regclass('pg_temp.kiotviet_stock_page') is null then  -- per session, as kiotviet_page above
    create temporary table kiotviet_stock_page (product_id bigint, branch_id bigint, on_hand numeric,
      reserved numeric) on commit delete rows;
  end if;
  delete from kiotviet_stock_page;
  insert into kiotviet_stock_page
  select distinct on ((r ->> 'product_id')::bigint, (b ->> 'branch_id')::bigint)
         (r ->> 'product_id')::bigint, (b ->> 'branch_id')::bigint,
         coalesce((b ->> 'on_hand')::numeric, 0), coalesce((b ->> 'reserved')::numeric, 0)
    from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r
    cross join lateral jsonb_array_elements(coalesce(r -> 'branches', '[]'::jsonb)) b
   where (r ->> 'product_id') is not null and (b ->> 'branch_id') is not null
   order by 1, 2;
  -- the page's products that are here, as an array: index lookups, as in kiotviet_apply_products
  select array_agg(p.id) into known from public.kiotviet_products p
   where p.id = any (array(select distinct product_id from kiotviet_stock_page));

  insert into public.kiotviet_inventory as t (product_id, branch_id, branch_name, on_hand, reserved, available, credential_id, synced_at)
  select s.product_id, s.branch_id, br.branch_name, s.on_hand, s.reserved, s.on_hand - s.reserved, p_credential_id, now()
    from kiotviet_stock_page s
    left join public.kiotviet_branches br on br.id = s.branch_id
   where s.product_id = any (known)
  on conflict (product_id, branch_id) do update set
    on_hand = excluded.on_hand, reserved = excluded.reserved, available = excluded.available,
    branch_name = coalesce(excluded.branch_name, t.branch_name), synced_at = excluded.synced_at
  where (t.on_hand, t.reserved, t.available) is distinct from
        (excluded.on_hand::numeric(15, 3), excluded.reserved::numeric(15, 3), excluded.available::numeric(15, 3));
  get diagnostics n_inv = row_count;

  with merged as (
    select f.id,
           (select coalesce(jsonb_agg(
                     case when s.branch_id is null then e
                          else e || jsonb_build_object('on_hand', s.on_hand, 'reserved', s.reserved,
                                                       'available', s.on_hand - s.reserved) end
                     order by ord), '[]'::jsonb)
              from jsonb_array_elements(f.inventory_by_branch) with ordinality as x(e, ord)
              left join kiotviet_stock_page s on s.product_id = f.id and s.branch_id = (e ->> 'branch_id')::bigint)
           ||
           (select coalesce(jsonb_agg(jsonb_build_object('branch_id', s.branch_id, 'branch_name', br.branch_name,
                     'on_hand', s.on_hand, 'reserved', s.reserved, 'available', s.on_hand - s.reserved,
                     'min_quality', null, 'max_quality', null, 'location', null) order by s.branch_id), '[]'::jsonb)
              from kiotviet_stock_page s left join public.kiotviet_branches br on br.id = s.branch_id
             where s.product_id = f.id
               and not exists (select from jsonb_array_elements(f.inventory_by_branch) e
                                where (e ->> 'branch_id')::bigint = s.branch_id)) as inv
      from public.kiotviet_products_full f
     where f.id = any (known)
  )
  update public.kiotviet_products_full f
     set inventory_by_branch = m.inv,
         total_on_hand = (select coalesce(sum((b ->> 'on_hand')::numeric), 0) from jsonb_array_elements(m.inv) b),
         total_reserved = (select coalesce(sum((b ->> 'reserved')::numeric), 0) from jsonb_array_elements(m.inv) b),
         total_available = (select coalesce(sum((b ->> 'available')::numeric), 0) from jsonb_array_elements(m.inv) b)
    from merged m
   where f.id = m.id and f.inventory_by_branch is distinct from m.inv;
  get diagnostics n_full = row_count;
  return jsonb_build_object('written', n_full, 'inventory', n_inv, 'deleted', 0);
end $$;

-- Branches (small, read in full): names for stock rows.
create or replace function public.kiotviet_apply_branches(p_run_id uuid, p_credential_id uuid, p_rows jsonb)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare n integer;
begin
  perform public.kiotviet_assert_running(p_run_id);
  insert into public.kiotviet_branches as t (id, branch_name, address, is_active, credential_id, modified_date, synced_at)
  select r.id, coalesce(r.branch_name, ''), r.address, coalesce(r.is_active, true), p_credential_id, r.modified_date, now()
    from jsonb_to_recordset(coalesce(p_rows, '[]'::jsonb)) as r(id bigint, branch_name text, address text,
         is_active boolean, modified_date timestamptz)
   where r.id is not null
  on conflict (id) do update set branch_name = excluded.branch_name, address = excluded.address,
    is_active = excluded.is_active, credential_id = excluded.credential_id, modified_date = excluded.modified_date,
    synced_at = excluded.synced_at
  where (t.branch_name, t.address, t.is_active, t.credential_id, t.modified_date)
        is distinct from (excluded.branch_name, excluded.address, excluded.is_active, excluded.credential_id, excluded.modified_date);
  get diagnostics n = row_count;
  return jsonb_build_object('written', n, 'deleted', 0);
end $$;

-- Attributes (from /attributes/allwithdistinctvalue, one call, always whole): upsert what changed and
-- delete what KiotViet no longer has. attribute_values is the array of {value, attributeId} the ERP reads.
create or replace function public.kiotviet_apply_attributes(p_run_id uuid, p_credential_id uuid, p_rows jsonb)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
  d integer;
begin
  perform public.kiotviet_assert_running(p_run_id);
  insert into public.kiotviet_attributes as t (id, name, attribute_values, credential_id, synced_at)
  select distinct on (r.id) r.id, coalesce(r.name, ''), coalesce(r.attribute_values, '[]'), p_credential_id, now()
    from jsonb_to_recordset(coalesce(p_rows, '[]'::jsonb)) as r(id bigint, name text, attribute_values jsonb)
   where r.id is not null
   order by r.id
  on conflict (id) do update set name = excluded.name, attribute_values = excluded.attribute_values,
    credential_id = excluded.credential_id, synced_at = excluded.synced_at
  where (t.name, t.attribute_values, t.credential_id) is distinct from (excluded.name, excluded.attribute_values, excluded.credential_id);
  get diagnostics n = row_count;
  d := 0;
  -- An empty reply is more likely a fault than a shop that dropped every attribute: keep what is here.
  if jsonb_array_length(coalesce(p_rows, '[]'::jsonb)) > 0 then
    delete from public.kiotviet_attributes a
     where not exists (select from jsonb_array_elements(p_rows) e where (e ->> 'id')::bigint = a.id);
    get diagnostics d = row_count;
  end if;
  return jsonb_build_object('written', n, 'deleted', d);
end $$;

-- After a complete full pass of a stream: delete every row KiotViet did not return, record the
-- reconcile time, and drop the scratch ids. p_total is the count KiotViet reported on the last page; a
-- pass that saw fewer ids than that missed some (page drift), so nothing is deleted and the caller is told.
create or replace function public.kiotviet_sweep(p_run_id uuid, p_credential_id uuid, p_stream text, p_total integer)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  seen integer;
  n integer := 0;
  m integer;
begin
  perform public.kiotviet_assert_running(p_run_id);
  select count(*) into seen from public.kiotviet_sync_seen where run_id = p_run_id and stream = p_stream;
  if seen < coalesce(p_total, 0) then
    delete from public.kiotviet_sync_seen where run_id = p_run_id and stream = p_stream;
    return jsonb_build_object('deleted', 0, 'swept', false, 'seen', seen, 'total', p_total);
  end if;
  if p_stream = 'categories' then
    delete from public.kiotviet_categories c
     where not exists (select from public.kiotviet_sync_seen s where s.run_id = p_run_id and s.stream = p_stream and s.id = c.id);
    get diagnostics n = row_count;
    if n > 0 then perform public.kiotviet_relink_categories(); end if;
  elsif p_stream = 'products' then
    delete from public.kiotviet_products_full f
     where not exists (select from public.kiotviet_sync_seen s where s.run_id = p_run_id and s.stream = p_stream and s.id = f.id);
    get diagnostics n = row_count;
    delete from public.kiotviet_products f
     where not exists (select from public.kiotviet_sync_seen s where s.run_id = p_run_id and s.stream = p_stream and s.id = f.id);
    get diagnostics m = row_count; n := greatest(n, m);
  else
    raise exception 'kiotviet_sweep: unknown stream %', p_stream using errcode = '22023';
  end if;
  delete from public.kiotviet_sync_seen where run_id = p_run_id and stream = p_stream;
  insert into public.kiotviet_sync_state as s (credential_id, stream, last_full_at, updated_at)
  values (p_credential_id, p_stream, now(), now())
  on conflict (credential_id, stream) do update set last_full_at = now(), updated_at = now();
  return jsonb_build_object('deleted', n, 'swept', true, 'seen', seen, 'total', p_total);
end $$;

------------------------------------------------------------------------------------------------------------
-- Ends a run: the log row gets its final status, counts and error, and a scheduled run's schedule moves
-- on (kiotviet_schedule_after_run). Returns the schedule's next run, if any. A run that is no longer
-- running (rescued after its lease) cannot be finished twice.
create or replace function public.kiotviet_finish_run(
  p_run_id uuid, p_status text, p_records integer default 0, p_stats jsonb default '{}'::jsonb,
  p_api_calls integer default 0, p_error text default null
) returns timestamptz
language plpgsql volatile security definer set search_path = '' as $$
declare
  l public.kiotviet_sync_logs;
begin
  if p_status not in ('success', 'partial', 'failed', 'skipped') then
    raise exception 'kiotviet_finish_run: status must be success, partial, failed or skipped, not %', p_status
      using errcode = '22023';
  end if;
  -- Lock order: the schedule before its run row, as kiotviet_claim_due takes them (it locks schedules,
  -- then its insert waits for whoever is updating a running row of the same credential). Updating the
  -- run row first and then waiting for the schedule deadlocked with a concurrent claim (40P01, seen
  -- with 8 dispatchers in internal/testdb/claim_test.go), failing either the claim or this finish.
  perform from public.kiotviet_sync_schedules s
   where s.id = (select x.schedule_id from public.kiotviet_sync_logs x
                  where x.id = p_run_id and x.status = 'running' and x.trigger = 'cron')
     for update of s;
  update public.kiotviet_sync_logs
     set status = p_status, records_synced = coalesce(p_records, 0), stats = coalesce(p_stats, '{}'::jsonb),
         api_calls = coalesce(p_api_calls, 0), error_message = left(p_error, 2000), completed_at = now(),
         lease_expires_at = null
   where id = p_run_id and status = 'running'
  returning * into l;
  if not found then
    raise exception 'run % is not running (finished, or rescued after its lease expired)', p_run_id
      using errcode = '55000';
  end if;
  delete from public.kiotviet_sync_seen where run_id = p_run_id;
  if l.schedule_id is not null and l.trigger = 'cron' then
    return public.kiotviet_schedule_after_run(l.schedule_id, p_status, l.slot_at, p_error);
  end if;
  return null;
end $$;

-- Runs whose worker stopped heartbeating (killed, partitioned) are marked failed with the reason, and
-- their schedules back off as after any failure; what their pages committed stays, and so do the
-- cursors, so the next run continues where they stopped.
create or replace function public.kiotviet_rescue_expired()
returns table (run_id uuid, credential_id uuid, worker text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  r record;
begin
  -- Schedules first, then run rows: the lock order of kiotviet_claim_due and kiotviet_finish_run (see
  -- there), so a rescue never deadlocks with a claim.
  perform from public.kiotviet_sync_schedules s
   where s.id in (select x.schedule_id from public.kiotviet_sync_logs x
                   where x.status = 'running' and x.lease_expires_at < now() and x.trigger = 'cron')
   order by s.id
     for update of s;
  for r in
    update public.kiotviet_sync_logs l
       set status = 'failed', completed_at = now(),
           error_message = format('worker %s stopped heartbeating; lease expired at %s', coalesce(l.worker, '?'), l.lease_expires_at)
     where l.status = 'running' and l.lease_expires_at < now()
    returning l.id, l.credential_id, l.worker, l.schedule_id, l.trigger, l.slot_at, l.error_message
  loop
    delete from public.kiotviet_sync_seen s where s.run_id = r.id;
    if r.schedule_id is not null and r.trigger = 'cron' then
      perform public.kiotviet_schedule_after_run(r.schedule_id, 'failed', r.slot_at, r.error_message);
    end if;
    run_id := r.id; credential_id := r.credential_id; worker := r.worker;
    return next;
  end loop;
end $$;

------------------------------------------------------------------------------------------------------------
-- Credentials. Ciphertext in, ciphertext out: the key never enters the database.
create or replace function public.kiotviet_get_credential(p_id uuid)
returns table (id uuid, user_id uuid, retailer_name text, client_id text, encrypted_client_secret text,
               encrypted_token text, token_expires_at timestamptz, token_version bigint, is_active boolean)
language sql stable security definer set search_path = '' as $$
  select c.id, c.user_id, c.retailer_name, c.client_id, c.encrypted_client_secret, c.encrypted_token,
         c.token_expires_at, c.token_version, coalesce(c.is_active, false)
    from public.kiotviet_credentials c where c.id = p_id
$$;

create or replace function public.kiotviet_list_credentials()
returns table (id uuid, user_id uuid, retailer_name text, client_id text, is_active boolean,
               token_expires_at timestamptz, created_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select c.id, c.user_id, c.retailer_name, c.client_id, coalesce(c.is_active, false), c.token_expires_at, c.created_at
    from public.kiotviet_credentials c order by c.created_at desc
$$;

-- Stores a refreshed token only if nobody stored one since p_expected_version was read (compare and
-- swap): two processes refreshing at once never overwrite each other's newer token. Returns the new
-- version, or null when the swap lost (the caller re-reads and uses the winner's token).
create or replace function public.kiotviet_store_token(
  p_id uuid, p_encrypted_token text, p_expires_at timestamptz, p_expected_version bigint
) returns bigint
language sql volatile security definer set search_path = '' as $$
  update public.kiotviet_credentials
     set encrypted_token = p_encrypted_token, token_expires_at = p_expires_at, token_version = token_version + 1
   where id = p_id and token_version = p_expected_version
  returning token_version
$$;

-- Saves a connection checked live with KiotViet (save-kiotviet-token, `kvsync credentials add`): the new
-- row becomes the owner's active credential, the owner's older credentials are deactivated, and their
-- schedules move to the new one (one per sync type, the most recently changed) instead of running on
-- against a dead credential. Without an owner (CLI), older credentials of the same retailer are replaced.
create or replace function public.kiotviet_save_credential(
  p_id uuid, p_user_id uuid, p_retailer_name text, p_client_id text, p_encrypted_client_secret text,
  p_encrypted_token text, p_token_expires_at timestamptz
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  old_ids uuid[];
begin
  if coalesce(trim(p_retailer_name), '') = '' then
    raise exception 'retailerName is required' using errcode = '22023';
  end if;
  if coalesce(trim(p_client_id), '') = '' then
    raise exception 'clientId is required' using errcode = '22023';
  end if;
  select coalesce(array_agg(c.id), '{}') into old_ids
    from public.kiotviet_credentials c
   where c.id <> p_id and coalesce(c.is_active, false)
     and (c.user_id = p_user_id or (p_user_id is null and c.retailer_name = p_retailer_name));
  insert into public.kiotviet_credentials (id, user_id, retailer_name, client_id, encrypted_client_secret,
    encrypted_token, token_expires_at, is_active)
  values (p_id, p_user_id, trim(p_retailer_name), trim(p_client_id), p_encrypted_client_secret,
    p_encrypted_token, p_token_expires_at, true);
  update public.kiotviet_credentials set is_active = false where id = any (old_ids);
  update public.kiotviet_sync_schedules s set credential_id = p_id
    from (select distinct on (x.sync_type) x.id from public.kiotviet_sync_schedules x
           where x.credential_id = any (old_ids) order by x.sync_type, x.updated_at desc) pick
   where s.id = pick.id;
  return p_id;
end $$;

create or replace function public.kiotviet_deactivate_credential(p_id uuid) returns boolean
language sql volatile security definer set search_path = '' as $$
  with d as (update public.kiotviet_credentials set is_active = false where id = p_id returning 1)
  select exists (select from d)
$$;

-- Key rotation: replaces a credential's ciphertexts (re-encrypted under the newest key) unless the token
-- changed meanwhile (same version check as kiotviet_store_token).
create or replace function public.kiotviet_reencrypt_credential(
  p_id uuid, p_encrypted_client_secret text, p_encrypted_token text, p_expected_version bigint
) returns boolean
language sql volatile security definer set search_path = '' as $$
  with u as (
    update public.kiotviet_credentials
       set encrypted_client_secret = p_encrypted_client_secret, encrypted_token = p_encrypted_token,
           token_version = token_version + 1
     where id = p_id and token_version = p_expected_version
    returning 1
  )
  select exists (select from u)
$$;

-- Upserts a schedule (CLI, demo); the trigger computes next_run_at.
create or replace function public.kiotviet_upsert_schedule(
  p_credential_id uuid, p_sync_type text, p_frequency text, p_custom_interval_hours integer default null,
  p_enabled boolean default true, p_time_of_day time default null, p_timezone text default 'Asia/Ho_Chi_Minh'
) returns uuid
language sql volatile security definer set search_path = '' as $$
  insert into public.kiotviet_sync_schedules as s
    (credential_id, sync_type, frequency, custom_interval_hours, enabled, time_of_day, timezone)
  values (p_credential_id, p_sync_type, p_frequency, p_custom_interval_hours, p_enabled, p_time_of_day,
          coalesce(p_timezone, 'Asia/Ho_Chi_Minh'))
  on conflict (credential_id, sync_type) do update set frequency = excluded.frequency,
    custom_interval_hours = excluded.custom_interval_hours, enabled = excluded.enabled,
    time_of_day = excluded.time_of_day, timezone = excluded.timezone
  returning s.id
$$;

------------------------------------------------------------------------------------------------------------
-- Only the service role calls these (the Go code, with the service key or a direct connection).
do $$
declare f record;
begin
  for f in
    select p.oid::regprocedure as sig
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'public'
       and p.proname in ('kiotviet_schedule_after_run', 'kiotviet_claim_due', 'kiotviet_start_run',
         'kiotviet_heartbeat', 'kiotviet_assert_running', 'kiotviet_advance_cursor', 'kiotviet_get_state',
         'kiotviet_apply_categories', 'kiotviet_relink_categories', 'kiotviet_apply_products',
         'kiotviet_apply_stock', 'kiotviet_apply_branches', 'kiotviet_apply_attributes', 'kiotviet_sweep',
         'kiotviet_finish_run', 'kiotviet_rescue_expired', 'kiotviet_get_credential',
         'kiotviet_list_credentials', 'kiotviet_store_token', 'kiotviet_save_credential',
         'kiotviet_deactivate_credential', 'kiotviet_reencrypt_credential', 'kiotviet_upsert_schedule')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f.sig);
    execute format('grant execute on function %s to service_role', f.sig);
  end loop;
end $$;
revoke all on public.kiotviet_category_paths from anon, authenticated;
grant select on public.kiotviet_category_paths to service_role;
