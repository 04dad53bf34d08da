-- One bad row never stops anyone else (DESIGN.md §3). Admins may write schedules, run logs and credentials
-- through RLS, and an adopted database may hold anything; before this migration a single schedule with
-- consecutive_failures = 2147483647 and an expired running run made every tick fail with "integer out of
-- range" in kiotviet_rescue_expired, so no credential's due schedule was claimed.
--
-- Three layers:
--   1. check constraints bound the counters and refuse infinite times (existing rows are clamped first, so
--      the migration adopts any database);
--   2. the arithmetic that uses a counter cannot overflow even at its bound;
--   3. kiotviet_rescue_expired and kiotviet_claim_due handle each row in a subtransaction of its own: a row
--      that still fails is logged (RAISE WARNING with its id, which kvsync logs too), marked on its row, and
--      skipped, and every other row goes on.

------------------------------------------------------------------------------------------------------------
-- 1. Bounds. The largest failure count that means anything is ~20 (the backoff doubles up to 2^20 × 5 min
-- and is capped at one period); a million leaves room for years of failures and keeps +1 far from the
-- integer limit. Leases and schedule times are finite: 'infinity' and '-infinity' make the grid arithmetic
-- fail ("cannot subtract infinite timestamps") and an infinite lease would hold a credential forever.
update public.kiotviet_sync_schedules
   set consecutive_failures = least(greatest(consecutive_failures, 0), 1000000)
 where consecutive_failures not between 0 and 1000000;
update public.kiotviet_sync_schedules set next_run_at = now() where not isfinite(next_run_at);
update public.kiotviet_sync_schedules set last_run_at = null where not isfinite(last_run_at);
update public.kiotviet_sync_schedules set last_success_at = null where not isfinite(last_success_at);
-- An infinite lease becomes an expired one: the next rescue ends the run (its worker cannot be told from a
-- dead one) and its credential syncs again.
update public.kiotviet_sync_logs set lease_expires_at = now() where not isfinite(lease_expires_at);
update public.kiotviet_sync_logs set slot_at = null where not isfinite(slot_at);
update public.kiotviet_sync_logs set records_synced = 0 where records_synced < 0;
update public.kiotviet_sync_logs set api_calls = 0 where api_calls < 0;
update public.kiotviet_credentials set token_version = 0 where token_version not between 0 and 4611686018427387903;

alter table public.kiotviet_sync_schedules
  drop constraint if exists kiotviet_sync_schedules_failures_range,
  drop constraint if exists kiotviet_sync_schedules_times_finite;
alter table public.kiotviet_sync_schedules
  add constraint kiotviet_sync_schedules_failures_range check (consecutive_failures between 0 and 1000000),
  add constraint kiotviet_sync_schedules_times_finite
    check (isfinite(next_run_at) and isfinite(last_run_at) and isfinite(last_success_at));
alter table public.kiotviet_sync_logs
  drop constraint if exists kiotviet_sync_logs_times_finite,
  drop constraint if exists kiotviet_sync_logs_counts_range;
alter table public.kiotviet_sync_logs
  add constraint kiotviet_sync_logs_times_finite check (isfinite(lease_expires_at) and isfinite(slot_at)),
  add constraint kiotviet_sync_logs_counts_range check (records_synced >= 0 and api_calls >= 0);
alter table public.kiotviet_credentials drop constraint if exists kiotviet_credentials_token_version_range;
alter table public.kiotviet_credentials
  add constraint kiotviet_credentials_token_version_range check (token_version between 0 and 4611686018427387903);

------------------------------------------------------------------------------------------------------------
-- 2. Arithmetic that cannot overflow.

-- kiotviet_schedule_after_run (newest definition: 20261130000300_rpc.sql), with the failure count capped
-- below its bound before it is incremented, so a schedule at the bound still backs off instead of failing.
create or replace function public.kiotviet_schedule_after_run(
  p_schedule_id uuid, p_status text, p_slot_at timestamptz, p_error text
) returns timestamptz
language plpgsql security definer set search_path = '' as $$
declare
  s public.kiotviet_sync_schedules;
  next_at timestamptz;
  slot timestamptz;
  failures integer;
begin
  select * into s from public.kiotviet_sync_schedules where id = p_schedule_id for update;
  if not found then return null; end if;
  if p_status = 'success' then
    -- The slot this run stands for is the latest slot of the schedule's grid at or before the time it was
    -- claimed for: a run retried after failures (claimed at a backoff time, off the grid) or started early
    -- by an admin still lands on the grid, so the grid never moves. The grid is anchored at the last
    -- successful slot, or at the schedule's creation (its first slot was one period after it).
    slot := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
              coalesce(s.last_run_at, s.created_at),
              coalesce(p_slot_at, now()) - public.kiotviet_schedule_interval(s.frequency, s.custom_interval_hours));
    slot := least(coalesce(slot, p_slot_at, now()), coalesce(p_slot_at, now()));
    next_at := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                         slot, now());
    update public.kiotviet_sync_schedules
       set last_run_at = slot, next_run_at = next_at, consecutive_failures = 0,
           last_status = 'success', last_error = null, last_success_at = now()
     where id = p_schedule_id;
  elsif p_status in ('failed', 'partial') then
    -- kiotviet_sync_schedules_failures_range bounds the count at 1,000,000: stay at the bound there
    failures := least(greatest(coalesce(s.consecutive_failures, 0), 0), 999999) + 1;
    next_at := now() + public.kiotviet_backoff(failures,
                 public.kiotviet_schedule_interval(s.frequency, s.custom_interval_hours));
    update public.kiotviet_sync_schedules
       set next_run_at = next_at, consecutive_failures = failures,
           last_status = p_status, last_error = left(p_error, 2000)
     where id = p_schedule_id;
  else
    -- skipped: try again at the next slot, without counting a failure
    next_at := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                         coalesce(p_slot_at, now()), now());
    update public.kiotviet_sync_schedules set next_run_at = next_at, last_status = p_status where id = p_schedule_id;
  end if;
  return next_at;
end $$;

-- The backoff (newest definition: 20261130000200_scheduling.sql) for any count, null and negative included,
-- and for a period that is not positive: never more than one period, never less than the first step.
create or replace function public.kiotviet_backoff(p_failures integer, p_period interval)
returns interval language sql immutable set search_path = '' as $$
  select least(interval '5 minutes' * power(2, least(greatest(coalesce(p_failures, 1), 1) - 1, 20)),
               greatest(coalesce(p_period, interval '5 minutes'), interval '5 minutes'))
$$;

-- Token versions wrap at their bound instead of overflowing; the compare-and-swap only needs them to differ.
create or replace function public.kiotviet_store_token(
  p_id uuid, p_encrypted_token text, p_expires_at timestamptz, p_expected_version bigint
) returns bigint
language sql volatile security definer set search_path = '' as $$
  update public.kiotviet_credentials
     set encrypted_token = p_encrypted_token, token_expires_at = p_expires_at,
         token_version = case when token_version >= 4611686018427387903 then 0 else token_version + 1 end
   where id = p_id and token_version = p_expected_version
  returning token_version
$$;

create or replace function public.kiotviet_reencrypt_credential(
  p_id uuid, p_encrypted_client_secret text, p_encrypted_token text, p_expected_version bigint
) returns boolean
language sql volatile security definer set search_path = '' as $$
  with u as (
    update public.kiotviet_credentials
       set encrypted_client_secret = p_encrypted_client_secret, encrypted_token = p_encrypted_token,
           token_version = case when token_version >= 4611686018427387903 then 0 else token_version + 1 end
     where id = p_id and token_version = p_expected_version
    returning 1
  )
  select exists (select from u)
$$;

------------------------------------------------------------------------------------------------------------
-- 3. Isolation.

-- Runs whose worker stopped heartbeating (killed, partitioned) are marked failed with the reason, and
-- their schedules back off as after any failure; what their pages committed stays, and so do the
-- cursors, so the next run continues where they stopped. (Newest definition: 20261130000300_rpc.sql.)
-- A running row counts as expired when its lease has passed, when it has none, or when the lease lies more
-- than a day ahead: kvsync's leases are at most an hour (KVSYNC_LEASE_SECONDS), so such a row was written
-- by hand and would otherwise hold its credential forever.
-- Each run is rescued in a subtransaction of its own. One that fails is logged (WARNING, with its id) and
-- marked failed without touching its schedule; if even that fails it stays as it is, and only its own
-- credential waits. The other runs are rescued all the same.
create or replace function public.kiotviet_rescue_expired()
returns table (run_id uuid, credential_id uuid, worker text)
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  r record;
  x record;
  msg text;
begin
  -- Schedules first, then run rows: the lock order of kiotviet_claim_due and kiotviet_finish_run (see
  -- there), so a rescue never deadlocks with a claim.
  perform from public.kiotviet_sync_schedules s
   where s.id in (select l.schedule_id from public.kiotviet_sync_logs l
                   where l.status = 'running' and l.trigger = 'cron'
                     and (l.lease_expires_at is null or l.lease_expires_at < now()
                          or l.lease_expires_at > now() + interval '1 day'))
   order by s.id
     for update of s;
  for r in
    select l.id from public.kiotviet_sync_logs l
     where l.status = 'running'
       and (l.lease_expires_at is null or l.lease_expires_at < now() or l.lease_expires_at > now() + interval '1 day')
     order by l.id
  loop
    begin
      update public.kiotviet_sync_logs l
         set status = 'failed', completed_at = now(),
             error_message = case
               when l.lease_expires_at is null then format('worker %s left the run without a lease', coalesce(l.worker, '?'))
               when l.lease_expires_at > now() then format('worker %s held a lease until %s, more than a day ahead', coalesce(l.worker, '?'), l.lease_expires_at)
               else format('worker %s stopped heartbeating; lease expired at %s', coalesce(l.worker, '?'), l.lease_expires_at)
             end
       where l.id = r.id and l.status = 'running'
      returning l.id, l.credential_id, l.worker, l.schedule_id, l.trigger, l.slot_at, l.error_message into x;
      if found then
        delete from public.kiotviet_sync_seen s where s.run_id = x.id;
        if x.schedule_id is not null and x.trigger = 'cron' then
          perform public.kiotviet_schedule_after_run(x.schedule_id, 'failed', x.slot_at, x.error_message);
        end if;
        run_id := x.id; credential_id := x.credential_id; worker := x.worker;
        return next;
      end if;
    exception when others then
      msg := sqlerrm;
      raise warning 'kiotviet_rescue_expired: run % could not be rescued: % (%); skipped', r.id, msg, sqlstate;
      begin
        update public.kiotviet_sync_logs l
           set status = 'failed', completed_at = now(), lease_expires_at = null,
               error_message = left('the rescue of this expired run failed: ' || msg, 2000)
         where l.id = r.id and l.status = 'running';
      exception when others then
        raise warning 'kiotviet_rescue_expired: run % could not be marked failed either: %; its credential waits', r.id, sqlerrm;
      end;
    end;
  end loop;
end $$;

-- Claims up to p_limit due schedules and opens a running log row for each. (Newest definition:
-- 20261130000300_rpc.sql; the claim itself is unchanged.) Concurrent dispatchers (any number of replicas)
-- never get the same schedule: rows are locked FOR UPDATE SKIP LOCKED, at most one schedule per credential
-- is taken, and the one-running-per-credential index turns a race for a credential into "do nothing" for
-- the loser. Inactive or missing credentials are not run.
-- All due schedules are claimed in one statement. Should that statement fail (a row the insert refuses),
-- the claim is redone one schedule at a time, each in a subtransaction: a schedule that fails is logged
-- (WARNING, with its id), marked (last_status 'failed', the error, backed off as after a failed run so it
-- does not fail every tick) and skipped, and the others are claimed.
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
    with candidates as (
      -- the most overdue schedule of each credential that may run now (one run per credential at a time),
      -- so the limit counts credentials that can start, not schedules that would wait for each other
      select distinct on (s.credential_id) s.id, s.next_run_at
        from public.kiotviet_sync_schedules s
        join public.kiotviet_credentials cr on cr.id = s.credential_id and cr.is_active
       where s.enabled
         and s.next_run_at <= now()
         and not exists (select from public.kiotviet_sync_logs l
                          where l.credential_id = s.credential_id and l.status = 'running')
       order by s.credential_id, s.next_run_at, s.id
    ), pick as (
      select s.id, s.credential_id, s.sync_type, s.next_run_at
        from public.kiotviet_sync_schedules s
       where s.id in (select k.id from candidates k order by k.next_run_at, k.id limit lim)
         and s.enabled and s.next_run_at <= now()  -- checked again on the row as locked
         for update of s skip locked
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

revoke all on function public.kiotviet_schedule_after_run(uuid, text, timestamptz, text) from public, anon, authenticated;
revoke all on function public.kiotviet_backoff(integer, interval) from public, anon, authenticated;
revoke all on function public.kiotviet_store_token(uuid, text, timestamptz, bigint) from public, anon, authenticated;
revoke all on function public.kiotviet_reencrypt_credential(uuid, text, text, bigint) from public, anon, authenticated;
revoke all on function public.kiotviet_rescue_expired() from public, anon, authenticated;
revoke all on function public.kiotviet_claim_due(text, integer, integer) from public, anon, authenticated;
grant execute on function public.kiotviet_schedule_after_run(uuid, text, timestamptz, text) to service_role;
grant execute on function public.kiotviet_backoff(integer, interval) to service_role;
grant execute on function public.kiotviet_store_token(uuid, text, timestamptz, bigint) to service_role;
grant execute on function public.kiotviet_reencrypt_credential(uuid, text, text, bigint) to service_role;
grant execute on function public.kiotviet_rescue_expired() to service_role;
grant execute on function public.kiotviet_claim_due(text, integer, integer) to service_role;
