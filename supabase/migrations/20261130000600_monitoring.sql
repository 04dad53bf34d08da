-- Views for watching the scheduler, from psql, the CLI (`kvsync status`) or an admin page.
-- security_invoker = true: a view otherwise runs with its owner's rights and would bypass RLS, showing every
-- shop's schedules and errors to anyone allowed to select it. With it, an admin sees rows through the
-- tables' admin policies, a non-admin sees none, anon is refused outright, and service_role sees all.

------------------------------------------------------------------------------------------------------------
-- One row per schedule: is it due, when does it run next, how did the last run end, and what the run in
-- progress for its credential is doing. The running run is looked up per credential, not per schedule:
-- the one-running-per-credential index is what keeps a due schedule waiting, whatever started that run.
-- is_due follows the scheduling rules: enabled, an active credential, and next_run_at reached.
create or replace view public.kiotviet_schedule_status with (security_invoker = true) as
select
  s.id as schedule_id,
  s.credential_id,
  c.retailer_name,
  coalesce(c.is_active, false) as credential_active,
  s.sync_type,
  s.frequency,
  s.custom_interval_hours,
  s.time_of_day,
  s.timezone,
  s.enabled,
  (s.enabled and coalesce(c.is_active, false) and s.next_run_at <= now()) as is_due,
  s.next_run_at,
  -- negative when overdue
  floor(extract(epoch from (s.next_run_at - now())))::bigint as seconds_until_next_run,
  s.last_run_at,
  s.last_success_at,
  s.last_status,
  s.last_error,
  s.consecutive_failures,
  r.id as running_log_id,
  r.sync_type as running_sync_type,
  r.trigger as running_trigger,
  r.worker as running_worker,
  r.started_at as running_started_at,
  r.heartbeat_at as running_heartbeat_at,
  r.lease_expires_at as running_lease_expires_at,
  r.progress as running_progress
from public.kiotviet_sync_schedules s
left join public.kiotviet_credentials c on c.id = s.credential_id
left join lateral (
  select l.id, l.sync_type, l.trigger, l.worker, l.started_at, l.heartbeat_at, l.lease_expires_at, l.progress
    from public.kiotviet_sync_logs l
   where l.credential_id = s.credential_id and l.status = 'running'
   order by l.started_at desc
   limit 1
) r on true;
comment on view public.kiotviet_schedule_status is
  'kvsync: per schedule, due or not, next run, last outcome, failures and the credential''s running run';

------------------------------------------------------------------------------------------------------------
-- Per schedule, over the last 7 and 30 days (by started_at): runs, success rate, median and p95 duration,
-- rows and API calls. success_rate = success / (success + partial + failed): runs still going and runs
-- skipped (nothing was attempted) say nothing about whether syncing works; for the same reason durations
-- count success, partial and failed runs only.
create or replace view public.kiotviet_run_stats with (security_invoker = true) as
select
  s.id as schedule_id,
  s.credential_id,
  c.retailer_name,
  s.sync_type,
  count(l.id) filter (where l.started_at >= now() - interval '7 days') as runs_7d,
  count(l.id) filter (where l.started_at >= now() - interval '7 days' and l.status = 'failed') as failed_7d,
  round(count(l.id) filter (where l.started_at >= now() - interval '7 days' and l.status = 'success')::numeric
        / nullif(count(l.id) filter (where l.started_at >= now() - interval '7 days'
                                     and l.status in ('success', 'partial', 'failed')), 0), 4) as success_rate_7d,
  round(percentile_cont(0.5) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.started_at >= now() - interval '7 days' and l.status in ('success', 'partial', 'failed')
            and l.completed_at is not null)::numeric, 3) as p50_seconds_7d,
  round(percentile_cont(0.95) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.started_at >= now() - interval '7 days' and l.status in ('success', 'partial', 'failed')
            and l.completed_at is not null)::numeric, 3) as p95_seconds_7d,
  coalesce(sum(l.records_synced) filter (where l.started_at >= now() - interval '7 days'), 0) as records_synced_7d,
  coalesce(sum(l.api_calls) filter (where l.started_at >= now() - interval '7 days'), 0) as api_calls_7d,
  count(l.id) as runs_30d,
  count(l.id) filter (where l.status = 'failed') as failed_30d,
  round(count(l.id) filter (where l.status = 'success')::numeric
        / nullif(count(l.id) filter (where l.status in ('success', 'partial', 'failed')), 0), 4) as success_rate_30d,
  round(percentile_cont(0.5) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.status in ('success', 'partial', 'failed') and l.completed_at is not null)::numeric, 3) as p50_seconds_30d,
  round(percentile_cont(0.95) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.status in ('success', 'partial', 'failed') and l.completed_at is not null)::numeric, 3) as p95_seconds_30d,
  coalesce(sum(l.records_synced), 0) as records_synced_30d,
  coalesce(sum(l.api_calls), 0) as api_calls_30d
from public.kiotviet_sync_schedules s
left join public.kiotviet_credentials c on c.id = s.credential_id
left join public.kiotviet_sync_logs l on l.schedule_id = s.id and l.started_at >= now() - interval '30 days'
group by s.id, s.credential_id, c.retailer_name, s.sync_type;
comment on view public.kiotviet_run_stats is
  'kvsync: per schedule over 7 and 30 days: runs, success rate, p50/p95 duration, rows and API calls';

-- Supabase's default privileges give the API roles ALL on new relations in public: take that back.
revoke all on public.kiotviet_schedule_status, public.kiotviet_run_stats from public, anon, authenticated, service_role;
grant select on public.kiotviet_schedule_status, public.kiotviet_run_stats to authenticated, service_role;
