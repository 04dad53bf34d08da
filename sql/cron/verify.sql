-- kvsync: is the cron tick installed, running, and able to reach the dispatcher?
--   psql "$DATABASE_URL" -f sql/cron/verify.sql
-- Prints no secret: for the Vault it shows only whether each secret exists and when it last changed.

\echo '== kvsync jobs (expect kiotviet-sync-scheduler */5 and kiotviet-purge, commands without URL or key)'
select jobid, jobname, schedule, command, username, active
  from cron.job
 where jobname in ('kiotviet-sync-scheduler', 'kiotviet-purge')
    or command ilike '%kiotviet%'
 order by jobid;

\echo '== earlier-system jobs still present (expect none; remove with sql/cron/install.sql)'
select jobid, jobname, username, left(regexp_replace(command, 'Bearer [^"'' ]+', 'Bearer <redacted>', 'gi'), 160) as command
  from cron.job
 where command ilike '%kiotviet-schedule-sync%'
    or (lower(jobname) = 'kiotviet-sync-scheduler' and command <> 'select public.kiotviet_dispatch()');

\echo '== last 10 runs of the kvsync jobs'
select j.jobname, d.runid, d.status, d.start_time, d.end_time - d.start_time as took, left(d.return_message, 200) as return_message
  from cron.job_run_details d
  join cron.job j on j.jobid = d.jobid
 where j.jobname in ('kiotviet-sync-scheduler', 'kiotviet-purge')
 order by d.start_time desc
 limit 10;

\echo '== Vault secrets kiotviet_dispatch() needs (expect both present)'
select n.name,
       s.id is not null as present,
       coalesce(length(s.decrypted_secret) > 0, false) as non_empty,
       s.updated_at
  from (values ('kiotviet_dispatcher_url'), ('kiotviet_cron_secret')) as n(name)
  left join vault.decrypted_secrets s on s.name = n.name
 order by n.name;

\echo '== last 10 dispatcher replies (expect 202; 401 = the cron secrets differ, null status = unreachable)'
select r.id, r.created, r.status_code, r.timed_out, r.error_msg, left(r.content, 200) as content
  from net._http_response r
 order by r.created desc
 limit 10;

\echo '== pg_cron scheduler process (expect one row)'
select pid, application_name, backend_start from pg_stat_activity where application_name ilike 'pg_cron scheduler';
