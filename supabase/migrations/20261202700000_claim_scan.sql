-- The claim, fast with many due schedules (issue: one tick claims every due schedule of 10,000 shops in
-- under 5 s). What bounded it: the claim computed the most overdue schedule of EVERY claimable
-- credential (a scan, an anti-join and a sort of all due schedules, ~120 ms at 10,000) to keep a limit
-- of them, and concurrent dispatchers all computed the same ones, so under FOR UPDATE SKIP LOCKED all but
-- one got none; and the anti-join against running runs could be planned as a scan of all of them per
-- schedule, quadratic while one tick starts thousands. Now the scan walks the due index in order and stops after lim × 6 rows (a credential has
-- at most six schedules, one per sync type), locking as it reads and skipping what another claim holds.
-- Same result as before for one dispatcher: the most overdue schedule of each of the lim most overdue
-- credentials that can start. The fallback (one schedule at a time, for a statement that fails on a
-- poison row) is unchanged. Starts from the newest definition, 20261202100000_poison_rows.sql.

create or replace function public.kiotviet_claim_due(
  p_worker text, p_limit integer default 10, p_lease_seconds integer default 120
) returns table (run_id uuid, schedule_id uuid, credential_id uuid, sync_type text, slot_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  lim integer := greatest(coalesce(p_limit, 0), 0);
  lease interval := make_interval(secs => least(greatest(coalesce(p_lease_seconds, 120), 1), 86400));
  ids uuid[] := '{}';
  c record;
  p record;
  rid uuid;
  msg text;
begin
  begin
    with scan as (
      -- Claimable schedules in due order, read from the due index and stopped after 6 per credential
      -- wanted: a credential has at most one schedule per sync type (unique, six types), so the first
      -- lim × 6 rows hold the most overdue schedule of each of the lim most overdue credentials. Locked
      -- as they are read, skipping rows another claim holds: dispatchers claiming at once take different
      -- schedules instead of all computing the same ones and all but one getting none.
      select s.id, s.credential_id, s.sync_type, s.next_run_at
        from public.kiotviet_sync_schedules s
       where s.enabled
         and s.next_run_at <= now()
         and exists (select from public.kiotviet_credentials cr where cr.id = s.credential_id and cr.is_active)
         -- one hashed set of the running credentials, read once from the one-running index, instead of
         -- an anti-join the planner may plan as a scan of every running run per schedule (with 10,000
         -- runs started by one tick and statistics from before it, 0.7 s per claim)
         and s.credential_id not in (select l.credential_id from public.kiotviet_sync_logs l
                                      where l.status = 'running' and l.credential_id is not null)
       order by s.next_run_at, s.id
       limit least(lim::bigint * 6, 1000000)
         for update of s skip locked
    ), pick as (
      -- the most overdue schedule of each credential, the lim most overdue of those
      select k.* from (select distinct on (k.credential_id) k.*
                         from scan k order by k.credential_id, k.next_run_at, k.id) k
       order by k.next_run_at, k.id
       limit lim
    ), ins as (
      insert into public.kiotviet_sync_logs as l
        (sync_type, status, trigger, credential_id, schedule_id, slot_at, worker, lease_expires_at, heartbeat_at, started_at)
      select k.sync_type, 'running', 'cron', k.credential_id, k.id, k.next_run_at, p_worker, now() + lease, now(), now()
        from pick k
      on conflict (credential_id) where status = 'running' do nothing
      returning l.id
    )
    select coalesce(array_agg(ins.id), '{}') into ids from ins;
  exception when others then
    msg := sqlerrm;
    raise warning 'kiotviet_claim_due: the claim failed (%); claiming one schedule at a time', msg;
    ids := null;
  end;

  if ids is null then
    ids := '{}';
    for c in
      select distinct on (s.credential_id) s.id, s.next_run_at
        from public.kiotviet_sync_schedules s
        join public.kiotviet_credentials cr on cr.id = s.credential_id and cr.is_active
       where s.enabled
         and s.next_run_at <= now()
         and not exists (select from public.kiotviet_sync_logs l
                          where l.credential_id = s.credential_id and l.status = 'running')
       order by s.credential_id, s.next_run_at, s.id
    loop
      exit when cardinality(ids) >= lim;
      begin
        select s.id, s.credential_id, s.sync_type, s.next_run_at into p
          from public.kiotviet_sync_schedules s
         where s.id = c.id and s.enabled and s.next_run_at <= now()
           for update of s skip locked;
        if found then
          rid := null;
          insert into public.kiotviet_sync_logs as l
            (sync_type, status, trigger, credential_id, schedule_id, slot_at, worker, lease_expires_at, heartbeat_at, started_at)
          values (p.sync_type, 'running', 'cron', p.credential_id, p.id, p.next_run_at, p_worker, now() + lease, now(), now())
          on conflict (credential_id) where status = 'running' do nothing
          returning l.id into rid;
          if rid is not null then ids := ids || rid; end if;
        end if;
      exception when others then
        msg := sqlerrm;
        raise warning 'kiotviet_claim_due: schedule % could not be claimed: % (%); skipped', c.id, msg, sqlstate;
        begin
          update public.kiotviet_sync_schedules s
             set last_status = 'failed', last_error = left('could not be claimed: ' || msg, 2000),
                 consecutive_failures = least(greatest(s.consecutive_failures, 0), 999999) + 1,
                 next_run_at = now() + public.kiotviet_backoff(least(greatest(s.consecutive_failures, 0), 999999) + 1,
                                 public.kiotviet_schedule_interval(s.frequency, s.custom_interval_hours))
           where s.id = c.id;
        exception when others then
          raise warning 'kiotviet_claim_due: schedule % could not be marked either: %', c.id, sqlerrm;
        end;
      end;
    end loop;
  end if;

  return query
    select l.id, l.schedule_id, l.credential_id, l.sync_type, l.slot_at
      from public.kiotviet_sync_logs l where l.id = any (ids);
end $$;

revoke all on function public.kiotviet_claim_due(text, integer, integer) from public, anon, authenticated;
grant execute on function public.kiotviet_claim_due(text, integer, integer) to service_role;
