-- What KiotViet reports as gone never shows in the ERP (20261202400000_erp_columns.sql): a deactivated
-- branch (branch removedIds) keeps its row and name but loses its stock rows everywhere; a product whose
-- code was renamed with "{DEL}" is removed and never blocks a page; a category marked isDeleted is
-- removed; the master columns are stored.
begin;
select plan(20);
set local client_min_messages = warning;  -- the page functions' "temporary table already exists" notices

delete from public.kiotviet_credentials;
delete from public.kiotviet_products_full;
delete from public.kiotviet_products;
delete from public.kiotviet_categories;
delete from public.kiotviet_branches;
delete from public.kiotviet_sync_seen;

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c4000000-0000-0000-0000-000000000001', 'shopDel', 'clientDel', 'ct', true);
create temporary table run as
  select public.kiotviet_start_run('c4000000-0000-0000-0000-000000000001', 'all', 'manual', 'w-del') as id;

select public.kiotviet_apply_branches((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 1, "branch_name": "Trung tâm", "is_active": true}, {"id": 2, "branch_name": "Quận 1", "is_active": true}]');
select public.kiotviet_apply_products((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 10, "code": "A", "name": "a", "master_code": "SPC1", "master_product_id": 9,
     "inventory_by_branch": [{"branch_id": 1, "branch_name": "Trung tâm", "on_hand": 5, "reserved": 1, "available": 4},
                             {"branch_id": 2, "branch_name": "Quận 1", "on_hand": 7, "reserved": 0, "available": 7}],
     "product_serials": [{"serialNumber": "S1", "branchId": 1, "serial_number": "S1", "branch_id": 1},
                         {"serialNumber": "S2", "branchId": 2, "serial_number": "S2", "branch_id": 2}],
     "product_batch_expires": [{"batchName": "L2", "branchId": 2, "batch_code": "L2", "branch_id": 2}],
     "product_shelves": [{"branchId": 1, "ProductShelves": "A1", "shelf_name": "A1"}, {"branchId": 2, "ProductShelves": "B2", "shelf_name": "B2"}]}]',
  '{}', null);
select is((select total_on_hand from public.kiotviet_products_full where id = 10), 12::numeric,
          'before: the product holds the stock of both branches');
select is((select master_code || '/' || master_product_id from public.kiotviet_products_full where id = 10), 'SPC1/9',
          'products: masterCode and masterProductId are stored');

-- branch 2 is deactivated (it comes back in removedIds)
select is(public.kiotviet_apply_branches((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 1, "branch_name": "Trung tâm", "is_active": true}]', '{2}') ->> 'deleted', '1',
  'branches: a removed branch''s stock row is deleted');
select is((select branch_name || ':' || is_active from public.kiotviet_branches where id = 2), 'Quận 1:false',
          'branches: a removed branch keeps its row and name, inactive');
select is((select count(*)::int from public.kiotviet_inventory where branch_id = 2), 0,
          'branches: no stock row of the deactivated branch is left');
select is((select jsonb_path_query_array(inventory_by_branch, '$[*].branch_id') from public.kiotviet_products_full where id = 10),
          '[1]'::jsonb, 'branches: inventory_by_branch loses the deactivated branch');
select is((select total_on_hand::text || '/' || total_reserved || '/' || total_available from public.kiotviet_products_full where id = 10),
          '5/1/4', 'branches: the totals follow');
select is((select jsonb_path_query_array(product_serials, '$[*].serial_number') from public.kiotviet_products_full where id = 10),
          '["S1"]'::jsonb, 'branches: the deactivated branch''s serials go');
select is((select product_batch_expires from public.kiotviet_products_full where id = 10), '[]'::jsonb,
          'branches: ... and its lots');
select is((select jsonb_path_query_array(product_shelves, '$[*].shelf_name') from public.kiotviet_products_full where id = 10),
          '["A1"]'::jsonb, 'branches: ... and its shelves');
select is(public.kiotviet_apply_branches((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 1, "branch_name": "Trung tâm", "is_active": true}]', '{2}'),
  '{"written": 0, "inventory": 0, "deleted": 0}'::jsonb, 'branches: reading the same deactivation again changes nothing');

-- a later products page still listing the branch's stock does not bring it back
select public.kiotviet_apply_products((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 10, "code": "A", "name": "a",
     "inventory_by_branch": [{"branch_id": 1, "branch_name": "Trung tâm", "on_hand": 5, "reserved": 1, "available": 4},
                             {"branch_id": 2, "branch_name": "Quận 1", "on_hand": 8, "reserved": 0, "available": 8}]}]',
  '{}', null);
select is((select total_on_hand::text || ':' || jsonb_array_length(inventory_by_branch) from public.kiotviet_products_full where id = 10),
          '5:1', 'products: stock at a deactivated branch is left out');
select is((select count(*)::int from public.kiotviet_inventory where branch_id = 2), 0,
          'products: no stock row for a deactivated branch');
select public.kiotviet_apply_stock((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"product_id": 10, "branches": [{"branch_id": 1, "on_hand": 6, "reserved": 1}, {"branch_id": 2, "on_hand": 9, "reserved": 0}]}]');
select is((select total_on_hand::text || ':' || jsonb_array_length(inventory_by_branch) from public.kiotviet_products_full where id = 10),
          '6:1', 'stock: entries of a deactivated branch are skipped');

-- {DEL}: two deleted products carrying the same renamed code, next to a live one, on one page
select lives_ok($$select public.kiotviet_apply_products((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 10, "code": "A{DEL}", "name": "a"}, {"id": 11, "code": "B{DEL}", "name": "b"},
    {"id": 12, "code": "B{DEL}", "name": "b2"}, {"id": 13, "code": "C", "name": "c"}]', '{}', null, true)$$,
  'products: {DEL}-renamed codes, even repeated, do not fail the page');
select is(array(select code from public.kiotviet_products_full order by id), '{C}'::text[],
          'products: a {DEL}-renamed product is removed and never stored');
select is(array(select code from public.kiotviet_products order by id), '{C}'::text[],
          'products: ... in the legacy table too');
select is(array(select id from public.kiotviet_sync_seen where run_id = (select id from run) and stream = 'products' order by id),
          '{10,11,12,13}'::bigint[], 'products: a full pass counts the {DEL} rows as seen, so its sweep can run');

-- categories marked isDeleted
select public.kiotviet_apply_categories((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 100, "category_name": "Root"}, {"id": 101, "category_name": "Child", "kiotviet_parent_id": 100}]', '{}', null);
select is(public.kiotviet_apply_categories((select id from run), 'c4000000-0000-0000-0000-000000000001',
  '[{"id": 101, "category_name": "Child", "kiotviet_parent_id": 100, "is_deleted": true}]', '{}', null) ->> 'deleted', '1',
  'categories: an item marked is_deleted is deleted');
select is(array(select id from public.kiotviet_categories order by id), '{100}'::bigint[],
          'categories: only the live category is left');

select * from finish();
rollback;
