-- kvsync: runs still marked running whose lease has expired (the worker died or lost the database).
--   psql "$DATABASE_URL" -f sql/monitoring/stuck_runs.sql
-- The dispatcher rescues them on its next tick (kiotviet_rescue_expired); rows here for more than one
-- tick mean no dispatcher is running, or the cron tick does not reach it (see sql/cron/verify.sql).
-- While such a row exists its credential cannot start another run (one running run per credential).
-- Times in UTC (timestamptz columns print in the session's zone; set timezone = 'Asia/Ho_Chi_Minh' for Vietnam time).
-- A manual sync of such a credential rescues its expired run itself and goes ahead.
select l.id, c.retailer_name, l.sync_type, l.trigger, l.worker,
       l.started_at at time zone 'UTC' as started_utc, l.heartbeat_at at time zone 'UTC' as heartbeat_utc,
       l.lease_expires_at at time zone 'UTC' as lease_expires_utc,
       now() - l.lease_expires_at as expired_for,
       l.progress
  from public.kiotviet_sync_logs l
  left join public.kiotviet_credentials c on c.id = l.credential_id
 where l.status = 'running'
   and (l.lease_expires_at is null or l.lease_expires_at < now())
 order by l.lease_expires_at nulls first;
