-- Applying webhook events (DESIGN.md §5 "webhooks for freshness"): claims skip what another worker
-- holds, an update older than the row changes nothing, stock merges per branch, a failure backs off and
-- is parked after the last attempt, and only the claimed event's worker may write.
begin;
select plan(19);
set local client_min_messages = warning;

delete from public.kiotviet_products_full;
delete from public.kiotviet_products;
delete from public.kiotviet_webhook_events;
delete from public.kiotviet_categories;
delete from public.kiotviet_branches;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c5100000-0000-0000-0000-00000000000a', 'applyA', 'clientA', 'ct', true);
insert into public.kiotviet_webhook_events (id, credential_id, dedupe_key, event_types, body, received_at) values
  ('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a', 'id:1', '{product.update}', '{}', now() - interval '2 minutes'),
  ('e5100000-0000-0000-0000-000000000002', 'c5100000-0000-0000-0000-00000000000a', 'id:2', '{stock.update}', '{}', now() - interval '1 minute'),
  ('e5100000-0000-0000-0000-000000000003', 'c5100000-0000-0000-0000-00000000000a', 'id:3', '{product.update}', '{}', now() + interval '1 minute');
update public.kiotviet_webhook_events set next_attempt_at = now() + interval '1 hour' where id = 'e5100000-0000-0000-0000-000000000003';

select results_eq($$select id from public.kiotviet_webhook_claim('w1', 1, 60, 3)$$,
  $$values ('e5100000-0000-0000-0000-000000000001'::uuid)$$, 'the oldest due event is claimed first');
select results_eq($$select id from public.kiotviet_webhook_claim('w2', 10, 60, 3)$$,
  $$values ('e5100000-0000-0000-0000-000000000002'::uuid)$$, 'another worker gets the rest, never a claimed or not-yet-due event');

-- writes through a claimed event; newer wins
select is((public.kiotviet_webhook_apply_products('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a',
  '[{"id": 51, "code": "P51", "name": "new", "base_price": 10, "modified_date": "2026-01-02T00:00:00+07:00",
     "inventory_by_branch": [{"branch_id": 1, "on_hand": 5}, {"branch_id": 2, "on_hand": 7}]}]', '{}') ->> 'written')::int,
  1, 'an event writes a product it does not have yet');
select is((public.kiotviet_webhook_apply_products('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a',
  '[{"id": 51, "code": "P51", "name": "old", "base_price": 1, "modified_date": "2026-01-01T00:00:00+07:00"}]', '{}') ->> 'older')::int,
  1, 'an older event is counted as older');
select is((select name from public.kiotviet_products_full where id = 51), 'new', 'and changes nothing');
select is((public.kiotviet_webhook_apply_products('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a',
  '[{"id": 51, "code": "P51", "name": "same time", "modified_date": "2026-01-02T00:00:00+07:00"}]', '{}') ->> 'older')::int,
  1, 'a repeat (same ModifiedDate) changes nothing either');

select public.kiotviet_webhook_apply_stock('e5100000-0000-0000-0000-000000000002', 'c5100000-0000-0000-0000-00000000000a',
  '[{"product_id": 51, "branches": [{"branch_id": 2, "on_hand": 3, "reserved": 1}]}]');
select results_eq($$select branch_id, on_hand::int from public.kiotviet_inventory where product_id = 51 order by branch_id$$,
  $$values (1::bigint, 5), (2::bigint, 3)$$, 'a stock event changes its branch and keeps the others');
select is((select total_on_hand::int from public.kiotviet_products_full where id = 51), 8, 'and the product''s total follows');

select public.kiotviet_webhook_apply_categories('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a',
  '[{"id": 61, "category_name": "Trà", "modified_date": "2026-01-02T00:00:00+07:00"},
    {"id": 62, "category_name": "Cà phê", "modified_date": "2026-01-02T00:00:00+07:00"}]', '{}');
select is((public.kiotviet_webhook_apply_categories('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a',
  '[{"id": 61, "category_name": "old name", "modified_date": "2026-01-01T00:00:00+07:00"}]', '{62}') ->> 'older')::int, 1,
  'an older category update is skipped');
select results_eq($$select id, category_name from public.kiotviet_categories where id in (61, 62)$$, $$values (61::bigint, 'Trà')$$,
  'and a deleted category (IsDeleted, category.delete) goes');
select public.kiotviet_webhook_apply_branches('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a',
  '[{"id": 1, "branch_name": "Trung tâm", "is_active": true, "modified_date": "2026-01-02T00:00:00+07:00"},
    {"id": 2, "branch_name": "Hà Nội", "is_active": true, "modified_date": "2026-01-02T00:00:00+07:00"}]', '{}');
select public.kiotviet_webhook_apply_branches('e5100000-0000-0000-0000-000000000001', 'c5100000-0000-0000-0000-00000000000a', '[]', '{2}');
select results_eq($$select id, is_active from public.kiotviet_branches order by id$$, $$values (1::bigint, true), (2::bigint, false)$$,
  'a deleted branch is kept, inactive');
select results_eq($$select branch_id from public.kiotviet_inventory where product_id = 51$$, $$values (1::bigint)$$,
  'and its stock goes with it');

select throws_ok($$select public.kiotviet_webhook_apply_products('e5100000-0000-0000-0000-000000000003', 'c5100000-0000-0000-0000-00000000000a', '[]', '{51}')$$,
  '55000', null, 'an event nobody claimed cannot write');

select is(public.kiotviet_webhook_fail('e5100000-0000-0000-0000-000000000002', 'w1', 'not mine', 3), null, 'only the claiming worker records the outcome');
select is(public.kiotviet_webhook_fail('e5100000-0000-0000-0000-000000000002', 'w2', 'boom', 3), 'pending', 'a failure goes back to the queue');
select ok((select next_attempt_at > now() from public.kiotviet_webhook_events where id = 'e5100000-0000-0000-0000-000000000002'),
  'after a backoff');
update public.kiotviet_webhook_events set attempts = 3, status = 'applying', worker = 'w2' where id = 'e5100000-0000-0000-0000-000000000002';
select is(public.kiotviet_webhook_fail('e5100000-0000-0000-0000-000000000002', 'w2', 'boom again', 3), 'parked', 'the last attempt parks it');
select ok(public.kiotviet_webhook_done('e5100000-0000-0000-0000-000000000001', 'w1', '{"written": 1}'), 'the worker marks its event done');
select is((select status from public.kiotviet_webhook_events where id = 'e5100000-0000-0000-0000-000000000001'), 'applied',
  'an applied event is marked applied');

select * from finish();
rollback;
