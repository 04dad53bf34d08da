-- A per-credential KiotViet API budget shared by every kvsync process (DESIGN.md §5): KiotViet allows a
-- shop about 5,000 GET requests in any hour, and each replica's own in-memory limiter would let N replicas
-- spend N times that. Processes take calls from the budget in small batches here, so all of them together
-- stay under it; Postgres, the only coordinator, is where the count lives.
--
-- The window slides: a grant counts for one hour from when it was made. A process returns what it did not
-- use of its last grant when its run ends, so a batch costs the budget only the calls made.

create table if not exists public.kiotviet_api_grants (
  id bigint generated always as identity primary key,
  credential_id uuid not null references public.kiotviet_credentials (id) on delete cascade,
  granted_at timestamptz not null default now(),
  n integer not null,
  constraint kiotviet_api_grants_n_range check (n between 0 and 1000)
);
create index if not exists kiotviet_api_grants_credential_idx on public.kiotviet_api_grants (credential_id, granted_at);
comment on table public.kiotviet_api_grants is
  'kvsync: KiotViet API calls granted to a process in the last hour, per credential (kiotviet_take_api_calls)';

-- kvsync's service_role only, like kiotviet_sync_state: RLS on, no policy.
alter table public.kiotviet_api_grants enable row level security;
revoke all on table public.kiotviet_api_grants from public, anon, authenticated;
grant select, insert, update, delete on table public.kiotviet_api_grants to service_role;

-- Takes up to p_want calls (at most 1,000) from the credential's budget of p_limit_per_hour calls in any
-- hour. Returns the grant's id and size; when nothing is left, granted 0 and resumes_at, when the oldest
-- grant of the window expires. Takers of one credential queue on a transaction-scoped advisory lock, so
-- two replicas can never both be given the same free calls; other credentials are not held up.
create or replace function public.kiotviet_take_api_calls(
  p_credential_id uuid, p_want integer, p_limit_per_hour integer
) returns table (grant_id bigint, granted integer, resumes_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
declare
  used bigint;
  n integer;
  g bigint;
begin
  if p_credential_id is null then
    raise exception 'kiotviet_take_api_calls: a credential is required' using errcode = '22023';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('kiotviet_api_budget:' || p_credential_id::text, 0));
  delete from public.kiotviet_api_grants x
   where x.credential_id = p_credential_id and x.granted_at <= now() - interval '1 hour';
  select coalesce(sum(x.n), 0) into used from public.kiotviet_api_grants x where x.credential_id = p_credential_id;
  n := least(greatest(coalesce(p_want, 0), 0), 1000,
             greatest(least(coalesce(p_limit_per_hour, 0), 1000000)::bigint - used, 0)::integer);
  if n > 0 then
    insert into public.kiotviet_api_grants (credential_id, n) values (p_credential_id, n) returning id into g;
    return query select g, n, null::timestamptz;
  else
    return query select null::bigint, 0,
      coalesce((select min(x.granted_at) from public.kiotviet_api_grants x
                 where x.credential_id = p_credential_id and x.n > 0) + interval '1 hour', now());
  end if;
end $$;

-- Gives back the calls of a grant that were not used (the run ended first); returns what the grant
-- still counts (null once it has left the window).
create or replace function public.kiotviet_return_api_calls(p_grant_id bigint, p_unused integer) returns integer
language sql volatile security definer set search_path = '' as $$
  update public.kiotviet_api_grants set n = greatest(n - least(greatest(coalesce(p_unused, 0), 0), 1000), 0)
   where id = p_grant_id
  returning n
$$;

revoke all on function public.kiotviet_take_api_calls(uuid, integer, integer) from public, anon, authenticated;
revoke all on function public.kiotviet_return_api_calls(bigint, integer) from public, anon, authenticated;
grant execute on function public.kiotviet_take_api_calls(uuid, integer, integer) to service_role;
grant execute on function public.kiotviet_return_api_calls(bigint, integer) to service_role;
