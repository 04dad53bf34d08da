-- Each refusal of the schedule functions says which rule it enforces in a machine-readable way: the
-- error's constraint field names the rule (the real constraint where there is one, else a name of the
-- rule the function enforces itself), so a caller (kvsync's CLI) answers it by that name, never by the
-- wording of the message, which stays as it was. The functions are otherwise unchanged.
--   kiotviet_sync_schedules_timezone_known     an unknown IANA zone (22023)
--   kiotviet_sync_schedules_credential_id_fkey a schedule's credential must exist (P0002, as the FK)
--   kiotviet_sync_schedules_frequency_given    a new schedule needs its frequency (22023)
--   kiotviet_sync_schedules_not_paused         run now: a paused schedule must be resumed first (55000)
--   kiotviet_sync_schedules_enabled            run now: a schedule switched off must be switched on (55000)
--   kiotviet_credentials_active                run now: the schedule's credential must be active (55000)

-- calculate_next_run_time (newest definition: 20261202201000_pause_on_rejection.sql), plus the rule's name
-- on an unknown time zone.
create or replace function public.calculate_next_run_time() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  first timestamptz;
  due boolean;
begin
  if new.timezone is null then new.timezone := 'Asia/Ho_Chi_Minh'; end if;
  -- Checked only when the zone is new: converting a time through it is cheap and refuses unknown names
  -- (pg_timezone_names would read the whole zone database, ~20 ms a row).
  if tg_op = 'INSERT' or new.timezone is distinct from old.timezone then
    begin
      perform now() at time zone new.timezone;
    exception when invalid_parameter_value then
      raise exception 'kiotviet_sync_schedules.timezone: unknown time zone "%"', new.timezone
        using errcode = '22023', hint = 'Use an IANA name such as Asia/Ho_Chi_Minh.',
              constraint = 'kiotviet_sync_schedules_timezone_known';
    end;
  end if;
  if tg_op = 'INSERT' or (new.credential_id, new.sync_type) is distinct from (old.credential_id, old.sync_type) then
    perform public.kiotviet_assert_one_schedule_per_shop(new.id, new.credential_id, new.sync_type);
  end if;
  -- Switching a schedule on clears its pause, however it is switched on.
  if new.enabled then
    new.paused_reason := null;
    new.paused_at := null;
  end if;
  -- No grid for a period that is not positive: the check constraint refuses the row by name.
  if public.kiotviet_schedule_interval(new.frequency, new.custom_interval_hours) <= interval '0' then
    return new;
  end if;

  if tg_op = 'INSERT' then
    if new.last_slot_at is not null then
      first := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day, new.timezone,
                                         new.last_slot_at, now());
    else
      first := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day, new.timezone,
                                         case when new.time_of_day is null then now() end, now());
      new.last_slot_at := public.kiotviet_grid_step(new.frequency, new.custom_interval_hours, new.time_of_day,
                                                    new.timezone, first, -1);
    end if;
    new.next_run_at := coalesce(new.next_run_at, first);
    return new;
  end if;

  -- "A whole period has passed since the last successful run", on the schedule's own clock.
  due := new.last_run_at is not null
     and public.kiotviet_grid_step(new.frequency, new.custom_interval_hours, new.time_of_day, new.timezone,
                                   new.last_run_at, 1) <= now();

  if (new.frequency, new.custom_interval_hours, new.time_of_day, new.timezone)
     is distinct from (old.frequency, old.custom_interval_hours, old.time_of_day, old.timezone) then
    if new.time_of_day is null then
      -- one new period after the last success (or, before any, after now); the grid restarts there
      new.last_slot_at := coalesce(new.last_run_at, now());
      first := public.kiotviet_grid_step(new.frequency, new.custom_interval_hours, null, new.timezone,
                                         new.last_slot_at, 1);
      if first <= now() then
        new.last_slot_at := now();
        first := public.kiotviet_grid_step(new.frequency, new.custom_interval_hours, null, new.timezone, now(), 1);
      end if;
    else
      -- the next slot of the time of day; the grid is that time of day
      first := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day, new.timezone,
                                         null, now());
      new.last_slot_at := public.kiotviet_grid_step(new.frequency, new.custom_interval_hours, new.time_of_day,
                                                    new.timezone, first, -1);
    end if;
    new.next_run_at := case when due then now() else first end;
  elsif new.enabled and not old.enabled then
    if old.paused_reason is not null then
      -- a resume (credentials saved again, `kvsync schedule resume`, the card's switch): the pause may have
      -- lasted any time and the shop is behind, so run now
      new.next_run_at := now();
    elsif due then
      new.next_run_at := now();
    else
      new.next_run_at := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day,
                                                   new.timezone, new.last_slot_at, now());
    end if;
  end if;
  return new;
end $$;

-- kiotviet_set_schedule (20261202203000_schedule_controls.sql), plus the rules' names.
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
    raise exception 'credential % does not exist', p_credential_id
      using errcode = 'P0002', constraint = 'kiotviet_sync_schedules_credential_id_fkey';
  end if;
  if p_frequency = 'custom' and p_custom_interval_hours is null then
    raise exception 'a custom frequency needs custom_interval_hours (1-168)' using errcode = '22023';
  end if;
  select * into s from public.kiotviet_sync_schedules x
   where x.credential_id = p_credential_id and x.sync_type = p_sync_type for update;
  if not found then
    if p_frequency is null then
      raise exception 'there is no % schedule for credential % yet: give its frequency', p_sync_type, p_credential_id
        using errcode = '22023', hint = 'kvsync schedule set … --every hourly|daily|Nh',
              constraint = 'kiotviet_sync_schedules_frequency_given';
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

-- kiotviet_run_schedule_now (20261202203000_schedule_controls.sql), plus the rules' names.
create or replace function public.kiotviet_run_schedule_now(p_schedule_id uuid) returns timestamptz
language plpgsql volatile security definer set search_path = '' as $$
declare
  s public.kiotviet_sync_schedules := public.kiotviet_schedule_row(p_schedule_id);
begin
  if s.paused_reason is not null then
    raise exception 'schedule % is paused: %', p_schedule_id, s.paused_reason
      using errcode = '55000', constraint = 'kiotviet_sync_schedules_not_paused';
  end if;
  if not s.enabled then
    raise exception 'schedule % is switched off', p_schedule_id
      using errcode = '55000', constraint = 'kiotviet_sync_schedules_enabled';
  end if;
  if not exists (select from public.kiotviet_credentials c where c.id = s.credential_id and c.is_active) then
    raise exception 'the credential of schedule % is not active', p_schedule_id
      using errcode = '55000', constraint = 'kiotviet_credentials_active';
  end if;
  update public.kiotviet_sync_schedules set next_run_at = now() where id = p_schedule_id;
  return now();
end $$;
