-- KiotViet webhooks: where a shop's signing secret lives, what is registered with KiotViet, and the
-- events received. An event is stored (deduplicated) before KiotViet gets its 200 and applied afterwards
-- by whichever kvsync replica claims it (FOR UPDATE SKIP LOCKED), so a reply never waits for sync work
-- and a replica that dies after the reply loses nothing: the event stays pending (or its claim expires).

------------------------------------------------------------------------------------------------------------
-- One per credential: the secret KiotViet signs with (ciphertext, bound to this row and column like the
-- other secrets; the key never enters the database) and KiotViet's numeric retailer id, which the
-- events' Action carries ("product.update.<retailerId>") and which KiotViet tells us when we register.
create table if not exists public.kiotviet_webhook_endpoints (
  credential_id uuid primary key references public.kiotviet_credentials (id) on delete cascade,
  retailer_id bigint,
  encrypted_secret text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists kiotviet_webhook_endpoints_retailer_idx on public.kiotviet_webhook_endpoints (retailer_id);

-- What is registered with KiotViet: one webhook per event type per shop (KiotViet's own rule).
-- is_active false: KiotViet disabled it (it stops delivering after any 4xx) or we saw it missing.
create table if not exists public.kiotviet_webhook_registrations (
  credential_id uuid not null references public.kiotviet_credentials (id) on delete cascade,
  event_type text not null,
  kiotviet_webhook_id bigint,
  url text not null,
  is_active boolean not null default true,
  registered_at timestamptz not null default now(),
  checked_at timestamptz,
  problem text,
  primary key (credential_id, event_type)
);

-- Events as received. dedupe_key is KiotViet's delivery Id (the same on every Attempt), or, for the bare
-- {"RemoveId": [...]} bodies that carry none, the event type and a hash of the body.
-- status: pending → applying (claimed by a worker until lease_expires_at) → applied; a failure goes back
-- to pending with next_attempt_at pushed out, and after max attempts to parked with its reason.
create table if not exists public.kiotviet_webhook_events (
  id uuid primary key default gen_random_uuid(),
  credential_id uuid not null references public.kiotviet_credentials (id) on delete cascade,
  dedupe_key text not null,
  kiotviet_id text,
  attempt integer,
  event_types text[] not null default '{}',
  body jsonb not null,
  received_at timestamptz not null default now(),
  deliveries integer not null default 1,
  status text not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  worker text,
  lease_expires_at timestamptz,
  applied_at timestamptz,
  last_error text,
  result jsonb,
  constraint kiotviet_webhook_events_status_check check (status in ('pending', 'applying', 'applied', 'parked')),
  constraint kiotviet_webhook_events_dedupe unique (credential_id, dedupe_key)
);
create index if not exists kiotviet_webhook_events_due_idx
  on public.kiotviet_webhook_events (next_attempt_at) where status = 'pending';
create index if not exists kiotviet_webhook_events_lease_idx
  on public.kiotviet_webhook_events (lease_expires_at) where status = 'applying';
create index if not exists kiotviet_webhook_events_received_idx
  on public.kiotviet_webhook_events (credential_id, received_at desc);

-- kvsync's own tables: RLS on, no policy, service_role only (like kiotviet_sync_state). Admins read them
-- through kvsync status / doctor, never the secret.
alter table public.kiotviet_webhook_endpoints enable row level security;
alter table public.kiotviet_webhook_registrations enable row level security;
alter table public.kiotviet_webhook_events enable row level security;
revoke all on table public.kiotviet_webhook_endpoints, public.kiotviet_webhook_registrations,
  public.kiotviet_webhook_events from public, anon, authenticated, service_role;
grant select, insert, update, delete on table public.kiotviet_webhook_endpoints,
  public.kiotviet_webhook_registrations, public.kiotviet_webhook_events to service_role;

------------------------------------------------------------------------------------------------------------
-- The endpoint a delivery is for: by credential (the id kvsync puts in the URL it registers) or by the
-- retailer id in the event's Action. Both given: they must agree. Only active credentials receive.
create or replace function public.kiotviet_webhook_endpoint(p_credential_id uuid, p_retailer_id bigint)
returns table (credential_id uuid, retailer_id bigint, encrypted_secret text)
language sql stable security definer set search_path = '' as $$
  select e.credential_id, e.retailer_id, e.encrypted_secret
    from public.kiotviet_webhook_endpoints e
    join public.kiotviet_credentials c on c.id = e.credential_id and c.is_active
   where (p_credential_id is not null or p_retailer_id is not null)
     and (p_credential_id is null or e.credential_id = p_credential_id)
     -- a retailer id not learnt yet (registration without KiotViet's reply) leaves the URL's credential
     -- and the signature to decide
     and (p_retailer_id is null or e.retailer_id = p_retailer_id
          or (p_credential_id is not null and e.retailer_id is null))
   order by e.updated_at desc
   limit 1
$$;

-- Sets (or replaces) a credential's signing secret and retailer id; kvsync webhooks register does this
-- before it registers the hooks with KiotViet. A null retailer id keeps the one known.
create or replace function public.kiotviet_webhook_set_endpoint(p_credential_id uuid, p_retailer_id bigint,
  p_encrypted_secret text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if p_encrypted_secret is null or p_encrypted_secret = '' then
    raise exception 'a webhook endpoint needs its encrypted secret' using errcode = '22023';
  end if;
  if not exists (select from public.kiotviet_credentials where id = p_credential_id) then
    raise exception 'credential % does not exist', p_credential_id using errcode = 'P0002';
  end if;
  insert into public.kiotviet_webhook_endpoints as e (credential_id, retailer_id, encrypted_secret)
  values (p_credential_id, p_retailer_id, p_encrypted_secret)
  on conflict (credential_id) do update
    set retailer_id = coalesce(excluded.retailer_id, e.retailer_id),
        encrypted_secret = excluded.encrypted_secret, updated_at = now();
end $$;

-- Stores one verified delivery. A repeated delivery (same dedupe key: KiotViet retrying, or a duplicate)
-- stores nothing new and only counts; returns the event's id and whether it was new.
create or replace function public.kiotviet_webhook_receive(p_credential_id uuid, p_dedupe_key text,
  p_kiotviet_id text, p_attempt integer, p_event_types text[], p_body jsonb)
returns table (event_id uuid, inserted boolean)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if p_dedupe_key is null or p_dedupe_key = '' then
    raise exception 'a webhook event needs a dedupe key' using errcode = '22023';
  end if;
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    raise exception 'a webhook body must be a JSON object' using errcode = '22023';
  end if;
  return query
  insert into public.kiotviet_webhook_events as e (credential_id, dedupe_key, kiotviet_id, attempt, event_types, body)
  values (p_credential_id, p_dedupe_key, p_kiotviet_id, p_attempt, coalesce(p_event_types, '{}'), p_body)
  on conflict (credential_id, dedupe_key) do update
    set deliveries = e.deliveries + 1, attempt = greatest(e.attempt, excluded.attempt)
  returning e.id, (e.xmax = 0);
end $$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_webhook_endpoint(uuid, bigint)',
                           'public.kiotviet_webhook_set_endpoint(uuid, bigint, text)',
                           'public.kiotviet_webhook_receive(uuid, text, text, integer, text[], jsonb)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
