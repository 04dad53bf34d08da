-- The 5-minute tick and the daily purge, on pg_cron.
--
-- The tick's job text is only `select public.kiotviet_dispatch()`: the dispatcher's URL and the secret it
-- checks live in Supabase Vault and are read when the job runs. So cron.job (readable by many roles,
-- copied into cron.job_run_details on every run) never holds a key or a URL, the secret can be rotated
-- without touching the job, and a migration needs no secret values.
--
-- Vault secrets (create once per project; see sql/cron/install.sql):
--   kiotviet_dispatcher_url  the full URL of the dispatcher route, e.g.
--                            https://<project-ref>.supabase.co/functions/v1/kiotviet-schedule-sync
--   kiotviet_cron_secret     the same value as kvsync's KIOTVIET_CRON_SECRET (a long random string; not the
--                            anon key, not the service-role key)

------------------------------------------------------------------------------------------------------------
-- One POST to the dispatcher. Returns pg_net's request id, or null (and a NOTICE naming the missing
-- secret and how to create it) when a Vault secret is missing: a job that fails every 5 minutes with a
-- cryptic error helps nobody, one that says what to do does. The body is always {}: the dispatcher decides
-- what is due from the database, never from the caller.
-- The timeout is explicit because pg_net's default changed across versions (1 s, 2 s, 5 s); the
-- dispatcher answers 202 as soon as it has claimed, so 10 s is ample and still frees pg_net's worker.
-- SECURITY DEFINER so that the caller needs no access to Vault; only postgres and service_role may call it.
create or replace function public.kiotviet_dispatch() returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_url text;
  v_secret text;
  v_missing boolean := false;
begin
  select s.decrypted_secret into v_url from vault.decrypted_secrets s
   where s.name = 'kiotviet_dispatcher_url' order by s.updated_at desc limit 1;
  select s.decrypted_secret into v_secret from vault.decrypted_secrets s
   where s.name = 'kiotviet_cron_secret' order by s.updated_at desc limit 1;

  if coalesce(v_url, '') = '' then
    v_missing := true;
    raise notice 'kiotviet_dispatch: Vault secret "kiotviet_dispatcher_url" is missing; create it with: '
      'select vault.create_secret(''https://<project-ref>.supabase.co/functions/v1/kiotviet-schedule-sync'', '
      '''kiotviet_dispatcher_url'', ''kvsync dispatcher URL'');';
  end if;
  if coalesce(v_secret, '') = '' then
    v_missing := true;
    raise notice 'kiotviet_dispatch: Vault secret "kiotviet_cron_secret" is missing; create it with: '
      'select vault.create_secret(''<the value of KIOTVIET_CRON_SECRET>'', ''kiotviet_cron_secret'', '
      '''kvsync cron secret'');';
  end if;
  if v_missing then
    return null;
  end if;

  return net.http_post(
    url := v_url,
    body := '{}'::jsonb,
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_secret),
    timeout_milliseconds := 10000
  );
end $$;
comment on function public.kiotviet_dispatch() is
  'kvsync: POST {} to the Vault secret kiotviet_dispatcher_url with Bearer kiotviet_cron_secret; null when one is missing';
revoke all on function public.kiotviet_dispatch() from public, anon, authenticated;
grant execute on function public.kiotviet_dispatch() to service_role;

------------------------------------------------------------------------------------------------------------
-- Retention. pg_cron keeps every run in cron.job_run_details forever (288 rows a day for the tick alone),
-- pg_net's response table grows between its own TTL sweeps (and forever where there is none), and the run
-- log grows by one row per run. Deletes what finished before now() - p_keep; a run still marked running is
-- never deleted, however old: it is either alive or waiting for rescue, and either way someone must see it.
-- Refuses a retention under one day, so a slip of the finger cannot wipe the history.
create or replace function public.kiotviet_purge(p_keep interval default '30 days') returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_cutoff timestamptz;
  v_cron bigint;
  v_net bigint;
  v_logs bigint;
begin
  if p_keep is null or p_keep < interval '1 day' then
    raise exception 'kiotviet_purge: p_keep must be at least 1 day (got %)', p_keep using errcode = '22023';
  end if;
  v_cutoff := now() - p_keep;

  delete from cron.job_run_details d
   where coalesce(d.end_time, d.start_time) < v_cutoff
     and d.status is distinct from 'running';
  get diagnostics v_cron = row_count;

  delete from net._http_response r where r.created < v_cutoff;
  get diagnostics v_net = row_count;

  delete from public.kiotviet_sync_logs l
   where l.status <> 'running'
     and coalesce(l.completed_at, l.started_at) < v_cutoff;
  get diagnostics v_logs = row_count;

  return jsonb_build_object('cutoff', v_cutoff, 'cron_job_run_details', v_cron,
                            'net_http_response', v_net, 'kiotviet_sync_logs', v_logs);
end $$;
comment on function public.kiotviet_purge(interval) is
  'kvsync: delete cron.job_run_details, net._http_response and finished kiotviet_sync_logs older than p_keep';
revoke all on function public.kiotviet_purge(interval) from public, anon, authenticated;
grant execute on function public.kiotviet_purge(interval) to service_role;

------------------------------------------------------------------------------------------------------------
-- Installs (or re-installs) both jobs; the migration below and sql/cron/install.sql both call it, so the
-- job setup is written once. SECURITY INVOKER on purpose: pg_cron runs a job as the user who scheduled it,
-- so the jobs belong to whoever installs them (postgres, as migrations run).
--
-- The earlier system scheduled `kiotviet-sync-scheduler` with the project's anon JWT and URL inline in the
-- command. cron.schedule(name, …) replaces a job of that exact name and user only, so first unschedule
-- every job that could be a copy of it: the same name in another case or under another user, or any job
-- whose command calls kiotviet-schedule-sync with an inline Authorization header.
create or replace function public.kiotviet_cron_install() returns table (jobname text, jobid bigint)
language plpgsql volatile set search_path = '' as $$
declare
  j record;
begin
  for j in select c.jobid, c.jobname, c.username from cron.job c
            where (lower(c.jobname) = 'kiotviet-sync-scheduler'
                   or (c.command ilike '%kiotviet-schedule-sync%' and c.command ilike '%authorization%'))
              and not (c.jobname = 'kiotviet-sync-scheduler' and c.username = current_user
                       and c.command = 'select public.kiotviet_dispatch()')
  loop
    raise notice 'kvsync: unscheduling earlier job % ("%", user %)', j.jobid, j.jobname, j.username;
    perform cron.unschedule(j.jobid);
  end loop;

  jobname := 'kiotviet-sync-scheduler';
  jobid := cron.schedule('kiotviet-sync-scheduler', '*/5 * * * *', 'select public.kiotviet_dispatch()');
  return next;
  -- 20:17 UTC is 03:17 in Vietnam (UTC+7, no DST): the shops are closed and no daily sync sits on :00.
  jobname := 'kiotviet-purge';
  jobid := cron.schedule('kiotviet-purge', '17 20 * * *', 'select public.kiotviet_purge()');
  return next;
end $$;
comment on function public.kiotviet_cron_install() is
  'kvsync: (re)install the pg_cron jobs kiotviet-sync-scheduler and kiotviet-purge, replacing the earlier anon-key job';
revoke all on function public.kiotviet_cron_install() from public, anon, authenticated, service_role;

select * from public.kiotviet_cron_install();
