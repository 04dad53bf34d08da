-- The local stand-ins behave as Supabase does where kvsync's SQL depends on them.
begin;
select plan(6);

select has_function('auth', 'uid', 'auth.uid() exists');
select has_function('net', 'http_post', array['text', 'jsonb', 'jsonb', 'jsonb', 'integer'], 'net.http_post has pg_net''s signature');
select has_extension('pg_cron', 'pg_cron is installed');

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"11111111-2222-3333-4444-555555555555","role":"authenticated"}', true);
select is(auth.uid(), '11111111-2222-3333-4444-555555555555'::uuid, 'auth.uid() is the JWT''s sub');
select is(auth.role(), 'authenticated', 'auth.role() is the JWT''s role');
select throws_ok('select * from vault.decrypted_secrets', '42501', null, 'authenticated cannot read Vault');
reset role;

select * from finish();
rollback;
