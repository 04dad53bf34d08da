-- kvsync: install (or re-install) the pg_cron jobs. Idempotent: run it as often as you like.
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/cron/install.sql
-- Run it as the user the jobs should run as (postgres on Supabase; pg_cron runs a job as whoever
-- scheduled it), in the database pg_cron lives in (postgres). The migrations already do this; the file is
-- for a DBA who removed the jobs (sql/cron/unschedule.sql) or wants them back as shipped.
--
-- What it installs (the logic lives in public.kiotviet_cron_install(), migration 20261130000500_cron.sql):
--   kiotviet-sync-scheduler  */5 * * * *   select public.kiotviet_dispatch()
--   kiotviet-purge           17 20 * * *   select public.kiotviet_purge()   (03:17 in Vietnam; keeps 30 days)
-- and unschedules the earlier system's tick: any job named kiotviet-sync-scheduler in another case or under
-- another user, and any job whose command calls kiotviet-schedule-sync with an inline Authorization header
-- (that one carried the project's anon key in cron.job, where every run copied it into job_run_details).
--
-- The job text holds no URL and no key. kiotviet_dispatch() reads two Supabase Vault secrets each time it
-- runs; until both exist it only raises a NOTICE (visible in cron.job_run_details) and sends nothing.
-- Create them once (Dashboard → Project Settings → Vault, or SQL):
--
--   select vault.create_secret('https://<project-ref>.supabase.co/functions/v1/kiotviet-schedule-sync',
--                              'kiotviet_dispatcher_url', 'kvsync dispatcher URL');
--   select vault.create_secret('<the value of KIOTVIET_CRON_SECRET>', 'kiotviet_cron_secret', 'kvsync cron secret');
--
-- kiotviet_dispatcher_url is the full URL of kvsync's dispatcher route (wherever kvsync serves
-- POST /functions/v1/kiotviet-schedule-sync). kiotviet_cron_secret must equal kvsync's KIOTVIET_CRON_SECRET
-- (generate one with `openssl rand -base64 32`); never use the anon or service-role key here.
-- To change one later (a second create_secret with the same name fails; Vault names are unique):
--
--   select vault.update_secret(id, '<new value>') from vault.secrets where name = 'kiotviet_cron_secret';
--
-- Then check everything with sql/cron/verify.sql.
\set ON_ERROR_STOP on

do $$
begin
  if to_regprocedure('public.kiotviet_cron_install()') is null then
    raise exception 'public.kiotviet_cron_install() is missing: apply kvsync''s migrations first (kvsync migrate)';
  end if;
end $$;

select jobname, jobid from public.kiotviet_cron_install();
