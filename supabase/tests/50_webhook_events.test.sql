-- Webhook events (DESIGN.md §4, §5): a delivery is stored once per dedupe key (KiotViet's retries and
-- duplicates only count), endpoints are found by credential or retailer id and only for active
-- credentials, and only service_role reaches any of it.
begin;
select plan(14);

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c5000000-0000-0000-0000-00000000000a', 'hookA', 'clientA', 'ct', true),
  ('c5000000-0000-0000-0000-00000000000b', 'hookB', 'clientB', 'ct', false);
select public.kiotviet_webhook_set_endpoint('c5000000-0000-0000-0000-00000000000a', 9000001, 'v1:k:secretA');
select public.kiotviet_webhook_set_endpoint('c5000000-0000-0000-0000-00000000000b', 9000002, 'v1:k:secretB');

select is((select credential_id from public.kiotviet_webhook_endpoint(null, 9000001)),
  'c5000000-0000-0000-0000-00000000000a'::uuid, 'an endpoint is found by the retailer id of the Action');
select is((select encrypted_secret from public.kiotviet_webhook_endpoint('c5000000-0000-0000-0000-00000000000a', null)),
  'v1:k:secretA', 'and by the credential in the URL');
select is((select count(*)::int from public.kiotviet_webhook_endpoint('c5000000-0000-0000-0000-00000000000a', 9000002)),
  0, 'a credential and a retailer that disagree find nothing');
select is((select count(*)::int from public.kiotviet_webhook_endpoint(null, 9000002)),
  0, 'an inactive credential receives nothing');
select is((select count(*)::int from public.kiotviet_webhook_endpoint(null, null)), 0, 'nothing names no endpoint');

select public.kiotviet_webhook_set_endpoint('c5000000-0000-0000-0000-00000000000a', null, 'v1:k:secretA2');
select is((select retailer_id from public.kiotviet_webhook_endpoints where credential_id = 'c5000000-0000-0000-0000-00000000000a'),
  9000001::bigint, 'replacing the secret without a retailer id keeps the one known');
select throws_ok($$select public.kiotviet_webhook_set_endpoint('c5000000-0000-0000-0000-00000000000f', 1, 'x')$$,
  'P0002', null, 'an endpoint needs an existing credential');

select is((select inserted from public.kiotviet_webhook_receive('c5000000-0000-0000-0000-00000000000a', 'id:e1', 'e1', 1,
  array['product.update'], '{"Id":"e1","Attempt":1,"Notifications":[]}')), true, 'a new delivery is stored');
select is((select inserted from public.kiotviet_webhook_receive('c5000000-0000-0000-0000-00000000000a', 'id:e1', 'e1', 3,
  array['product.update'], '{"Id":"e1","Attempt":3,"Notifications":[]}')), false, 'its retry is not stored again');
select results_eq($$select deliveries, attempt, status from public.kiotviet_webhook_events where dedupe_key = 'id:e1'$$,
  $$values (2, 3, 'pending')$$, 'the retry only counts, and the event waits for the applier');
select throws_ok($$select public.kiotviet_webhook_receive('c5000000-0000-0000-0000-00000000000a', 'id:e2', 'e2', 1, null, '[1]')$$,
  '22023', 'a webhook body must be a JSON object', 'a body that is not an object is refused by name');

select ok(not has_table_privilege('anon', 'public.kiotviet_webhook_events', 'select')
          and not has_table_privilege('authenticated', 'public.kiotviet_webhook_endpoints', 'select'),
  'the ERP roles read neither events nor secrets');
select ok(not has_function_privilege('anon', 'public.kiotviet_webhook_receive(uuid, text, text, integer, text[], jsonb)', 'execute')
          and not has_function_privilege('authenticated', 'public.kiotviet_webhook_endpoint(uuid, bigint)', 'execute'),
  'the ERP roles call none of the webhook functions');
select ok((select bool_and(c.relrowsecurity) from pg_class c where c.oid in ('public.kiotviet_webhook_events'::regclass,
  'public.kiotviet_webhook_endpoints'::regclass, 'public.kiotviet_webhook_registrations'::regclass)), 'RLS is on for the webhook tables');

select * from finish();
rollback;
