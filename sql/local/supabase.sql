-- LOCAL USE ONLY: never run this on a Supabase database, where these objects already exist and belong to
-- Supabase. It gives a plain Debian PostgreSQL 15 what kvsync's migrations and tests expect of Supabase:
-- the API roles, the auth schema and its helpers, a Vault with supabase_vault's names (plaintext here),
-- the extensions schema, pg_cron, the pg_net stand-in (sql/local/pg_net), pgTAP, and the realtime
-- publication. Idempotent; run as a superuser in the database named by cron.database_name.
set client_min_messages = warning;

do $$ begin
  if not exists (select from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then create role authenticated nologin noinherit; end if;
  if not exists (select from pg_roles where rolname = 'service_role') then create role service_role nologin noinherit bypassrls; end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then create role authenticator login noinherit password 'authenticator'; end if;
  if not exists (select from pg_roles where rolname = 'supabase_admin') then create role supabase_admin login superuser createrole createdb replication bypassrls; end if;
end $$;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgtap with schema extensions;
create extension if not exists pg_cron;
create extension if not exists plsh;
create extension if not exists pg_net with schema extensions;

do $$ begin
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
end $$;
set search_path = "$user", public, extensions;

-- pg_net is for the database itself (kiotviet_dispatch, SECURITY DEFINER) and service_role: the stand-in's
-- helpers run shell commands as the postgres OS user, so anon and authenticated may execute nothing here.
revoke all on schema net from public, anon, authenticated;
revoke all on all functions in schema net from public, anon, authenticated, service_role;
grant usage on schema net to service_role;
grant execute on function net.http_post(text, jsonb, jsonb, jsonb, integer), net.http_get(text, jsonb, jsonb, integer)
  to service_role;

-- Sent requests keep no headers (the cron secret travels in one): once the stand-in's dispatch trigger
-- has sent a request at commit, this one (after it, by name) deletes the row, as the real pg_net worker
-- removes a request from its queue once sent. Queue-only mode (kvsync.net_dispatch = 'off') keeps it.
-- Here rather than in the extension so that every existing cluster gets it on its next db.sh up.
create or replace function net._forget_sent() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if coalesce(nullif(current_setting('kvsync.net_dispatch', true), ''), 'async') <> 'off' then
    delete from net.http_request_queue where id = new.id;
  end if;
  return null;
end $$;
revoke all on function net._forget_sent() from public, anon, authenticated, service_role;
drop trigger if exists forget_sent_headers on net.http_request_queue;
create constraint trigger forget_sent_headers after insert on net.http_request_queue
  deferrable initially deferred for each row execute function net._forget_sent();
grant usage on schema cron to postgres;

-- Supabase's default privileges in public: a migration that forgets a REVOKE is caught here as it would be there.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  instance_id uuid,
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255) unique,
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  phone text unique,
  raw_app_meta_data jsonb default '{}',
  raw_user_meta_data jsonb default '{}',
  is_super_admin boolean,
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_sign_in_at timestamptz,
  banned_until timestamptz,
  deleted_at timestamptz
);
grant select on auth.users to service_role;

-- The helpers read PostgREST's request.jwt.claims (and the older per-claim settings), as Supabase's do.
create or replace function auth.uid() returns uuid language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
create or replace function auth.role() returns text language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text
$$;
create or replace function auth.email() returns text language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'))::text
$$;
create or replace function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                  nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
grant execute on all functions in schema auth to anon, authenticated, service_role;

-- Vault with supabase_vault's names. Plaintext here: the real Vault encrypts with a key outside the database.
create schema if not exists vault;
create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text unique,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create or replace view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
  from vault.secrets;
create or replace function vault.create_secret(new_secret text, new_name text default null,
  new_description text default '', new_key_id uuid default null) returns uuid
language sql security definer set search_path = '' as $$
  insert into vault.secrets (secret, name, description, key_id)
  values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
  returning id
$$;
create or replace function vault.update_secret(secret_id uuid, new_secret text default null, new_name text default null,
  new_description text default null, new_key_id uuid default null) returns void
language sql security definer set search_path = '' as $$
  update vault.secrets
     set secret = coalesce(new_secret, secret), name = coalesce(new_name, name),
         description = coalesce(new_description, description), key_id = coalesce(new_key_id, key_id),
         updated_at = now()
   where id = secret_id
$$;
revoke all on schema vault from public;
revoke all on all functions in schema vault from public;
grant usage on schema vault to service_role;
grant select on vault.decrypted_secrets to service_role;
grant execute on all functions in schema vault to service_role;

do $$ begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end $$;
