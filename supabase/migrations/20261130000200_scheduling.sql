-- Scheduling rules. One function, kiotviet_next_slot(), owns the grid a schedule runs on; the trigger
-- calculate_next_run_time() and kiotviet_finish_run() both use it, so a schedule's times are decided in one
-- place. Times come from the database's now() only (passed in as p_now so tests can pin them).

-- The length of one period of a schedule. custom without hours is refused by a check constraint; the
-- coalesce only keeps this total for rows that predate it.
create or replace function public.kiotviet_schedule_interval(p_frequency text, p_custom_hours integer)
returns interval language sql immutable set search_path = '' as $$
  select case p_frequency
    when 'hourly' then interval '1 hour'
    when 'daily' then interval '24 hours'
    else make_interval(hours => coalesce(p_custom_hours, 24))
  end
$$;

-- The first slot strictly after p_after on a schedule's grid.
--   * With a time of day, the grid is that local time (in p_timezone) plus whole periods: a daily 02:00
--     schedule runs at 02:00 local every day, whatever DST does, and an every-6-hours one at 02:00, 08:00, …
--   * Without one, the grid is p_anchor plus whole periods: the previous slot keeps its successors on the
--     same minute however long a run takes or however late the 5-minute cron tick fires, so nothing drifts.
-- With a time of day, or a period of whole days, arithmetic is done on local wall-clock time, then
-- converted back, so days stay days across DST; hourly and other periods count elapsed time.
create or replace function public.kiotviet_next_slot(
  p_frequency text, p_custom_hours integer, p_time_of_day time, p_timezone text,
  p_anchor timestamptz, p_after timestamptz
) returns timestamptz
language plpgsql stable set search_path = '' as $$
declare
  step interval := public.kiotviet_schedule_interval(p_frequency, p_custom_hours);
  -- Wall-clock arithmetic where the user thinks in local times (a time of day, or whole days); plain
  -- elapsed time otherwise, so an hourly grid keeps one hour between runs across a DST change.
  tz text := case when p_time_of_day is null and extract(epoch from step)::bigint % 86400 <> 0 then 'UTC'
                  else coalesce(p_timezone, 'Asia/Ho_Chi_Minh') end;
  after_local timestamp := p_after at time zone tz;
  base timestamp;
  n bigint;
begin
  -- A period that is not positive (custom_interval_hours 0 or below) has no grid. Return null instead of
  -- dividing by zero below, so that the check constraint kiotviet_sync_schedules_custom_interval_hours_check
  -- refuses such a row by name (the trigger runs before constraints are checked).
  if step <= interval '0' then
    return null;
  end if;
  if p_time_of_day is not null then
    base := after_local::date + p_time_of_day;
    if base > after_local then
      base := base - make_interval(days => ceil(extract(epoch from step) / 86400)::int);
    end if;
  else
    base := coalesce(p_anchor, p_after) at time zone tz;
  end if;
  -- whole periods from base to just past p_after
  n := floor(extract(epoch from (after_local - base)) / extract(epoch from step))::bigint + 1;
  if n < 1 then n := 1; end if;
  return (base + step * n) at time zone tz;
end $$;

-- BEFORE INSERT OR UPDATE on kiotviet_sync_schedules. The admin (ERP page, SQL, CLI) never writes
-- next_run_at; this trigger does:
--   insert                      → the first slot after now (one period away, or the next time of day);
--   frequency / interval / time of day / timezone changed → recomputed at once, before the first run too
--                                 (due now if the new period since the last run has already passed);
--   enabled false → true        → due now if a whole period has passed since the last run, else its next slot.
-- Anything else (the ERP re-saving the same values, a run finishing, an admin setting next_run_at to run
-- now) leaves next_run_at as written.
create or replace function public.calculate_next_run_time() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  step interval;
  due timestamptz;
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
  step := public.kiotviet_schedule_interval(new.frequency, new.custom_interval_hours);

  if tg_op = 'INSERT' then
    if new.next_run_at is null then
      new.next_run_at := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day,
                                                   new.timezone, now(), now());
    end if;
    return new;
  end if;

  if (new.frequency, new.custom_interval_hours, new.time_of_day, new.timezone)
     is distinct from (old.frequency, old.custom_interval_hours, old.time_of_day, old.timezone)
     or (new.enabled and not old.enabled) then
    if new.last_run_at is null then
      new.next_run_at := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day,
                                                   new.timezone, now(), now());
    else
      due := public.kiotviet_next_slot(new.frequency, new.custom_interval_hours, new.time_of_day,
                                        new.timezone, new.last_run_at, new.last_run_at);
      -- overdue: run once now, not once per missed slot
      new.next_run_at := greatest(due, now());
    end if;
  end if;
  return new;
end $$;

drop trigger if exists calculate_next_run_trigger on public.kiotviet_sync_schedules;
create trigger calculate_next_run_trigger before insert or update on public.kiotviet_sync_schedules
  for each row execute function public.calculate_next_run_time();

-- Backoff after p_failures consecutive failures: 5 min, 10, 20, … never beyond one period of the
-- schedule, so a failing daily sync is retried within the day and an hourly one at most hourly.
create or replace function public.kiotviet_backoff(p_failures integer, p_period interval)
returns interval language sql immutable set search_path = '' as $$
  select least(interval '5 minutes' * power(2, least(greatest(p_failures, 1) - 1, 20)), p_period)
$$;

-- Schedules that existed before this trigger keep their rows; give the ones without a time a slot.
update public.kiotviet_sync_schedules set next_run_at = public.kiotviet_next_slot(frequency, custom_interval_hours,
  time_of_day, timezone, coalesce(last_run_at, now()), now())
where next_run_at is null;

revoke all on function public.kiotviet_schedule_interval(text, integer) from public, anon, authenticated;
revoke all on function public.kiotviet_next_slot(text, integer, time, text, timestamptz, timestamptz) from public, anon, authenticated;
revoke all on function public.kiotviet_backoff(integer, interval) from public, anon, authenticated;
revoke all on function public.calculate_next_run_time() from public, anon, authenticated;
grant execute on function public.kiotviet_schedule_interval(text, integer) to service_role;
grant execute on function public.kiotviet_next_slot(text, integer, time, text, timestamptz, timestamptz) to service_role;
grant execute on function public.kiotviet_backoff(integer, interval) to service_role;
