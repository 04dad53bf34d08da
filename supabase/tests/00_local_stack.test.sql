-- The local stand-ins behave as Supabase does where kvsync's SQL depends on them.
begin;
select plan(11);

select has_function('auth', 'uid', 'auth.uid() exists');
select has_function('net', 'http_post', array['text', 'jsonb', 'jsonb', 'jsonb', 'integer'], 'net.http_post has pg_net''s signature');
select has_extension('pg_cron', 'pg_cron is installed');

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"11111111-2222-3333-4444-555555555555","role":"authenticated"}', true);
select is(auth.uid(), '11111111-2222-3333-4444-555555555555'::uuid, 'auth.uid() is the JWT''s sub');
select is(auth.role(), 'authenticated', 'auth.role() is the JWT''s role');
select throws_ok('select * from vault.decrypted_secrets', '42501', null, 'authenticated cannot read Vault');
reset role;

-- The pg_net stand-in's helpers run shell commands as the postgres OS user: only the owner may call them.
select ok(not exists (
  select from pg_proc p join pg_namespace n on n.oid = p.pronamespace, unnest(array['anon', 'authenticated']) r
   where n.nspname = 'net' and has_function_privilege(r, p.oid, 'execute')),
  'anon and authenticated may execute no function of the net schema');
select ok(not has_function_privilege('service_role', 'net._plsh_curl_sync(text)', 'execute'),
  'service_role may not run the stand-in''s shell helpers');
set local role anon;
select throws_ok($$select net._plsh_curl_sync('url = "file:///etc/passwd"')$$, '42501', null,
  'anon cannot call the curl helper (it reads and writes files as postgres)');
reset role;

-- A sent request keeps no headers: sent at once here (deferred trigger made immediate), to a closed port.
set local kvsync.net_dispatch = 'sync';
create temp table sent_req on commit drop as
  select net.http_post('http://127.0.0.1:9/x', '{}'::jsonb, '{}'::jsonb,
                       '{"Authorization": "Bearer cron-secret-in-a-header"}'::jsonb, 1000) as id;
set constraints all immediate;
select is_empty($$select from net.http_request_queue where id = (select id from sent_req)$$,
  'a sent request leaves the queue, its headers with it');
select isnt_empty($$select from net._http_response where id = (select id from sent_req)$$,
  'and its response is recorded');
set constraints all deferred;

select * from finish();
rollback;
