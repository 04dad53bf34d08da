-- The RPC functions the Go code calls (DESIGN.md §3, §5): claim, start, heartbeat, rescue, finish, the
-- page writers, the sweep, the credential functions, and who may execute them. Values relative to now()
-- (fixed in this transaction) are compared exactly.
begin;
select plan(106);
set local client_min_messages = warning;  -- the page functions' "temporary table already exists" notices

-- Only this file's rows: whatever another test committed is out of the way until the rollback.
delete from public.kiotviet_credentials;
delete from public.kiotviet_products_full;
delete from public.kiotviet_products;
delete from public.kiotviet_categories;
delete from public.kiotviet_branches;
delete from public.kiotviet_sync_seen;

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c2000000-0000-0000-0000-00000000000a', 'shopA', 'clientA', 'ct', true),
  ('c2000000-0000-0000-0000-00000000000b', 'shopB', 'clientB', 'ct', true),
  ('c2000000-0000-0000-0000-00000000000c', 'shopC', 'clientC', 'ct', true),
  ('c2000000-0000-0000-0000-00000000000d', 'shopD', 'clientD', 'ct', false),
  ('c2000000-0000-0000-0000-00000000000e', 'shopE', 'clientE', 'ct', true);

------------------------------------------------------------------------------------------------------------
-- Claim
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, next_run_at) values
  ('5a000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000a', 'products', 'daily', now() - interval '2 minutes'),
  ('5a000000-0000-0000-0000-000000000002', 'c2000000-0000-0000-0000-00000000000a', 'categories', 'daily', now() + interval '1 hour'),
  ('5b000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000b', 'products', 'hourly', now() - interval '1 minute'),
  ('5c000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000c', 'products', 'daily', now() - interval '5 minutes'),
  ('5c000000-0000-0000-0000-000000000002', 'c2000000-0000-0000-0000-00000000000c', 'categories', 'daily', now() - interval '4 minutes'),
  ('5c000000-0000-0000-0000-000000000003', 'c2000000-0000-0000-0000-00000000000c', 'inventory', 'daily', now() - interval '3 minutes'),
  ('5d000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000d', 'products', 'daily', now() - interval '1 day');
-- not yet due
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency) values
  ('5e000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e', 'products', 'hourly');

create temporary table claim1 as select * from public.kiotviet_claim_due('w1', 10);
select set_eq('select schedule_id, credential_id, sync_type, slot_at from claim1',
  $$select id, credential_id, sync_type, next_run_at from public.kiotviet_sync_schedules
     where id in ('5a000000-0000-0000-0000-000000000001', '5b000000-0000-0000-0000-000000000001',
                  '5c000000-0000-0000-0000-000000000001')$$,
  'claim: returns the due schedules of active credentials, one per credential (the earliest), with their slot');
select is((select count(*)::int from public.kiotviet_sync_logs l join claim1 c on c.run_id = l.id
            where l.status = 'running' and l.trigger = 'cron' and l.worker = 'w1' and l.schedule_id = c.schedule_id
              and l.credential_id = c.credential_id and l.sync_type = c.sync_type and l.slot_at = c.slot_at
              and l.started_at = now() and l.heartbeat_at = now() and l.lease_expires_at = now() + interval '120 seconds'),
          3, 'claim: opens a running log row for each claimed schedule, with the slot, worker and lease');
select is((select count(*)::int from public.kiotviet_sync_logs), 3, 'claim: no other log rows');
select is((select count(*)::int from public.kiotviet_claim_due('w2', 10)), 0,
          'claim: a second claim returns nothing (claimed once; the other due schedules wait for their credential''s run)');
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where id = '5a000000-0000-0000-0000-000000000002';
select is((select count(*)::int from public.kiotviet_claim_due('w2', 10) where credential_id = 'c2000000-0000-0000-0000-00000000000a'), 0,
          'claim: a credential with a running run is not claimed again');
select is((select count(*)::int from public.kiotviet_claim_due('w2', 10, 60)), 0, 'claim: an inactive credential is not claimed');
select is((select count(*)::int from public.kiotviet_claim_due('w2', 0)), 0, 'claim: limit 0 claims nothing');

------------------------------------------------------------------------------------------------------------
-- Start by hand
select throws_ok($$select public.kiotviet_start_run('c2000000-0000-0000-0000-00000000000a', 'products')$$, '23505',
  format('credential c2000000-0000-0000-0000-00000000000a is already syncing (run %s)',
         (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a')),
  'start: conflicts with a running run (23505, naming the credential and its run)');
select throws_ok($$select public.kiotviet_start_run('c2000000-0000-0000-0000-0000000000ff', 'products')$$, 'P0002',
  'credential c2000000-0000-0000-0000-0000000000ff does not exist', 'start: an unknown credential is P0002');
select throws_ok($$select public.kiotviet_start_run('c2000000-0000-0000-0000-00000000000d', 'products')$$, '55000',
  'credential c2000000-0000-0000-0000-00000000000d is not active', 'start: an inactive credential is 55000');
select throws_ok($$select public.kiotviet_start_run('c2000000-0000-0000-0000-00000000000e', 'orders')$$, '22023', null,
  'start: an unknown sync type is refused');
select isnt(public.kiotviet_start_run('c2000000-0000-0000-0000-00000000000e', 'products', 'api', 'w3'), null,
  'start: a credential without a running run starts');
select is((select count(*)::int from public.kiotviet_sync_logs where credential_id = 'c2000000-0000-0000-0000-00000000000e'
             and status = 'running' and trigger = 'api' and worker = 'w3' and schedule_id is null), 1,
  'start: the run row records trigger and worker, and no schedule');

------------------------------------------------------------------------------------------------------------
-- Heartbeat, finish, rescue
select ok(public.kiotviet_heartbeat((select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a'),
                                    'w1', '{"page": 3}', 600),
          'heartbeat: true for the owner of a running run');
select is(lease_expires_at || ' ' || progress::text, (now() + interval '600 seconds') || ' {"page": 3}',
          'heartbeat: extends the lease and publishes the progress')
  from public.kiotviet_sync_logs where id = (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a');
-- Since 20261130000700 (fan-out) the heartbeat hands the lease to whichever worker beats for a running run;
-- what stops a worker is its run no longer running (below).
select ok(public.kiotviet_heartbeat((select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a'), 'w2'),
          'heartbeat: another replica carrying out the run (fan-out) beats for it');
select is(worker, 'w2', 'heartbeat: the lease passes to the worker that beats')
  from public.kiotviet_sync_logs where id = (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a');
select ok(public.kiotviet_finish_run((select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a'),
                                     'success', 42, '{"products": {"count": 42}}', 3) is not null,
          'finish: a running run finishes');
select is(status || ' ' || records_synced || ' ' || api_calls || ' ' || stats::text || ' ' || (completed_at = now()) || ' ' || coalesce(lease_expires_at::text, '-'),
          'success 42 3 {"products": {"count": 42}} true -', 'finish: the log row gets its status, counts and stats, and loses its lease')
  from public.kiotviet_sync_logs where id = (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a');
select throws_ok(format('select public.kiotviet_finish_run(%L, %L)',
                        (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a'), 'failed'),
  '55000', null, 'finish: twice fails');
select ok(not public.kiotviet_heartbeat((select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000a'), 'w1'),
          'heartbeat: false for a finished run');
select throws_ok(format('select public.kiotviet_finish_run(%L, %L)',
                        (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000b'), 'done'),
  '22023', null, 'finish: an unknown status is refused');

-- B's worker stops heartbeating; C's is still within its lease.
update public.kiotviet_sync_logs set lease_expires_at = now() - interval '1 second'
 where id = (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000b');
create temporary table rescued as select * from public.kiotviet_rescue_expired();
select set_eq('select run_id, credential_id, worker from rescued',
  $$select run_id, credential_id, 'w1' from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000b'$$,
  'rescue: returns exactly the runs whose lease expired');
select is(status || ' ' || (completed_at = now()), 'failed true', 'rescue: the expired run is marked failed')
  from public.kiotviet_sync_logs where id = (select run_id from rescued);
select is(error_message, format('worker w1 stopped heartbeating; lease expired at %s', now() - interval '1 second'),
          'rescue: the reason is recorded')
  from public.kiotviet_sync_logs where id = (select run_id from rescued);
select is(next_run_at || ' ' || consecutive_failures || ' ' || last_status, (now() + interval '5 minutes') || ' 1 failed',
          'rescue: the schedule backs off as after a failure')
  from public.kiotviet_sync_schedules where id = '5b000000-0000-0000-0000-000000000001';
select is(last_error, (select error_message from public.kiotviet_sync_logs where id = (select run_id from rescued)),
          'rescue: the schedule keeps the reason as its last error')
  from public.kiotviet_sync_schedules where id = '5b000000-0000-0000-0000-000000000001';
select is((select status from public.kiotviet_sync_logs where id = (select run_id from claim1 where credential_id = 'c2000000-0000-0000-0000-00000000000c')),
          'running', 'rescue: a run within its lease is left alone');
select ok(not public.kiotviet_heartbeat((select run_id from rescued), 'w1'), 'heartbeat: false for a rescued run');
select throws_ok(format('select public.kiotviet_finish_run(%L, %L)', (select run_id from rescued), 'success'),
  '55000', null, 'finish: a rescued run cannot be finished');
select throws_ok(format('select public.kiotviet_apply_products(%L, %L, %L, null, null)', (select run_id from rescued),
                        'c2000000-0000-0000-0000-00000000000b', '[]'),
  '55000', null, 'page apply: a rescued run may not write');

------------------------------------------------------------------------------------------------------------
-- Page apply. Run 'e0…01' is credential E's running run.
update public.kiotviet_sync_logs set status = 'success' where credential_id = 'c2000000-0000-0000-0000-00000000000e';
insert into public.kiotviet_sync_logs (id, sync_type, status, trigger, credential_id, worker, lease_expires_at)
values ('e0000000-0000-0000-0000-000000000001', 'products', 'running', 'manual', 'c2000000-0000-0000-0000-00000000000e', 'w9',
        now() + interval '10 minutes');

create function pg_temp.branch(p_id bigint, p_on_hand numeric, p_reserved numeric, p_location text) returns jsonb
language sql as $$
  select jsonb_build_object('branch_id', p_id, 'branch_name', 'Branch ' || p_id, 'on_hand', p_on_hand,
    'reserved', p_reserved, 'available', p_on_hand - p_reserved, 'min_quality', 0, 'max_quality', 0, 'location', p_location)
$$;
create function pg_temp.product(p_id bigint, p_code text, p_name text, p_category bigint default null,
  p_inventory jsonb default '[]'::jsonb) returns jsonb
language sql as $$
  select jsonb_build_object('id', p_id, 'code', p_code, 'name', p_name, 'barcode', '893' || p_id,
    'full_name', p_name || ' full', 'description', null, 'order_template', '', 'category_id', p_category,
    'category_name', 'Category ' || p_category, 'trademark_id', 7, 'trademark_name', 'Brand', 'base_price', 15000.5,
    'weight', 0.25, 'min_stock', 1, 'max_stock', 100, 'has_variants', false, 'allow_sale', true, 'is_active', true,
    'product_type', 2, 'is_reward_point', true, 'is_lot_serial_control', false, 'is_batch_expire_control', false,
    'inventory_by_branch', p_inventory, 'images', '["https://img.example/1.jpg"]'::jsonb,
    'attributes', '[{"attributeName": "Size", "attributeValue": "L"}]'::jsonb,
    'units', '[]'::jsonb, 'price_books', '[{"priceBookId": 1, "price": 14000}]'::jsonb, 'product_formulas', '[]'::jsonb,
    'product_serials', '[]'::jsonb, 'product_batch_expires', '[]'::jsonb, 'product_shelves', '[]'::jsonb,
    'modified_date', '2026-11-01T10:00:00+07:00')
$$;
create function pg_temp.page1() returns jsonb language sql as $$
  select jsonb_build_array(
    pg_temp.product(1001, 'SP-1001', 'Green tea', null, jsonb_build_array(pg_temp.branch(1, 5, 1, 'A-01'))),
    pg_temp.product(1002, 'SP-1002', 'Black tea', null, jsonb_build_array(pg_temp.branch(1, 5, 1, 'A-02'), pg_temp.branch(2, 7, 0, null))),
    pg_temp.product(1003, 'SP-1003', 'Oolong', null, '[]'::jsonb))
$$;
create temporary table applied (step text primary key, result jsonb);
create temporary table versions (step text, tbl text, id text, row_xmin text, row_ctid text);
create function pg_temp.snapshot(p_step text) returns void language sql as $$
  insert into versions
  select p_step, 'products_full', id::text, xmin::text, ctid::text from public.kiotviet_products_full
  union all select p_step, 'products', id::text, xmin::text, ctid::text from public.kiotviet_products
  union all select p_step, 'inventory', product_id || '/' || branch_id, xmin::text, ctid::text from public.kiotviet_inventory
$$;

-- Each apply runs in its own savepoint, so a row it writes carries that subtransaction's xmin.
savepoint apply1;
insert into applied select 'first', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', pg_temp.page1(), null, '2026-11-01 10:00+07');
release savepoint apply1;
do $$ begin perform pg_temp.snapshot('first'); end $$;
savepoint apply2;
insert into applied select 'second', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', pg_temp.page1(), null, '2026-11-01 10:00+07');
release savepoint apply2;
do $$ begin perform pg_temp.snapshot('second'); end $$;

select is((select result from applied where step = 'first'), '{"written": 3, "products": 3, "inventory": 3, "deleted": 0}'::jsonb,
          'page apply: a new page writes every row to products_full, products and inventory');
select is((select result from applied where step = 'second'), '{"written": 0, "products": 0, "inventory": 0, "deleted": 0}'::jsonb,
          'page apply: the same page again writes 0 rows');
select set_eq('select tbl, id, row_xmin, row_ctid from versions where step = ''second''',
              'select tbl, id, row_xmin, row_ctid from versions where step = ''first''',
              'page apply: an unchanged page leaves every row version as it was (xmin and ctid unchanged)');
select is((select count(*)::int from versions where step = 'first'), 9, 'page apply: 3 products_full, 3 products, 3 inventory rows');

savepoint apply3;
insert into applied select 'third', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e',
  jsonb_build_array(pg_temp.product(1002, 'SP-1002', 'Black tea 2', null,
    jsonb_build_array(pg_temp.branch(1, 5, 1, 'A-02'), pg_temp.branch(2, 7, 0, null)))), null, '2026-11-01 10:00+07');
release savepoint apply3;
do $$ begin perform pg_temp.snapshot('third'); end $$;
select is((select result from applied where step = 'third'), '{"written": 1, "products": 1, "inventory": 0, "deleted": 0}'::jsonb,
          'page apply: a changed product writes only that product');
select set_eq($$select tbl, id from versions v where step = 'third'
                 and not exists (select from versions f where f.step = 'first' and (f.tbl, f.id, f.row_xmin) = (v.tbl, v.id, v.row_xmin))$$,
              $$values ('products_full', '1002'), ('products', '1002')$$,
              'page apply: only the changed product''s rows get a new version');

select is(jsonb_typeof(inventory_by_branch) || ' ' || jsonb_typeof(images) || ' ' || jsonb_typeof(price_books), 'array array array',
          'page apply: JSON columns hold real JSON arrays')
  from public.kiotviet_products_full where id = 1002;
select is(total_on_hand || ' ' || total_reserved || ' ' || total_available, '12 1 11', 'page apply: totals are summed over branches')
  from public.kiotviet_products_full where id = 1002;

-- removed ids
insert into applied select 'removed', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', '[]', array[1003, 1001]::bigint[], null);
select is((select result ->> 'deleted' from applied where step = 'removed'), '2', 'removed ids: counted as deleted');
select is((select count(*)::int from public.kiotviet_products_full where id in (1001, 1003)), 0, 'removed ids: gone from products_full');
select is((select count(*)::int from public.kiotviet_products where id in (1001, 1003)), 0, 'removed ids: gone from products');
select is((select count(*)::int from public.kiotviet_inventory where product_id in (1001, 1003)), 0, 'removed ids: gone from inventory');

-- the cursor moves only with a committed page, never backwards
select is(cursor, '2026-11-01 10:00+07'::timestamptz, 'cursor: the applied page moved the cursor')
  from public.kiotviet_sync_state where credential_id = 'c2000000-0000-0000-0000-00000000000e' and stream = 'products';
savepoint lost_page;
insert into applied select 'lost', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', jsonb_build_array(pg_temp.product(1007, 'SP-1007', 'Lost')), null, '2026-11-02 10:00+07');
rollback to savepoint lost_page;
select is(cursor, '2026-11-01 10:00+07'::timestamptz, 'cursor: a page rolled back leaves the cursor where it was')
  from public.kiotviet_sync_state where credential_id = 'c2000000-0000-0000-0000-00000000000e' and stream = 'products';
select is((select count(*)::int from public.kiotviet_products_full where id = 1007), 0, 'cursor: and its rows are gone with it');
insert into applied select 'kept', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', jsonb_build_array(pg_temp.product(1007, 'SP-1007', 'Kept')), null, '2026-11-02 10:00+07');
select is(cursor, '2026-11-02 10:00+07'::timestamptz, 'cursor: a committed page moves it')
  from public.kiotviet_sync_state where credential_id = 'c2000000-0000-0000-0000-00000000000e' and stream = 'products';
insert into applied select 'older', public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', '[]', null, '2026-10-01 10:00+07');
select is(cursor, '2026-11-02 10:00+07'::timestamptz, 'cursor: an older cursor never moves it backwards')
  from public.kiotviet_sync_state where credential_id = 'c2000000-0000-0000-0000-00000000000e' and stream = 'products';
select is(cursor, '2026-11-02 10:00+07'::timestamptz, 'cursor: kiotviet_get_state reads it')
  from public.kiotviet_get_state('c2000000-0000-0000-0000-00000000000e') where stream = 'products';

-- a code reused by a new product replaces the stale row
select lives_ok($$select public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', jsonb_build_array(pg_temp.product(1008, 'SP-1007', 'New holder of SP-1007')), null, null)$$,
  'reused code: a new id with an existing code does not fail the page');
select is((select string_agg(id::text, ',') from public.kiotviet_products_full where code = 'SP-1007'), '1008',
          'reused code: products_full holds the new product under the code');
select is((select string_agg(id::text, ',') from public.kiotviet_products where code = 'SP-1007'), '1008',
          'reused code: products holds the new product under the code');

-- an unknown category does not fail the page; the link is made when the category arrives
select lives_ok($$select public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', jsonb_build_array(pg_temp.product(1009, 'SP-1009', 'Crisps', 900, jsonb_build_array(pg_temp.branch(1, 3, 0, null)))), null, null)$$,
  'unknown category: the page applies');
select is(coalesce(category_id::text, 'null') || ' ' || kiotviet_category_id, 'null 900',
          'unknown category: products.category_id is null, kiotviet_category_id kept')
  from public.kiotviet_products where id = 1009;
select is(category_id || ' ' || category_name, '900 Category 900', 'unknown category: products_full keeps KiotViet''s id and name')
  from public.kiotviet_products_full where id = 1009;
select is(public.kiotviet_apply_categories('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
            '[{"id": 900, "category_name": "Snacks"}]', null, '2026-11-01 09:00+07') ->> 'deleted', '0',
          'categories: a page applies');
select is(category_id, 900::bigint, 'unknown category: products.category_id is set once the category arrives')
  from public.kiotviet_products where id = 1009;
select is(category_name || ' / ' || category_path, 'Snacks / Snacks', 'unknown category: products_full takes its name and path')
  from public.kiotviet_products_full where id = 1009;

-- category name and path denormalised into products_full, child before parent, refreshed on rename
do $$ begin perform public.kiotviet_apply_categories('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  '[{"id": 911, "category_name": "Tea", "kiotviet_parent_id": 910}]', null, null); end $$;
select lives_ok($$select public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001',
  'c2000000-0000-0000-0000-00000000000e', jsonb_build_array(pg_temp.product(1010, 'SP-1010', 'Jasmine tea', 911)), null, null)$$,
  'category path: a product of a category whose parent has not arrived applies');
select is(category_name || ' / ' || category_path, 'Tea / Tea', 'category path: before the parent arrives the category is a root')
  from public.kiotviet_products_full where id = 1010;
do $$ begin perform public.kiotviet_apply_categories('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  '[{"id": 910, "category_name": "Drinks", "has_child": true}]', null, null); end $$;
select is(parent_id || ' ' || level, '910 2', 'category path: the child is linked to its parent when the parent arrives')
  from public.kiotviet_categories where id = 911;
select is(category_name || ' / ' || category_path, 'Tea / Drinks > Tea', 'category path: products_full gets the root-to-leaf path')
  from public.kiotviet_products_full where id = 1010;
do $$ begin perform public.kiotviet_apply_categories('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  '[{"id": 910, "category_name": "Beverages", "has_child": true}]', null, null); end $$;
select is(category_name || ' / ' || category_path, 'Tea / Beverages > Tea', 'category path: refreshed when a parent is renamed')
  from public.kiotviet_products_full where id = 1010;
do $$ begin perform public.kiotviet_apply_categories('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  '[{"id": 911, "category_name": "Green tea", "kiotviet_parent_id": 910}]', null, null); end $$;
select is(category_name || ' / ' || category_path, 'Green tea / Beverages > Green tea', 'category path: refreshed when the category itself is renamed')
  from public.kiotviet_products_full where id = 1010;
select is(public.kiotviet_apply_categories('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
            '[{"id": 911, "category_name": "Green tea", "kiotviet_parent_id": 910}]', null, null),
          '{"written": 0, "deleted": 0}'::jsonb, 'categories: an unchanged page writes 0 rows');

-- stock: merged per branch, location kept, totals recomputed
select is(public.kiotviet_apply_stock('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  '[{"product_id": 1002, "branches": [{"branch_id": 1, "on_hand": 12, "reserved": 2}, {"branch_id": 3, "on_hand": 4, "reserved": 0}]},
    {"product_id": 99999, "branches": [{"branch_id": 1, "on_hand": 1, "reserved": 0}]}]'),
  '{"written": 1, "inventory": 2, "deleted": 0}'::jsonb, 'stock: writes the changed product and its changed branches, skips unknown products');
select is(inventory_by_branch -> 0, pg_temp.branch(1, 12, 2, 'A-02'), 'stock: a known branch gets on_hand, reserved, available and keeps its location')
  from public.kiotviet_products_full where id = 1002;
select is(inventory_by_branch -> 1, pg_temp.branch(2, 7, 0, null), 'stock: a branch without news is left as it was')
  from public.kiotviet_products_full where id = 1002;
select is((inventory_by_branch -> 2) ->> 'branch_id', '3', 'stock: a new branch is appended')
  from public.kiotviet_products_full where id = 1002;
select is(total_on_hand || ' ' || total_reserved || ' ' || total_available, '23 2 21', 'stock: totals are recomputed')
  from public.kiotviet_products_full where id = 1002;
select set_eq($$select branch_id, on_hand, reserved, available from public.kiotviet_inventory where product_id = 1002$$,
              $$values (1::bigint, 12::numeric, 2::numeric, 10::numeric), (2, 7, 0, 7), (3, 4, 0, 4)$$,
              'stock: kiotviet_inventory holds the merged rows');
select is(public.kiotviet_apply_stock('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  '[{"product_id": 1002, "branches": [{"branch_id": 1, "on_hand": 12, "reserved": 2}, {"branch_id": 3, "on_hand": 4, "reserved": 0}]}]'),
  '{"written": 0, "inventory": 0, "deleted": 0}'::jsonb, 'stock: unchanged stock writes 0 rows');

-- the sweep after a full pass: products now holds 1002, 1008, 1009 and 1010
select is((select count(*)::int from public.kiotviet_products_full), 4, 'sweep: four products before the full pass');
select is((select count(*)::int from public.kiotviet_inventory where product_id = 1009), 1, 'sweep: an unseen product has stock before the pass');
do $$ begin perform public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  jsonb_build_array(pg_temp.product(1002, 'SP-1002', 'Black tea 2')), null, null, true); end $$;
select is(public.kiotviet_sweep('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e', 'products', 3),
          '{"deleted": 0, "swept": false, "seen": 1, "total": 3}'::jsonb,
          'sweep: refuses when fewer ids were seen than KiotViet''s total');
select is((select count(*)::int from public.kiotviet_products_full), 4, 'sweep: a refused sweep deletes nothing');
select is((select count(*)::int from public.kiotviet_sync_seen), 0, 'sweep: a refused sweep drops the ids it saw (the pass starts over)');
do $$ begin perform public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  jsonb_build_array(pg_temp.product(1002, 'SP-1002', 'Black tea 2')), null, null, true); end $$;
do $$ begin perform public.kiotviet_apply_products('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e',
  jsonb_build_array(pg_temp.product(1008, 'SP-1007', 'New holder of SP-1007')), null, null, true); end $$;
select is(public.kiotviet_sweep('e0000000-0000-0000-0000-000000000001', 'c2000000-0000-0000-0000-00000000000e', 'products', 2),
          '{"deleted": 2, "swept": true, "seen": 2, "total": 2}'::jsonb, 'sweep: after a complete pass deletes the unseen rows');
select is((select string_agg(id::text, ',' order by id) from public.kiotviet_products_full), '1002,1008', 'sweep: products_full keeps the seen rows only');
select is((select string_agg(id::text, ',' order by id) from public.kiotviet_products), '1002,1008', 'sweep: products keeps the seen rows only');
select is((select count(*)::int from public.kiotviet_inventory where product_id in (1009, 1010)), 0, 'sweep: inventory of unseen products goes too');
select is(last_full_at, now(), 'sweep: records the full reconcile time')
  from public.kiotviet_sync_state where credential_id = 'c2000000-0000-0000-0000-00000000000e' and stream = 'products';

------------------------------------------------------------------------------------------------------------
-- Credentials
select is(public.kiotviet_store_token('c2000000-0000-0000-0000-00000000000e', 'token-2', now() + interval '1 day', 0), 1::bigint,
          'store_token: with the current version the token is stored and the version bumped');
select is(public.kiotviet_store_token('c2000000-0000-0000-0000-00000000000e', 'token-3', now() + interval '2 days', 0), null,
          'store_token: with a stale version it returns null');
select is(encrypted_token || ' ' || token_version || ' ' || (token_expires_at = now() + interval '1 day'), 'token-2 1 true',
          'store_token: a stale swap leaves the winner''s token')
  from public.kiotviet_get_credential('c2000000-0000-0000-0000-00000000000e');

insert into auth.users (id, email) values ('a0000000-0000-0000-0000-000000000001', 'owner1@example.com'),
                                           ('a0000000-0000-0000-0000-000000000002', 'owner2@example.com');
insert into public.kiotviet_credentials (id, user_id, retailer_name, client_id, encrypted_token, is_active) values
  ('cf000000-0000-0000-0000-000000000001', 'a0000000-0000-0000-0000-000000000001', 'owner1shop', 'old', 'ct', true),
  ('cf000000-0000-0000-0000-000000000002', 'a0000000-0000-0000-0000-000000000002', 'owner2shop', 'other', 'ct', true);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency) values
  ('5f000000-0000-0000-0000-000000000001', 'cf000000-0000-0000-0000-000000000001', 'products', 'hourly'),
  ('5f000000-0000-0000-0000-000000000002', 'cf000000-0000-0000-0000-000000000001', 'categories', 'daily');
select is(public.kiotviet_save_credential('cf000000-0000-0000-0000-000000000003', 'a0000000-0000-0000-0000-000000000001',
            ' owner1shop ', 'new', 'enc-secret', 'enc-token', now() + interval '1 day'),
          'cf000000-0000-0000-0000-000000000003'::uuid, 'save_credential: returns the new credential');
select set_eq($$select id, is_active from public.kiotviet_credentials where id::text like 'cf%'$$,
  $$values ('cf000000-0000-0000-0000-000000000001'::uuid, false), ('cf000000-0000-0000-0000-000000000002', true),
           ('cf000000-0000-0000-0000-000000000003', true)$$,
  'save_credential: deactivates the owner''s older credential, not other owners''');
select set_eq($$select id, credential_id from public.kiotviet_sync_schedules where id::text like '5f%'$$,
  $$values ('5f000000-0000-0000-0000-000000000001'::uuid, 'cf000000-0000-0000-0000-000000000003'::uuid),
           ('5f000000-0000-0000-0000-000000000002', 'cf000000-0000-0000-0000-000000000003')$$,
  'save_credential: the older credential''s schedules move to the new one');
select is(retailer_name || ' ' || client_id || ' ' || encrypted_client_secret || ' ' || encrypted_token, 'owner1shop new enc-secret enc-token',
          'save_credential: stores the (trimmed) names and the ciphertexts')
  from public.kiotviet_get_credential('cf000000-0000-0000-0000-000000000003');
select throws_ok($$select public.kiotviet_save_credential(gen_random_uuid(), null, '  ', 'c', 's', 't', null)$$, '22023',
  'retailerName is required', 'save_credential: a blank retailer name is refused');

------------------------------------------------------------------------------------------------------------
-- Who may execute the RPC functions
create temporary table rpc (name text primary key);
insert into rpc values ('kiotviet_schedule_after_run'), ('kiotviet_claim_due'), ('kiotviet_start_run'), ('kiotviet_heartbeat'),
  ('kiotviet_assert_running'), ('kiotviet_advance_cursor'), ('kiotviet_get_state'), ('kiotviet_apply_categories'),
  ('kiotviet_relink_categories'), ('kiotviet_apply_products'), ('kiotviet_apply_stock'), ('kiotviet_apply_branches'),
  ('kiotviet_apply_attributes'), ('kiotviet_sweep'), ('kiotviet_finish_run'), ('kiotviet_rescue_expired'),
  ('kiotviet_get_credential'), ('kiotviet_list_credentials'), ('kiotviet_store_token'), ('kiotviet_save_credential'),
  ('kiotviet_deactivate_credential'), ('kiotviet_reencrypt_credential'), ('kiotviet_upsert_schedule'),
  ('kiotviet_schedule_interval'), ('kiotviet_next_slot'), ('kiotviet_backoff');
create function pg_temp.rpc_functions() returns setof regprocedure language sql as $$
  select p.oid::regprocedure from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and p.proname in (select name from rpc)
$$;
select is((select count(distinct p.proname)::int from pg_catalog.pg_proc p join pg_temp.rpc_functions() f on f = p.oid), 26,
          'privileges: every RPC function exists');
select is(array(select f::text from pg_temp.rpc_functions() f where has_function_privilege('anon', f, 'execute') order by 1),
          '{}'::text[], 'privileges: anon may execute no RPC function');
select is(array(select f::text from pg_temp.rpc_functions() f where has_function_privilege('authenticated', f, 'execute') order by 1),
          '{}'::text[], 'privileges: authenticated may execute no RPC function');
select is(array(select f::text from pg_temp.rpc_functions() f where not has_function_privilege('service_role', f, 'execute') order by 1),
          '{}'::text[], 'privileges: service_role may execute every RPC function');
select is(array(select f::text from pg_temp.rpc_functions() f join pg_catalog.pg_proc p on p.oid = f
                 where p.proname not in ('kiotviet_schedule_interval', 'kiotviet_next_slot', 'kiotviet_backoff')
                   and not (p.prosecdef and p.proconfig @> array['search_path=""']) order by 1),
          '{}'::text[], 'privileges: every RPC function is SECURITY DEFINER with an empty search_path');
select ok(not has_function_privilege('anon', 'public.calculate_next_run_time()', 'execute')
          and not has_function_privilege('authenticated', 'public.calculate_next_run_time()', 'execute'),
          'privileges: the trigger function is not callable by anon or authenticated');

------------------------------------------------------------------------------------------------------------
-- Rules at the edges
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c2000000-0000-0000-0000-00000000000f', 'shopF', 'clientF', 'ct', true);
create temporary table swap_run as
  select public.kiotviet_start_run('c2000000-0000-0000-0000-00000000000f', 'products', 'manual', 'w-swap') as id;
select lives_ok(format($q$select public.kiotviet_apply_products(%L, 'c2000000-0000-0000-0000-00000000000f',
  '[{"id": 801, "code": "SWAP-X", "name": "a"}, {"id": 802, "code": "SWAP-Y", "name": "b"}]', '{}', null)$q$,
  (select id from swap_run)), 'page apply: two products are stored');
select lives_ok(format($q$select public.kiotviet_apply_products(%L, 'c2000000-0000-0000-0000-00000000000f',
  '[{"id": 801, "code": "SWAP-Y", "name": "a"}, {"id": 802, "code": "SWAP-X", "name": "b"}]', '{}', null)$q$,
  (select id from swap_run)), 'page apply: two products of one page swapping codes do not fail the page');
select results_eq($$select id, code from public.kiotviet_products_full where id in (801, 802) order by id$$,
  $$values (801::bigint, 'SWAP-Y'::text), (802::bigint, 'SWAP-X'::text)$$,
  'page apply: after the swap each product holds its new code (products_full)');
select results_eq($$select id, code from public.kiotviet_products where id in (801, 802) order by id$$,
  $$values (801::bigint, 'SWAP-Y'::text), (802::bigint, 'SWAP-X'::text)$$,
  'page apply: after the swap each product holds its new code (products)');

select public.kiotviet_apply_attributes((select id from swap_run), 'c2000000-0000-0000-0000-00000000000f',
  '[{"id": 901, "name": "Màu", "attribute_values": [{"value": "Đỏ", "attributeId": 901}]}]');
select public.kiotviet_apply_attributes((select id from swap_run), 'c2000000-0000-0000-0000-00000000000f', '[]');
select is((select count(*)::int from public.kiotviet_attributes where id = 901), 1,
  'attributes: an empty reply does not empty the table');

-- A page holds a share lock on its run's row until it commits, so a rescue cannot slip in between.
select is((select count(*)::int from pg_catalog.pg_locks l join pg_catalog.pg_class c on c.oid = l.relation
            where c.relname = 'kiotviet_sync_logs' and l.mode = 'RowShareLock' and l.pid = pg_backend_pid()), 1,
  'page apply: the run''s log row is locked FOR SHARE by the page''s transaction');
select public.kiotviet_finish_run((select id from swap_run), 'success');

-- No drift after failures: a retry claimed at a backoff time (off the grid) still lands on the grid.
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, last_run_at, last_slot_at, consecutive_failures)
values ('5f000000-0000-0000-0000-0000000000bb', 'c2000000-0000-0000-0000-00000000000f', 'attributes', 'hourly',
        date_trunc('hour', now()) - interval '3 hours' + interval '2 minutes', date_trunc('hour', now()) - interval '3 hours', 2);
select public.kiotviet_schedule_after_run('5f000000-0000-0000-0000-0000000000bb', 'success',
  date_trunc('hour', now()) - interval '53 minutes', null);
select is((select last_slot_at from public.kiotviet_sync_schedules where id = '5f000000-0000-0000-0000-0000000000bb'),
  date_trunc('hour', now()) - interval '1 hour',
  'finish success after retries: the grid (last_slot_at) is the slot the retry stood for, not the backoff time');
select is((select last_run_at from public.kiotviet_sync_schedules where id = '5f000000-0000-0000-0000-0000000000bb'),
  now(), 'finish success after retries: last_run_at is when it finished');
select is((select next_run_at from public.kiotviet_sync_schedules where id = '5f000000-0000-0000-0000-0000000000bb'),
  date_trunc('hour', now()) + interval '1 hour',
  'finish success after retries: the next run is back on the hourly :00 grid');

-- The limit counts credentials that can start: one credential with several due schedules does not use
-- up a claim that another credential's due schedule could have had.
delete from public.kiotviet_sync_logs where status = 'running';
update public.kiotviet_sync_schedules set enabled = false;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c2000000-0000-0000-0000-0000000000f1', 'shopG', 'clientG', 'ct', true),
  ('c2000000-0000-0000-0000-0000000000f2', 'shopH', 'clientH', 'ct', true);
insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, next_run_at) values
  ('c2000000-0000-0000-0000-0000000000f1', 'products', 'daily', now() - interval '30 minutes'),
  ('c2000000-0000-0000-0000-0000000000f1', 'categories', 'daily', now() - interval '29 minutes'),
  ('c2000000-0000-0000-0000-0000000000f1', 'attributes', 'daily', now() - interval '28 minutes'),
  ('c2000000-0000-0000-0000-0000000000f2', 'products', 'daily', now() - interval '1 minute');
select set_eq($$select credential_id from public.kiotviet_claim_due('w-limit', 2)$$,
  array['c2000000-0000-0000-0000-0000000000f1', 'c2000000-0000-0000-0000-0000000000f2']::uuid[],
  'claim: a limit of 2 starts two credentials, not two schedules of one');

select * from finish();
rollback;
