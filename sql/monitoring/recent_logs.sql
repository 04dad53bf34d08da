-- kvsync: the last 20 runs, scheduled (trigger cron) and manual, newest first, with what they did, how long
-- they took, and why they failed. Times in Vietnam time (Asia/Ho_Chi_Minh, the shops' zone) and UTC.
--   psql "$DATABASE_URL" -f sql/monitoring/recent_logs.sql
select l.id, c.retailer_name, l.sync_type, l.trigger, l.status, l.worker,
       l.started_at at time zone 'Asia/Ho_Chi_Minh' as started_asia_ho_chi_minh,
       l.started_at at time zone 'UTC' as started_utc,
       coalesce(l.completed_at, now()) - l.started_at as took,
       l.records_synced, l.api_calls, l.stats, l.progress,
       left(l.error_message, 160) as error_message
  from public.kiotviet_sync_logs l
  left join public.kiotviet_credentials c on c.id = l.credential_id
 order by l.started_at desc
 limit 20;
