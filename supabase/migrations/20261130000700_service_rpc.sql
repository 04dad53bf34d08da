-- RPCs the HTTP functions and the CLI need beyond the sync itself: the admin check for a caller's JWT,
-- the outcome of a run for failure alerts, and the status table. service_role only, like the others.

-- Is the user behind these JWT claims an ERP admin? The same rule the RLS policies use
-- (kiotviet_is_admin: public.is_admin(auth.uid()) where the ERP has it, else app_metadata.role), asked on
-- the caller's behalf: the claims are set for this transaction only, as PostgREST sets them.
create or replace function public.kiotviet_caller_is_admin(p_claims jsonb) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform set_config('request.jwt.claims', coalesce(p_claims, '{}'::jsonb)::text, true);
  return public.kiotviet_is_admin();
end $$;

-- What a finished run means for alerts: its schedule's state and the status of the run of the same
-- schedule before it. An alert fires when a schedule starts failing (this run failed, the one before did
-- not) and when it recovers (this one succeeded, the one before failed): never on every retry.
create or replace function public.kiotviet_run_outcome(p_run_id uuid)
returns table (run_id uuid, schedule_id uuid, retailer_name text, sync_type text, status text,
               error_message text, consecutive_failures integer, previous_status text, next_run_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select l.id, l.schedule_id, c.retailer_name, l.sync_type, l.status, l.error_message,
         coalesce(s.consecutive_failures, 0), prev.status, s.next_run_at
    from public.kiotviet_sync_logs l
    left join public.kiotviet_credentials c on c.id = l.credential_id
    left join public.kiotviet_sync_schedules s on s.id = l.schedule_id
    left join lateral (
      select p.status from public.kiotviet_sync_logs p
       where p.schedule_id = l.schedule_id and p.id <> l.id and p.status <> 'running'
         and p.started_at <= l.started_at
       order by p.started_at desc limit 1
    ) prev on l.schedule_id is not null
   where l.id = p_run_id
$$;

-- The rows of `kvsync status`: kiotviet_schedule_status for the service role.
create or replace function public.kiotviet_status()
returns setof public.kiotviet_schedule_status
language sql stable security definer set search_path = '' as $$
  select * from public.kiotviet_schedule_status order by retailer_name, sync_type
$$;

-- A run's log row, for `kvsync sync` to show progress and the reply of a fanned-out run.
create or replace function public.kiotviet_get_run(p_run_id uuid)
returns table (id uuid, credential_id uuid, sync_type text, status text, trigger text, records_synced integer,
               api_calls integer, stats jsonb, progress jsonb, error_message text, started_at timestamptz,
               completed_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select l.id, l.credential_id, l.sync_type, l.status, l.trigger, l.records_synced, l.api_calls, l.stats,
         l.progress, l.error_message, l.started_at, l.completed_at
    from public.kiotviet_sync_logs l where l.id = p_run_id
$$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_caller_is_admin(jsonb)', 'public.kiotviet_run_outcome(uuid)',
                           'public.kiotviet_status()', 'public.kiotviet_get_run(uuid)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
