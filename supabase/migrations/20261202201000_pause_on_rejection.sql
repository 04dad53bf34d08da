-- A credential KiotViet rejects for good (the shop owner regenerated the secret, API access was removed)
-- is no longer retried every period forever: its schedules pause with the reason, and resume when the
-- connection is saved again (save-kiotviet-token, `kvsync credentials add`) or by `kvsync schedule resume`.
--
-- How a pause shows: enabled = false (so the claim skips it, and the ERP card, which reads only
-- `enabled`, shows its switch off and no next run) plus paused_reason and paused_at, which the card's
-- `select *` also returns and `kvsync status` and the views show. Switching the schedule on by any path
-- (the card's switch included) resumes it and runs it at once; should the credentials still be wrong, the
-- run pauses it again.

alter table public.kiotviet_sync_schedules
  add column if not exists paused_reason text,
  add column if not exists paused_at timestamptz;
comment on column public.kiotviet_sync_schedules.paused_reason is
  'kvsync: why the schedule was paused (KiotViet rejected the credentials); enabled is false while it is set';

-- calculate_next_run_time (newest definition: 20261202200000_schedule_truth.sql), plus: switching on clears
-- a pause, and a resume is due at once.
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
        using errcode = '22023', hint = 'Use an IANA name such as Asia/Ho_Chi_Minh.';
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

-- Pauses every enabled schedule of a credential KiotViet rejected, with the reason. The engine calls it
-- after a run whose token request KiotViet refused (4xx from the token endpoint: wrong client id or
-- secret, access revoked), never for a timeout, a 5xx or a rate limit. Returns how many it paused.
create or replace function public.kiotviet_pause_schedules(p_credential_id uuid, p_reason text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  update public.kiotviet_sync_schedules s
     set enabled = false, paused_reason = left(coalesce(nullif(trim(p_reason), ''), 'paused'), 500), paused_at = now()
   where s.credential_id = p_credential_id and s.enabled;
  get diagnostics n = row_count;
  return n;
end $$;

-- Resumes paused schedules: one (p_schedule_id) or every paused one of a credential (p_credential_id).
-- The trigger clears the reason and makes them due now. Returns how many it resumed.
create or replace function public.kiotviet_resume_schedules(p_credential_id uuid default null, p_schedule_id uuid default null)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  update public.kiotviet_sync_schedules s set enabled = true
   where s.paused_reason is not null
     and (s.id = p_schedule_id or s.credential_id = p_credential_id);
  get diagnostics n = row_count;
  return n;
end $$;

-- kiotviet_take_over_schedules (newest definition: 20261202200000_schedule_truth.sql), plus: saving the
-- connection again resumes what a rejection paused.
create or replace function public.kiotviet_take_over_schedules(p_credential_id uuid) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  shop text;
  moved integer;
  keep_ids uuid[];
  keep_last timestamptz[];
  drop_ids uuid[];
begin
  select public.kiotviet_shop_key(c.retailer_name) into shop from public.kiotviet_credentials c where c.id = p_credential_id;
  if shop is null then
    return 0;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('kiotviet_shop_schedules:' || shop, 0));
  with ranked as (
    select s.id,
           row_number() over (partition by s.sync_type
                              order by (s.credential_id = p_credential_id) desc, s.updated_at desc, s.id) = 1 as keep,
           max(s.last_run_at) over (partition by s.sync_type) as last_run
      from public.kiotviet_sync_schedules s
      join public.kiotviet_credentials c on c.id = s.credential_id
     where public.kiotviet_shop_key(c.retailer_name) = shop
  )
  select coalesce(array_agg(r.id) filter (where r.keep), '{}'), coalesce(array_agg(r.last_run) filter (where r.keep), '{}'),
         coalesce(array_agg(r.id) filter (where not r.keep), '{}')
    into keep_ids, keep_last, drop_ids
    from ranked r;
  delete from public.kiotviet_sync_schedules s where s.id = any (drop_ids);
  update public.kiotviet_sync_schedules s
     set credential_id = p_credential_id, last_run_at = k.last_run
    from unnest(keep_ids, keep_last) as k(id, last_run)
   where s.id = k.id
     and (s.credential_id, s.last_run_at) is distinct from (p_credential_id, k.last_run);
  get diagnostics moved = row_count;
  -- the connection was saved again: what a rejection paused runs again (the trigger makes it due now)
  update public.kiotviet_sync_schedules s set enabled = true
   where s.credential_id = p_credential_id and s.paused_reason is not null;
  return moved;
end $$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_pause_schedules(uuid, text)', 'public.kiotviet_resume_schedules(uuid, uuid)',
                           'public.kiotviet_take_over_schedules(uuid)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
revoke all on function public.calculate_next_run_time() from public, anon, authenticated;
