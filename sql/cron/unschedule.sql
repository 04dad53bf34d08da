-- kvsync: remove kvsync's pg_cron jobs (the tick and the purge). Idempotent: a missing job is not an error.
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/cron/unschedule.sql
-- Scheduling stops at once; a run in progress finishes. The Vault secrets, the functions and the run
-- history stay; sql/cron/install.sql puts the jobs back.
-- cron.unschedule(name) raises on an unknown name, so the jobs are looked up first.
select jobname, cron.unschedule(jobid) as unscheduled
  from cron.job
 where jobname in ('kiotviet-sync-scheduler', 'kiotviet-purge')
   and username = current_user;
