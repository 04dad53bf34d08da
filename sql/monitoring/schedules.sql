-- kvsync: every schedule with its shop, whether it is due, and how its last run went.
--   psql "$DATABASE_URL" -f sql/monitoring/schedules.sql
-- is_due = enabled, credential active, next_run_at reached (the rule the dispatcher claims by).
-- Times are shown in Vietnam time; seconds_until_next_run is negative when overdue.
select schedule_id, retailer_name, credential_active, sync_type, frequency, custom_interval_hours, time_of_day, enabled,
       is_due,
       next_run_at at time zone 'Asia/Ho_Chi_Minh' as next_run_vn,
       seconds_until_next_run,
       last_run_at at time zone 'Asia/Ho_Chi_Minh' as last_run_vn,
       last_status, consecutive_failures, left(last_error, 120) as last_error,
       running_log_id is not null as running
  from public.kiotviet_schedule_status
 order by is_due desc, next_run_at nulls last;
