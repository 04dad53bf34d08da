-- kvsync: the last 10 runs of kvsync's pg_cron jobs, and the dispatcher's last 10 replies to the tick.
--   psql "$DATABASE_URL" -f sql/monitoring/cron_runs.sql
-- A tick that "succeeded" only queued the POST; whether kvsync accepted it shows in net._http_response
-- (202 expected; 401 = kiotviet_cron_secret differs from KIOTVIET_CRON_SECRET; no status = unreachable).
-- Times in UTC, as pg_cron schedules (*/5 is every five minutes whatever the zone).
select j.jobname, d.runid, d.status, d.start_time at time zone 'UTC' as start_utc, d.end_time - d.start_time as took, left(d.return_message, 200) as return_message
  from cron.job_run_details d
  join cron.job j on j.jobid = d.jobid
 where j.jobname in ('kiotviet-sync-scheduler', 'kiotviet-purge')
 order by d.start_time desc
 limit 10;

select r.id, r.created at time zone 'UTC' as created_utc, r.status_code, r.timed_out, r.error_msg, left(r.content, 200) as content
  from net._http_response r
 order by r.created desc
 limit 10;
