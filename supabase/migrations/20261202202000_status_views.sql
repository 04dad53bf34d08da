-- What an operator and the ERP see of a schedule (kvsync status, schedule list, the views):
--   * each run on its own schedule's row: a scheduled run on its schedule, a manual run on the schedule of
--     its credential and sync type (before, the credential's run was repeated on every one of its rows);
--     credential_busy_log_id names a run of another schedule that holds the credential (one run per
--     credential), which is why a due schedule may wait;
--   * a pause (paused_reason, paused_at), the grid (last_slot_at), and when a failing schedule retries
--     (next_retry_at);
--   * times also as text in the schedule's own zone, the zone named ("2026-12-03 02:00 Asia/Ho_Chi_Minh").

create or replace function public.kiotviet_local_time(p_at timestamptz, p_timezone text) returns text
language sql stable set search_path = '' as $$
  select to_char(p_at at time zone coalesce(p_timezone, 'Asia/Ho_Chi_Minh'), 'YYYY-MM-DD HH24:MI')
         || ' ' || coalesce(p_timezone, 'Asia/Ho_Chi_Minh')
$$;
grant execute on function public.kiotviet_local_time(timestamptz, text) to authenticated, service_role;

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
  r.progress as running_progress,
  s.paused_reason,
  s.paused_at,
  s.last_slot_at,
  case when s.consecutive_failures > 0 and s.enabled then s.next_run_at end as next_retry_at,
  (select b.id from public.kiotviet_sync_logs b
    where b.credential_id = s.credential_id and b.status = 'running' and b.id is distinct from r.id
    limit 1) as credential_busy_log_id,
  public.kiotviet_local_time(s.next_run_at, s.timezone) as next_run_local,
  public.kiotviet_local_time(s.last_run_at, s.timezone) as last_run_local
from public.kiotviet_sync_schedules s
left join public.kiotviet_credentials c on c.id = s.credential_id
left join lateral (
  select l.id, l.sync_type, l.trigger, l.worker, l.started_at, l.heartbeat_at, l.lease_expires_at, l.progress
    from public.kiotviet_sync_logs l
   where l.credential_id = s.credential_id and l.status = 'running'
     and (l.schedule_id = s.id or (l.schedule_id is null and l.sync_type = s.sync_type))
   order by l.started_at desc
   limit 1
) r on true;
comment on view public.kiotviet_schedule_status is
  'kvsync: per schedule, due or not, next run (also in its own zone), last sync, failures and next retry, pause, and its own running run';

revoke all on public.kiotviet_schedule_status from public, anon, authenticated, service_role;
grant select on public.kiotviet_schedule_status to authenticated, service_role;
