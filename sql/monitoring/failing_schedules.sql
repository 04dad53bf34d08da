-- kvsync: schedules whose last runs failed or that are paused, worst first, with the reason and the retry
-- time backoff chose. Runs started by hand (the ERP's button, kvsync sync) count for the schedule of their
-- credential and sync type.
--   psql "$DATABASE_URL" -f sql/monitoring/failing_schedules.sql
-- consecutive_failures resets on the next success; the retry waits 5 min, 10, 20 … up to one interval.
-- Times are in each schedule's own zone, named in the text (…_local) and in the timezone column.
select s.schedule_id, s.retailer_name, s.sync_type, s.enabled, s.credential_active,
       s.paused_reason,
       s.consecutive_failures, s.last_status,
       s.timezone,
       s.last_run_local as last_sync_local,
       r.next_retry_local,
       coalesce(s.last_error, r.last_failure_reason) as failure_reason,
       r.last_failed_local,
       r.success_rate_7d, r.runs_7d, r.manual_runs_7d
  from public.kiotviet_schedule_status s
  left join public.kiotviet_run_stats r on r.schedule_id = s.schedule_id
 where s.consecutive_failures > 0 or s.last_status in ('failed', 'partial') or s.paused_reason is not null
    or r.failed_7d > 0
 order by s.paused_reason is null, s.consecutive_failures desc, s.last_run_at nulls first;
