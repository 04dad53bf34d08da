-- Schedules that tell the truth (DESIGN.md §3 as it now stands).
--
--   * last_run_at is what the ERP card shows as "Lần cuối": when the schedule's last successful run
--     finished. A successful manual run of the same credential and sync type counts too.
--   * The grid a schedule runs on lives in a column of its own, last_slot_at: the slot its last scheduled
--     run was for (before the first run, the slot one period before the first one). Every slot is
--     last_slot_at plus whole periods, so times never drift and "last sync" never names a moment when
--     nothing ran.
--   * A change of frequency, interval or time of day is due now only when a whole new period has passed
--     since the last successful run, else one new period after it (or, with a time of day, at the next
--     such slot).
--   * A time of day anchors the grid for any period (every 5 h from 02:00 runs 02:00, 07:00, 12:00, …
--     across days), so no period the card can write fails because a time of day is set.
--   * Schedules belong to the shop: a retailer's new credential takes over the schedules of its other
--     credentials, active or not, and a shop never has two schedules of one sync type.

alter table public.kiotviet_sync_schedules
  add column if not exists last_slot_at timestamptz;
comment on column public.kiotviet_sync_schedules.last_slot_at is
  'kvsync: the grid slot the last scheduled run was for (before the first run: one period before the first slot); every run time is this plus whole periods';
comment on column public.kiotviet_sync_schedules.last_run_at is
  'when the last successful run of this credential and sync type finished (scheduled or manual): the ERP card''s "last sync"';

-- A time of day now goes with every period (see kiotviet_next_slot): the rule that refused the card's
-- "custom 5 h" on a schedule with a time of day is gone.
alter table public.kiotviet_sync_schedules drop constraint if exists kiotviet_sync_schedules_time_of_day_period;
-- like the other schedule times (kiotviet_sync_schedules_times_finite): an infinite grid breaks the arithmetic
alter table public.kiotviet_sync_schedules drop constraint if exists kiotviet_sync_schedules_slot_finite;
alter table public.kiotviet_sync_schedules add constraint kiotviet_sync_schedules_slot_finite check (isfinite(last_slot_at));

------------------------------------------------------------------------------------------------------------
-- Adoption: existing rows keep meaning what they meant. Until now last_run_at held the grid slot of the
-- last successful scheduled run (the earlier system: the moment its dispatcher saw success), so it is the
-- grid. "Last sync" becomes the finish of the last successful run: kvsync recorded it in last_success_at;
-- a successful manual run of the same credential and type that ended later counts too.
update public.kiotviet_sync_schedules s
   set last_slot_at = s.last_run_at,
       last_run_at = greatest(s.last_run_at, s.last_success_at,
                              (select max(l.completed_at) from public.kiotviet_sync_logs l
                                where l.credential_id = s.credential_id and l.sync_type = s.sync_type
                                  and l.status = 'success'))
 where s.last_slot_at is null and s.last_run_at is not null;
-- Never run yet: the grid was anchored at the schedule's creation (its first slot one period after it).
update public.kiotviet_sync_schedules s
   set last_slot_at = s.created_at
 where s.last_slot_at is null and s.time_of_day is null;

------------------------------------------------------------------------------------------------------------
-- Which clock a grid counts in. Where people think in local times (a time of day, or whole days) the
-- arithmetic is on wall-clock time in the schedule's zone, so days stay days across DST; hourly and other
-- sub-day periods count elapsed time (UTC), so a DST change never leaves a two-hour gap.
create or replace function public.kiotviet_grid_zone(
  p_frequency text, p_custom_hours integer, p_time_of_day time, p_timezone text
) returns text language sql immutable set search_path = '' as $$
  select case when p_time_of_day is null
               and extract(epoch from public.kiotviet_schedule_interval(p_frequency, p_custom_hours))::bigint % 86400 <> 0
              then 'UTC'
              else coalesce(p_timezone, 'Asia/Ho_Chi_Minh') end
$$;

-- p_at moved by p_n whole periods on the schedule's clock (kiotviet_grid_zone).
create or replace function public.kiotviet_grid_step(
  p_frequency text, p_custom_hours integer, p_time_of_day time, p_timezone text, p_at timestamptz, p_n integer
) returns timestamptz language sql stable set search_path = '' as $$
  select ((p_at at time zone public.kiotviet_grid_zone(p_frequency, p_custom_hours, p_time_of_day, p_timezone))
          + public.kiotviet_schedule_interval(p_frequency, p_custom_hours) * p_n)
         at time zone public.kiotviet_grid_zone(p_frequency, p_custom_hours, p_time_of_day, p_timezone)
$$;

-- The first slot strictly after p_after on a schedule's grid: p_anchor (a slot of the grid) plus whole
-- periods, forwards or backwards. Without an anchor the grid starts at p_after, or, with a time of day,
-- at that time of day on p_after's local date. A period that divides a day always lands on the time of
-- day, whatever the anchor; a longer or uneven one (5 h, 48 h, 168 h) follows its anchor across days, so
-- every 5 h from 02:00 runs 02:00, 07:00, 12:00, 17:00, 22:00, 03:00 …
create or replace function public.kiotviet_next_slot(
  p_frequency text, p_custom_hours integer, p_time_of_day time, p_timezone text,
  p_anchor timestamptz, p_after timestamptz
) returns timestamptz
language plpgsql stable set search_path = '' as $$
declare
  step interval := public.kiotviet_schedule_interval(p_frequency, p_custom_hours);
  step_s bigint := extract(epoch from step)::bigint;
  tz text := public.kiotviet_grid_zone(p_frequency, p_custom_hours, p_time_of_day, p_timezone);
  after_local timestamp := p_after at time zone tz;
  base timestamp;
  n bigint;
begin
  -- A period that is not positive (custom_interval_hours 0 or below) has no grid. Return null instead of
  -- dividing by zero below, so that the check constraint kiotviet_sync_schedules_custom_interval_hours_check
  -- refuses such a row by name (the trigger runs before constraints are checked).
  if step_s <= 0 then
    return null;
  end if;
  if p_time_of_day is not null and (p_anchor is null or 86400 % step_s = 0) then
    base := (coalesce(p_anchor, p_after) at time zone tz)::date + p_time_of_day;
  else
    base := coalesce(p_anchor, p_after) at time zone tz;
  end if;
  -- whole periods from base to just past p_after (negative when base is ahead of p_after)
  n := floor(extract(epoch from (after_local - base)) / step_s)::bigint + 1;
  return (base + step * n) at time zone tz;
end $$;

------------------------------------------------------------------------------------------------------------
-- One schedule per shop and sync type. A shop is its KiotViet retailer name (trimmed, any case): the
-- credentials of one retailer are successive connections to the same shop, so a second schedule of a
-- type on another of its credentials would run the same work twice, or sit on a dead credential.
create or replace function public.kiotviet_shop_key(p_retailer_name text) returns text
language sql immutable set search_path = '' as $$
  select lower(trim(coalesce(p_retailer_name, '')))
$$;

-- the shop's credentials, found by index on every schedule insert (bulk loads stay linear)
create index if not exists kiotviet_credentials_shop_idx on public.kiotviet_credentials (public.kiotviet_shop_key(retailer_name));

create or replace function public.kiotviet_assert_one_schedule_per_shop(
  p_schedule_id uuid, p_credential_id uuid, p_sync_type text
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  shop text;
  other record;
begin
  select public.kiotviet_shop_key(c.retailer_name) into shop from public.kiotviet_credentials c where c.id = p_credential_id;
  if shop is null then
    return;  -- the foreign key refuses a missing credential by name
  end if;
  -- two admins adding the same type for the same shop at once: the second waits and then sees the first
  perform pg_advisory_xact_lock(hashtextextended('kiotviet_shop_schedules:' || shop, 0));
  select s.id, s.credential_id into other
    from public.kiotviet_sync_schedules s
    join public.kiotviet_credentials c on c.id = s.credential_id
   where public.kiotviet_shop_key(c.retailer_name) = shop
     and s.sync_type = p_sync_type and s.credential_id <> p_credential_id and s.id <> p_schedule_id
   limit 1;
  if found then
    raise exception 'the shop already has a % schedule (schedule %, on credential %): one schedule per shop and sync type',
      p_sync_type, other.id, other.credential_id
      using errcode = '23505', constraint = 'kiotviet_sync_schedules_one_per_shop',
            hint = 'Change that schedule instead. A shop''s schedules follow its newest credential when the connection is saved again.';
  end if;
end $$;

-- The shop's schedules move to p_credential_id: per sync type, the one it already has, else the most
-- recently changed of the shop's other credentials'. Duplicates of a type (left by earlier versions, which
-- moved only an owner's active credentials' schedules) are deleted: they could never run again. The
-- schedule kept carries the newest "last sync" of the ones it replaces. Returns how many moved.
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
  return moved;
end $$;

------------------------------------------------------------------------------------------------------------
-- BEFORE INSERT OR UPDATE on kiotviet_sync_schedules. The admin (ERP card, SQL, CLI) never writes
-- next_run_at or last_slot_at; this trigger does:
--   insert → the first slot after now: one period away, or the next time-of-day slot;
--   frequency / interval / time of day / timezone changed → recomputed at once, before the first run too:
--     due now only if a whole new period has passed since the last successful run (last_run_at), else
--     one new period after it; with a time of day, the next such slot. The grid restarts there;
--   enabled false → true → due now if a whole period has passed since the last successful run, else the
--     next slot of the grid.
-- Anything else (the ERP re-saving the same values, a run finishing, an admin setting next_run_at to run
-- now) leaves next_run_at as written.
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
    if due then
      new.next_run_at := now();
    else
      new.next_run_at := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day,
                                                   new.timezone, new.last_slot_at, now());
    end if;
  end if;
  return new;
end $$;

drop trigger if exists calculate_next_run_trigger on public.kiotviet_sync_schedules;
create trigger calculate_next_run_trigger before insert or update on public.kiotviet_sync_schedules
  for each row execute function public.calculate_next_run_time();

-- Rows without a grid yet (a time of day and never run): the grid is their time of day.
update public.kiotviet_sync_schedules s
   set last_slot_at = public.kiotviet_grid_step(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
         public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone, null, coalesce(s.next_run_at, now())), -1)
 where s.last_slot_at is null;

------------------------------------------------------------------------------------------------------------
-- What a schedule does after a scheduled run of it ends (newest definition: 20261202100000_poison_rows.sql,
-- whose bounded failure count is kept). One rule, used by kiotviet_finish_run and by
-- kiotviet_rescue_expired:
--   success → last_run_at = now (when it finished), last_slot_at = the slot of the grid the run stood for,
--             next_run_at = the first slot on the same grid after now (no drift, and an overdue schedule
--             runs once, not once per missed slot); failures reset;
--   failed / partial → capped exponential backoff (5 min, 10, 20, … never beyond one period), the count
--             and the error kept: never a retry on every tick. The grid and "last sync" stay;
--   skipped → the next slot of the grid, without counting a failure.
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
    -- The slot this run stands for is the latest slot of the grid at or before the time it was claimed
    -- for: a run retried after failures (claimed at a backoff time, off the grid) or started early by an
    -- admin still lands on the grid, so the grid never moves.
    slot := coalesce(p_slot_at, now());
    if s.last_slot_at is not null then
      slot := public.kiotviet_grid_step(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                          s.last_slot_at, slot), -1);
    end if;
    next_at := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                         slot, now());
    update public.kiotviet_sync_schedules
       set last_run_at = now(), last_slot_at = slot, next_run_at = next_at, consecutive_failures = 0,
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
    next_at := public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day, s.timezone,
                                         coalesce(s.last_slot_at, p_slot_at, now()), now());
    update public.kiotviet_sync_schedules set next_run_at = next_at, last_status = p_status where id = p_schedule_id;
  end if;
  return next_at;
end $$;

-- A successful run started outside the schedule (the ERP's button, the CLI, the API) of a credential and
-- sync type that has a schedule: it is that schedule's last sync too. A schedule that was backing off
-- after failures is healthy again and goes back to its grid; otherwise its next run stays where it was.
create or replace function public.kiotviet_schedule_after_manual_success(p_credential_id uuid, p_sync_type text)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.kiotviet_sync_schedules s
     set last_run_at = now(), last_success_at = now(), last_status = 'success', last_error = null,
         consecutive_failures = 0,
         next_run_at = case when s.consecutive_failures > 0
                            then public.kiotviet_next_slot(s.frequency, s.custom_interval_hours, s.time_of_day,
                                                           s.timezone, s.last_slot_at, now())
                            else s.next_run_at end
   where s.credential_id = p_credential_id and s.sync_type = p_sync_type;
end $$;

------------------------------------------------------------------------------------------------------------
-- Ends a run: the log row gets its final status, counts and error, and the schedule moves on: a scheduled
-- run's own (kiotviet_schedule_after_run), and for a successful manual run the schedule of its credential
-- and sync type (kiotviet_schedule_after_manual_success). Returns a scheduled run's next run. A run that
-- is no longer running (rescued after its lease) cannot be finished twice.
create or replace function public.kiotviet_finish_run(
  p_run_id uuid, p_status text, p_records integer default 0, p_stats jsonb default '{}'::jsonb,
  p_api_calls integer default 0, p_error text default null
) returns timestamptz
language plpgsql volatile security definer set search_path = '' as $$
declare
  l public.kiotviet_sync_logs;
begin
  if p_status not in ('success', 'partial', 'failed', 'skipped') then
    raise exception 'kiotviet_finish_run: status must be success, partial, failed or skipped, not %', p_status
      using errcode = '22023';
  end if;
  -- Lock order: the schedule before its run row, as kiotviet_claim_due takes them (it locks schedules,
  -- then its insert waits for whoever is updating a running row of the same credential). Updating the
  -- run row first and then waiting for the schedule deadlocked with a concurrent claim (40P01, seen
  -- with 8 dispatchers in internal/testdb/claim_test.go), failing either the claim or this finish. A
  -- manual run's schedule (same credential and sync type) is locked first for the same reason.
  perform from public.kiotviet_sync_schedules s
    join public.kiotviet_sync_logs x on x.id = p_run_id and x.status = 'running'
   where (x.trigger = 'cron' and s.id = x.schedule_id)
      or (x.trigger <> 'cron' and s.credential_id = x.credential_id and s.sync_type = x.sync_type)
     for update of s;
  update public.kiotviet_sync_logs
     set status = p_status, records_synced = coalesce(p_records, 0), stats = coalesce(p_stats, '{}'::jsonb),
         api_calls = coalesce(p_api_calls, 0), error_message = left(p_error, 2000), completed_at = now(),
         lease_expires_at = null
   where id = p_run_id and status = 'running'
  returning * into l;
  if not found then
    raise exception 'run % is not running (finished, or rescued after its lease expired)', p_run_id
      using errcode = '55000';
  end if;
  delete from public.kiotviet_sync_seen where run_id = p_run_id;
  if l.schedule_id is not null and l.trigger = 'cron' then
    return public.kiotviet_schedule_after_run(l.schedule_id, p_status, l.slot_at, p_error);
  end if;
  if p_status = 'success' then
    perform public.kiotviet_schedule_after_manual_success(l.credential_id, l.sync_type);
  end if;
  return null;
end $$;

------------------------------------------------------------------------------------------------------------
-- Saves a connection checked live with KiotViet (save-kiotviet-token, `kvsync credentials add`): the new
-- row becomes the owner's active credential, the owner's older credentials are deactivated (without an
-- owner, the CLI's case, the same retailer's), and the shop's schedules, on any of its credentials, active
-- or already deactivated, move to the new one (kiotviet_take_over_schedules).
create or replace function public.kiotviet_save_credential(
  p_id uuid, p_user_id uuid, p_retailer_name text, p_client_id text, p_encrypted_client_secret text,
  p_encrypted_token text, p_token_expires_at timestamptz
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  old_ids uuid[];
begin
  if coalesce(trim(p_retailer_name), '') = '' then
    raise exception 'retailerName is required' using errcode = '22023';
  end if;
  if coalesce(trim(p_client_id), '') = '' then
    raise exception 'clientId is required' using errcode = '22023';
  end if;
  select coalesce(array_agg(c.id), '{}') into old_ids
    from public.kiotviet_credentials c
   where c.id <> p_id and coalesce(c.is_active, false)
     and (c.user_id = p_user_id
          or (p_user_id is null and public.kiotviet_shop_key(c.retailer_name) = public.kiotviet_shop_key(p_retailer_name)));
  insert into public.kiotviet_credentials (id, user_id, retailer_name, client_id, encrypted_client_secret,
    encrypted_token, token_expires_at, is_active)
  values (p_id, p_user_id, trim(p_retailer_name), trim(p_client_id), p_encrypted_client_secret,
    p_encrypted_token, p_token_expires_at, true);
  update public.kiotviet_credentials set is_active = false where id = any (old_ids);
  perform public.kiotviet_take_over_schedules(p_id);
  return p_id;
end $$;

-- Schedules stranded by earlier versions (a credential deactivated, then a new one added for the same
-- shop): each shop's newest active credential takes them over now.
do $$
declare c record;
begin
  for c in
    select distinct on (public.kiotviet_shop_key(x.retailer_name)) x.id
      from public.kiotviet_credentials x
     where coalesce(x.is_active, false)
     order by public.kiotviet_shop_key(x.retailer_name), x.created_at desc nulls last, x.id
  loop
    perform public.kiotviet_take_over_schedules(c.id);
  end loop;
end $$;

------------------------------------------------------------------------------------------------------------
do $$
declare f text;
begin
  foreach f in array array[
    'public.kiotviet_grid_zone(text, integer, time, text)',
    'public.kiotviet_grid_step(text, integer, time, text, timestamptz, integer)',
    'public.kiotviet_next_slot(text, integer, time, text, timestamptz, timestamptz)',
    'public.kiotviet_shop_key(text)',
    'public.kiotviet_assert_one_schedule_per_shop(uuid, uuid, text)',
    'public.kiotviet_take_over_schedules(uuid)',
    'public.kiotviet_schedule_after_run(uuid, text, timestamptz, text)',
    'public.kiotviet_schedule_after_manual_success(uuid, text)',
    'public.kiotviet_finish_run(uuid, text, integer, jsonb, integer, text)',
    'public.kiotviet_save_credential(uuid, uuid, text, text, text, text, timestamptz)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
revoke all on function public.calculate_next_run_time() from public, anon, authenticated;
