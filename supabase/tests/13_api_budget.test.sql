-- The per-credential API budget shared by every process (DESIGN.md §5): kiotviet_take_api_calls never
-- hands out more than the hourly limit in any hour, per credential, and kiotviet_return_api_calls gives
-- back what a run did not use. now() is fixed in this transaction; the sliding window is tested with
-- grants written in the past.
begin;
select plan(14);

delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('cb000000-0000-0000-0000-00000000000a', 'shopA', 'clientA', 'ct', true),
  ('cb000000-0000-0000-0000-00000000000b', 'shopB', 'clientB', 'ct', true);

select results_eq($$select granted, resumes_at from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000a', 10, 25)$$,
  $$values (10, null::timestamptz)$$, 'budget: a take within the limit gets what it asked for');
select is((select granted from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000a', 10, 25)), 10,
  'budget: a second take too');
select is((select granted from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000a', 10, 25)), 5,
  'budget: the take that reaches the limit gets only what is left');
select results_eq($$select granted, resumes_at from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000a', 10, 25)$$,
  $$values (0, now() + interval '1 hour')$$, 'budget: past the limit nothing, and when the oldest grant leaves the window');
select is((select granted from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000b', 10, 25)), 10,
  'budget: each credential has its own');
select is((select sum(n)::int from public.kiotviet_api_grants where credential_id = 'cb000000-0000-0000-0000-00000000000a'), 25,
  'budget: the grants of the hour add up to the limit, never more');

-- what a run did not use goes back
select lives_ok($$select public.kiotviet_return_api_calls((select max(id) from public.kiotviet_api_grants
                    where credential_id = 'cb000000-0000-0000-0000-00000000000a'), 3)$$, 'budget: unused calls are returned');
select is((select granted from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000a', 10, 25)), 3,
  'budget: returned calls can be taken again');
select lives_ok($$select public.kiotviet_return_api_calls((select max(id) from public.kiotviet_api_grants), 999999)$$,
  'budget: returning more than a grant held leaves it at 0');
select is((select min(n) from public.kiotviet_api_grants), 0, 'budget: a grant never goes negative');

-- the window slides: grants older than an hour no longer count
delete from public.kiotviet_api_grants;
insert into public.kiotviet_api_grants (credential_id, granted_at, n) values
  ('cb000000-0000-0000-0000-00000000000a', now() - interval '61 minutes', 20),
  ('cb000000-0000-0000-0000-00000000000a', now() - interval '30 minutes', 20);
select results_eq($$select granted, resumes_at from public.kiotviet_take_api_calls('cb000000-0000-0000-0000-00000000000a', 10, 20)$$,
  $$values (0, now() + interval '30 minutes')$$, 'budget: calls of the last hour count, and resume when they leave the window');
select is((select count(*)::int from public.kiotviet_api_grants where granted_at < now() - interval '1 hour'), 0,
  'budget: grants out of the window are dropped');

select throws_ok($$select public.kiotviet_take_api_calls('cb000000-0000-0000-0000-0000000000ff', 1, 10)$$, '23503', null,
  'budget: an unknown credential is refused');
select ok(not has_function_privilege('authenticated', 'public.kiotviet_take_api_calls(uuid, integer, integer)', 'execute')
          and not has_function_privilege('anon', 'public.kiotviet_take_api_calls(uuid, integer, integer)', 'execute'),
  'budget: only the service role takes calls');

select * from finish();
rollback;
