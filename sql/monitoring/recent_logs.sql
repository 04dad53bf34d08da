-- kvsync: the last 20 runs, newest first, with what they did and how long they took.
--   psql "$DATABASE_URL" -f sql/monitoring/recent_logs.sql
select l.id, c.retailer_name, l.sync_type, l.trigger, l.status, l.worker,
       l.started_at at time zone 'Asia/Ho_Chi_Minh' as started_vn,
       coalesce(l.completed_at, now()) - l.started_at as took,
       l.records_synced, l.api_calls, l.stats, l.progress,
       left(l.error_message, 160) as error_message
  from public.kiotviet_sync_logs l
  left join public.kiotviet_credentials c on c.id = l.credential_id
 order by l.started_at desc
 limit 20;
