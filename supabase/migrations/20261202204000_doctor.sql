-- What `kvsync doctor` asks of the real path, over either backend (a direct connection or PostgREST):
-- runs that are still 'running' but whose worker has stopped beating. service_role only.
create or replace function public.kiotviet_stale_runs(p_seconds integer default 60)
returns table (run_id uuid, credential_id uuid, retailer_name text, sync_type text, worker text,
               heartbeat_at timestamptz, lease_expires_at timestamptz, seconds_since_heartbeat bigint)
language sql stable security definer set search_path = '' as $$
  select l.id, l.credential_id, c.retailer_name, l.sync_type, l.worker, l.heartbeat_at, l.lease_expires_at,
         floor(extract(epoch from (now() - coalesce(l.heartbeat_at, l.started_at))))::bigint
    from public.kiotviet_sync_logs l
    left join public.kiotviet_credentials c on c.id = l.credential_id
   where l.status = 'running'
     and coalesce(l.heartbeat_at, l.started_at) < now() - make_interval(secs => greatest(coalesce(p_seconds, 60), 1))
   order by l.started_at
$$;
revoke all on function public.kiotviet_stale_runs(integer) from public, anon, authenticated;
grant execute on function public.kiotviet_stale_runs(integer) to service_role;
