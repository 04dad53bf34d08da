-- kiotviet_apply_products does no work for deactivated branches when the shop has none (issue: "the
-- writer keeps up"). Measured as backend CPU over a 10,000-product full sync, 12-15% of the function's
-- time went to two things that only matter when a branch is inactive:
--   * kiotviet_without_branches, called three times per row (serials, lots, shelves): an SQL function
--     with its own search_path is never inlined, so each call is a function call through the SQL
--     executor, ~30,000 per 10,000 products, though it returns its argument when no branch is inactive;
--   * the stock per branch rebuilt element by element (jsonb_agg) only to drop inactive branches.
-- With no inactive branch both now keep the row's arrays as they came; with one, both run as before.
-- The totals are still summed here, from the array the row stores. Re-created from its newest definition
-- (20261202800000_lint_page_tables.sql) with only those expressions changed; `create or replace` keeps
-- its privileges.

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
  del_ids bigint[];
  inactive bigint[];
begin
  perform public.kiotviet_assert_running(p_run_id);
  -- A product whose code KiotViet renamed with "{DEL}" is a deleted one: it is removed like a removed
  -- id, never stored (two deleted products may carry the same renamed code, which would break the
  -- unique code and fail the page), and counts as seen by a full pass.
  select array_agg((e ->> 'id')::bigint) into del_ids
    from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) e
   where (e ->> 'id') is not null and right(e ->> 'code', 5) = '{DEL}';
  p_removed_ids := coalesce(p_removed_ids, '{}') || coalesce(del_ids, '{}');
  -- Stock of a deactivated branch is not shown (kiotviet_apply_branches removed it).
  select coalesce(array_agg(id), '{}') into inactive from public.kiotviet_branches where not is_active;
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
  perform 'PRAGMA:TABLE: kiotviet_page (like public.kiotviet_products_full)';  -- plpgsql_check
  delete from kiotviet_page;  -- empty already unless an earlier page ran in this transaction; no TRUNCATE (new file, replans)
  insert into kiotviet_page (id, code, name, barcode, full_name, description, order_template, category_id,
    category_name, category_path, trademark_id, trademark_name, master_code, master_product_id, master_unit_id,
    base_price, total_on_hand, total_reserved,
    total_available, weight, min_stock, max_stock, has_variants, allow_sale, is_active, product_type,
    is_reward_point, is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images, attributes,
    units, price_books, product_formulas, product_serials, product_batch_expires, product_shelves,
    credential_id, modified_date)
  select distinct on (r.id) r.id, r.code, coalesce(r.name, ''), r.barcode, r.full_name, r.description, r.order_template,
    r.category_id, coalesce(v.category_name, r.category_name), coalesce(v.path, r.category_name),
    r.trademark_id, r.trademark_name, r.master_code, nullif(r.master_product_id, 0), nullif(r.master_unit_id, 0),
    coalesce(r.base_price, 0),
    coalesce(inv.on_hand, 0), coalesce(inv.reserved, 0), coalesce(inv.available, 0),
    coalesce(r.weight, 0), coalesce(r.min_stock, 0), coalesce(r.max_stock, 999999999),
    coalesce(r.has_variants, false), coalesce(r.allow_sale, true), coalesce(r.is_active, true), coalesce(r.product_type, 2),
    coalesce(r.is_reward_point, true), coalesce(r.is_lot_serial_control, false), coalesce(r.is_batch_expire_control, false),
    case when cardinality(inactive) = 0 then coalesce(r.inventory_by_branch, '[]') else inv.branches end,
    coalesce(r.images, '[]'), coalesce(r.attributes, '[]'), coalesce(r.units, '[]'),
    coalesce(r.price_books, '[]'), coalesce(r.product_formulas, '[]'),
    case when cardinality(inactive) = 0 then coalesce(r.product_serials, '[]')
         else public.kiotviet_without_branches(coalesce(r.product_serials, '[]'), inactive) end,
    case when cardinality(inactive) = 0 then coalesce(r.product_batch_expires, '[]')
         else public.kiotviet_without_branches(coalesce(r.product_batch_expires, '[]'), inactive) end,
    case when cardinality(inactive) = 0 then coalesce(r.product_shelves, '[]')
         else public.kiotviet_without_branches(coalesce(r.product_shelves, '[]'), inactive) end, p_credential_id, r.modified_date
  from jsonb_to_recordset(coalesce(p_rows, '[]'::jsonb)) as r(id bigint, code text, name text, barcode text,
    full_name text, description text, order_template text, category_id bigint, category_name text,
    trademark_id bigint, trademark_name text, master_code text, master_product_id bigint, master_unit_id bigint,
    base_price numeric, weight numeric, min_stock numeric,
    max_stock numeric, has_variants boolean, allow_sale boolean, is_active boolean, product_type integer,
    is_reward_point boolean, is_lot_serial_control boolean, is_batch_expire_control boolean,
    inventory_by_branch jsonb, images jsonb, attributes jsonb, units jsonb, price_books jsonb,
    product_formulas jsonb, product_serials jsonb, product_batch_expires jsonb, product_shelves jsonb,
    modified_date timestamptz)
  left join public.kiotviet_category_paths v on v.id = r.category_id
  left join lateral (
    -- the array rebuilt only when a branch is inactive (above, the row's own array is kept otherwise)
    select coalesce(jsonb_agg(b order by o) filter (where cardinality(inactive) > 0), '[]') as branches,
           sum((b ->> 'on_hand')::numeric) as on_hand,
           sum((b ->> 'reserved')::numeric) as reserved, sum((b ->> 'available')::numeric) as available
      from jsonb_array_elements(coalesce(r.inventory_by_branch, '[]')) with ordinality as x(b, o)
     where cardinality(inactive) = 0 or not coalesce((b ->> 'branch_id')::bigint = any (inactive), false)
  ) inv on true
  where r.id is not null and r.code is not null and right(r.code, 5) <> '{DEL}'
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
    category_id, category_name, category_path, trademark_id, trademark_name, master_code, master_product_id,
    master_unit_id, base_price, total_on_hand,
    total_reserved, total_available, weight, min_stock, max_stock, has_variants, allow_sale, is_active,
    product_type, is_reward_point, is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images,
    attributes, units, price_books, product_formulas, product_serials, product_batch_expires, product_shelves,
    credential_id, modified_date, synced_at)
  select id, code, name, barcode, full_name, description, order_template, category_id, category_name,
    category_path, trademark_id, trademark_name, master_code, master_product_id, master_unit_id, base_price, total_on_hand, total_reserved, total_available,
    weight, min_stock, max_stock, has_variants, allow_sale, is_active, product_type, is_reward_point,
    is_lot_serial_control, is_batch_expire_control, inventory_by_branch, images, attributes, units, price_books,
    product_formulas, product_serials, product_batch_expires, product_shelves, credential_id, modified_date, now()
  from kiotviet_page
  on conflict (id) do update set
    code = excluded.code, name = excluded.name, barcode = excluded.barcode, full_name = excluded.full_name,
    description = excluded.description, order_template = excluded.order_template,
    category_id = excluded.category_id, category_name = excluded.category_name,
    category_path = excluded.category_path, trademark_id = excluded.trademark_id,
    trademark_name = excluded.trademark_name, master_code = excluded.master_code,
    master_product_id = excluded.master_product_id, master_unit_id = excluded.master_unit_id,
    base_price = excluded.base_price,
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
         t.category_path, t.trademark_id, t.trademark_name, t.master_code, t.master_product_id, t.master_unit_id,
         t.base_price, t.total_on_hand, t.total_reserved,
         t.total_available, t.weight, t.min_stock, t.max_stock, t.has_variants, t.allow_sale, t.is_active,
         t.product_type, t.is_reward_point, t.is_lot_serial_control, t.is_batch_expire_control,
         t.inventory_by_branch, t.images, t.attributes, t.units, t.price_books, t.product_formulas,
         t.product_serials, t.product_batch_expires, t.product_shelves, t.credential_id, t.modified_date)
        is distinct from
        (excluded.code, excluded.name, excluded.barcode, excluded.full_name, excluded.description,
         excluded.order_template, excluded.category_id, excluded.category_name, excluded.category_path,
         excluded.trademark_id, excluded.trademark_name, excluded.master_code, excluded.master_product_id,
         excluded.master_unit_id, excluded.base_price, excluded.total_on_hand,
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
    select p_run_id, 'products', id from kiotviet_page
    union all select p_run_id, 'products', unnest(del_ids)
    on conflict do nothing;
  end if;
  perform public.kiotviet_advance_cursor(p_credential_id, 'products', p_cursor);
  return jsonb_build_object('written', n_full, 'products', n_legacy, 'inventory', n_inv, 'deleted', n_del);
end $$;
