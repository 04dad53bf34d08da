-- What an operator steers schedules with (`kvsync schedule set | run | pause | resume | delete`). Each is a
-- function so that it works over PostgREST as over a direct connection, and each refuses bad input by
-- naming the rule. The trigger (calculate_next_run_time) still computes every next run.

-- Creates or changes one schedule, changing only what is given: a null argument keeps the current value
-- (p_clear_time_of_day removes a time of day). A new schedule needs a frequency. Returns its id.
create or replace function public.kiotviet_set_schedule(
  p_credential_id uuid, p_sync_type text, p_frequency text default null, p_custom_interval_hours integer default null,
  p_enabled boolean default null, p_time_of_day time default null, p_clear_time_of_day boolean default false,
  p_timezone text default null
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  s public.kiotviet_sync_schedules;
  sid uuid;
begin
  if not exists (select from public.kiotviet_credentials c where c.id = p_credential_id) then
    raise exception 'credential % does not exist', p_credential_id using errcode = 'P0002';
  end if;
  if p_frequency = 'custom' and p_custom_interval_hours is null then
    raise exception 'a custom frequency needs custom_interval_hours (1-168)' using errcode = '22023';
  end if;
  select * into s from public.kiotviet_sync_schedules x
   where x.credential_id = p_credential_id and x.sync_type = p_sync_type for update;
  if not found then
    if p_frequency is null then
      raise exception 'there is no % schedule for credential % yet: give its frequency', p_sync_type, p_credential_id
        using errcode = '22023', hint = 'kvsync schedule set … --every hourly|daily|Nh';
    end if;
    insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, custom_interval_hours, enabled,
                                                time_of_day, timezone)
    values (p_credential_id, p_sync_type, p_frequency, case when p_frequency = 'custom' then p_custom_interval_hours end,
            coalesce(p_enabled, true), case when p_clear_time_of_day then null else p_time_of_day end,
            coalesce(p_timezone, 'Asia/Ho_Chi_Minh'))
    returning id into sid;
    return sid;
  end if;
  update public.kiotviet_sync_schedules x
     set frequency = coalesce(p_frequency, s.frequency),
         custom_interval_hours = case
           when coalesce(p_frequency, s.frequency) <> 'custom' then null
           else coalesce(p_custom_interval_hours, s.custom_interval_hours) end,
         enabled = coalesce(p_enabled, s.enabled),
         time_of_day = case when p_clear_time_of_day then null else coalesce(p_time_of_day, s.time_of_day) end,
         timezone = coalesce(p_timezone, s.timezone)
   where x.id = s.id;
  return s.id;
end $$;

-- A schedule by id, or an error naming what is wrong with it.
create or replace function public.kiotviet_schedule_row(p_schedule_id uuid) returns public.kiotviet_sync_schedules
language plpgsql stable security definer set search_path = '' as $$
declare
  s public.kiotviet_sync_schedules;
begin
  select * into s from public.kiotviet_sync_schedules where id = p_schedule_id;
  if not found then
    raise exception 'schedule % does not exist', p_schedule_id using errcode = 'P0002';
  end if;
  return s;
end $$;

-- Run now: the schedule becomes due (its grid does not move; the run stands for the slot it was due
-- for). A schedule that is off, paused, or on an inactive credential is refused with the reason.
create or replace function public.kiotviet_run_schedule_now(p_schedule_id uuid) returns timestamptz
language plpgsql volatile security definer set search_path = '' as $$
declare
  s public.kiotviet_sync_schedules := public.kiotviet_schedule_row(p_schedule_id);
begin
  if s.paused_reason is not null then
    raise exception 'schedule % is paused: %', p_schedule_id, s.paused_reason using errcode = '55000';
  end if;
  if not s.enabled then
    raise exception 'schedule % is switched off', p_schedule_id using errcode = '55000';
  end if;
  if not exists (select from public.kiotviet_credentials c where c.id = s.credential_id and c.is_active) then
    raise exception 'the credential of schedule % is not active', p_schedule_id using errcode = '55000';
  end if;
  update public.kiotviet_sync_schedules set next_run_at = now() where id = p_schedule_id;
  return now();
end $$;

-- Claims one schedule for this worker now, as kiotviet_claim_due would once it is due (`schedule run
-- --wait` carries the run out in-process). Same lock order and overlap guard as the claim: the schedule
-- row first, then the run row; a credential that is already syncing is a unique_violation.
create or replace function public.kiotviet_claim_schedule(
  p_schedule_id uuid, p_worker text, p_lease_seconds integer default 120
) returns table (run_id uuid, schedule_id uuid, credential_id uuid, sync_type text, slot_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  s public.kiotviet_sync_schedules;
  rid uuid;
begin
  perform public.kiotviet_run_schedule_now(p_schedule_id);
  select * into s from public.kiotviet_sync_schedules x where x.id = p_schedule_id for update;
  begin
    insert into public.kiotviet_sync_logs as l
      (sync_type, status, trigger, credential_id, schedule_id, slot_at, worker, lease_expires_at, heartbeat_at, started_at)
    values (s.sync_type, 'running', 'cron', s.credential_id, s.id, s.next_run_at, p_worker,
            now() + make_interval(secs => least(greatest(coalesce(p_lease_seconds, 120), 1), 86400)), now(), now())
    returning l.id into rid;
  exception when unique_violation then
    raise exception 'the credential of schedule % is already syncing', p_schedule_id
      using errcode = '23505', constraint = 'kiotviet_sync_logs_one_running';
  end;
  run_id := rid; schedule_id := s.id; credential_id := s.credential_id; sync_type := s.sync_type; slot_at := s.next_run_at;
  return next;
end $$;

-- Pauses one schedule by hand, with a reason; it shows and resumes like a pause after a rejection.
create or replace function public.kiotviet_pause_schedule(p_schedule_id uuid, p_reason text default null) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform public.kiotviet_schedule_row(p_schedule_id);
  update public.kiotviet_sync_schedules
     set enabled = false, paused_reason = left(coalesce(nullif(trim(p_reason), ''), 'paused by an operator'), 500),
         paused_at = now()
   where id = p_schedule_id;
  return true;
end $$;

-- Deletes one schedule; its runs stay in the log (schedule_id set null).
create or replace function public.kiotviet_delete_schedule(p_schedule_id uuid) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform public.kiotviet_schedule_row(p_schedule_id);
  delete from public.kiotviet_sync_schedules where id = p_schedule_id;
  return true;
end $$;

do $$
declare f text;
begin
  foreach f in array array[
    'public.kiotviet_set_schedule(uuid, text, text, integer, boolean, time, boolean, text)',
    'public.kiotviet_schedule_row(uuid)', 'public.kiotviet_run_schedule_now(uuid)',
    'public.kiotviet_claim_schedule(uuid, text, integer)', 'public.kiotviet_pause_schedule(uuid, text)',
    'public.kiotviet_delete_schedule(uuid)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
