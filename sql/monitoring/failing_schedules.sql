-- kvsync: schedules whose last runs failed, worst first, with their error and the retry time backoff chose.
--   psql "$DATABASE_URL" -f sql/monitoring/failing_schedules.sql
-- consecutive_failures resets on the next success; the retry waits 5 min, 10, 20 … up to one interval.
select s.schedule_id, s.retailer_name, s.sync_type, s.enabled, s.credential_active,
       s.consecutive_failures, s.last_status,
       s.last_success_at at time zone 'Asia/Ho_Chi_Minh' as last_success_vn,
       s.next_run_at at time zone 'Asia/Ho_Chi_Minh' as next_retry_vn,
       s.last_error,
       r.success_rate_7d, r.runs_7d
  from public.kiotviet_schedule_status s
  left join public.kiotviet_run_stats r on r.schedule_id = s.schedule_id
 where s.consecutive_failures > 0 or s.last_status in ('failed', 'partial')
 order by s.consecutive_failures desc, s.last_success_at nulls first;
