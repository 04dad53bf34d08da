-- kvsync: every schedule with its shop, whether it is due, how its last run went, and its own run in
-- progress.
--   psql "$DATABASE_URL" -f sql/monitoring/schedules.sql
-- is_due = enabled, credential active, next_run_at reached (the rule the dispatcher claims by).
-- last_sync is when the last successful run finished (scheduled or manual): the ERP card's "Lần cuối".
-- Times are in each schedule's own zone, named (…_local); seconds_until_next_run is negative when overdue.
select schedule_id, retailer_name, credential_active, sync_type, frequency, custom_interval_hours, time_of_day,
       timezone, enabled, paused_reason,
       is_due,
       next_run_local,
       seconds_until_next_run,
       next_retry_at is not null as retrying,
       last_run_local as last_sync_local,
       last_status, consecutive_failures, left(last_error, 120) as last_error,
       running_log_id is not null as running,
       credential_busy_log_id is not null as waiting_for_another_run
  from public.kiotviet_schedule_status
 order by is_due desc, next_run_at nulls last;
