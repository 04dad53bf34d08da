-- Alerts: what state each watched thing is in (a schedule's health, a run that is taking long, a stream's
-- freshness), the events raised when a state changes, and their delivery to each channel (webhook, email,
-- Telegram). Postgres is the only coordinator: any number of kvsync replicas may scan at once, and each
-- change of state still gives exactly one event (the state row is locked while it changes, and the event's
-- dedupe key is unique), delivered once per channel (deliveries are claimed FOR UPDATE SKIP LOCKED).

------------------------------------------------------------------------------------------------------------
-- One row per watched subject: 'schedule:<id>' (ok | failing | paused), 'long:<schedule id>'
-- (ok | running_long), 'stale:<credential id>:<stream>' (ok | stale). version counts the changes, so
-- subject:version names one change of state for the whole deployment.
-- schedule_id has no foreign key on purpose, here and in the events: a foreign key check takes FOR KEY
-- SHARE on the schedule row until the scan commits, and kiotviet_claim_due (FOR UPDATE SKIP LOCKED) would
-- skip a due schedule while an alert about it is being written. The scan deletes the state of schedules
-- that no longer exist instead.
create table if not exists public.kiotviet_alert_state (
  subject text primary key,
  credential_id uuid references public.kiotviet_credentials (id) on delete cascade,
  schedule_id uuid,
  state text not null,
  since timestamptz not null default now(),
  version integer not null default 0,
  updated_at timestamptz not null default now(),
  constraint kiotviet_alert_state_state_check check (state in ('ok', 'failing', 'paused', 'running_long', 'stale'))
);

-- An event is a change of state people are told about. details holds what the message says (the shop, the
-- sync type, the error, since when, tries, next try): the message is rendered by kvsync in the operator's
-- language, never stored.
create table if not exists public.kiotviet_alert_events (
  id uuid primary key default gen_random_uuid(),
  dedupe_key text not null unique,
  kind text not null,
  credential_id uuid references public.kiotviet_credentials (id) on delete cascade,
  schedule_id uuid,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  constraint kiotviet_alert_events_kind_check
    check (kind in ('failing', 'recovered', 'paused', 'running_long', 'stale', 'test'))
);
create index if not exists kiotviet_alert_events_created_idx on public.kiotviet_alert_events (created_at desc);
create index if not exists kiotviet_alert_events_schedule_idx on public.kiotviet_alert_events (schedule_id);

-- One row per (event, channel). pending rows are claimed by pushing next_attempt_at past a lease, so a
-- replica that dies mid-send leaves the row to be retried by another; sent and failed are final.
create table if not exists public.kiotviet_alert_deliveries (
  event_id uuid not null references public.kiotviet_alert_events (id) on delete cascade,
  channel text not null,
  status text not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_attempt_at timestamptz,
  last_error text,
  sent_at timestamptz,
  primary key (event_id, channel),
  constraint kiotviet_alert_deliveries_status_check check (status in ('pending', 'sent', 'failed'))
);
create index if not exists kiotviet_alert_deliveries_due_idx
  on public.kiotviet_alert_deliveries (next_attempt_at) where status = 'pending';

-- RLS on, no policy for the API roles: only kvsync (service_role) reads and writes these; an admin page
-- can add a policy of its own.
alter table public.kiotviet_alert_state enable row level security;
alter table public.kiotviet_alert_events enable row level security;
alter table public.kiotviet_alert_deliveries enable row level security;
revoke all on public.kiotviet_alert_state, public.kiotviet_alert_events, public.kiotviet_alert_deliveries
  from public, anon, authenticated, service_role;
grant select, insert, update, delete on public.kiotviet_alert_state, public.kiotviet_alert_events,
  public.kiotviet_alert_deliveries to service_role;

------------------------------------------------------------------------------------------------------------
-- When each stream of each active credential last synced successfully: the newest finish of a success or
-- partial run whose stats for that stream carry no error. first_seen_at is the first run that had the
-- stream, so a stream that never succeeded is stale only once it has been tried for longer than the limit.
-- Read by the metrics (every replica reports the same) and by the stale check.
create or replace function public.kiotviet_freshness()
returns table (credential_id uuid, retailer_name text, stream text, last_success_at timestamptz,
               first_seen_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select l.credential_id, c.retailer_name, k.stream,
         max(l.completed_at) filter (where l.status in ('success', 'partial') and l.completed_at is not null
                                       and coalesce(k.st ->> 'error', '') = ''),
         min(l.started_at)
    from public.kiotviet_sync_logs l
    join public.kiotviet_credentials c on c.id = l.credential_id and c.is_active
   cross join lateral jsonb_each(case when jsonb_typeof(l.stats) = 'object' then l.stats else '{}'::jsonb end) k(stream, st)
   where l.status <> 'running'
   group by l.credential_id, c.retailer_name, k.stream
   order by c.retailer_name, l.credential_id, k.stream
$$;

-- Moves one subject to p_state. Returns the new event's id when the state changed into one people are told
-- about (p_kind not null), else null. The state row is locked first, so of concurrent callers only the
-- first sees the old state; the rest find it already changed and do nothing. A subject seen for the first
-- time starts 'ok', so a schedule already failing when alerts are turned on raises one alert.
create or replace function public.kiotviet_alert_move(
  p_subject text, p_state text, p_kind_from_ok text, p_credential_id uuid, p_schedule_id uuid,
  p_details jsonb, p_channels text[]
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  cur public.kiotviet_alert_state;
  kind text;
  ev uuid;
begin
  insert into public.kiotviet_alert_state (subject, credential_id, schedule_id, state)
  values (p_subject, p_credential_id, p_schedule_id, 'ok')
  on conflict (subject) do nothing;
  select * into cur from public.kiotviet_alert_state where subject = p_subject for update;
  if cur.state = p_state then
    return null;
  end if;
  update public.kiotviet_alert_state
     set state = p_state, since = now(), version = cur.version + 1, updated_at = now()
   where subject = p_subject;
  -- what the change means: into a bad state is that state's alert; back to ok from failing or paused is a
  -- recovery; a long run ending or a stream fresh again is no news
  kind := case
    when p_state <> 'ok' then p_kind_from_ok
    when cur.state in ('failing', 'paused') then 'recovered'
  end;
  if kind is null then
    return null;
  end if;
  insert into public.kiotviet_alert_events (dedupe_key, kind, credential_id, schedule_id, details)
  values (p_subject || ':' || (cur.version + 1), kind, p_credential_id, p_schedule_id,
          coalesce(p_details, '{}'::jsonb) || jsonb_build_object('previous_state', cur.state, 'since', now()))
  on conflict (dedupe_key) do nothing
  returning id into ev;
  if ev is not null then
    insert into public.kiotviet_alert_deliveries (event_id, channel)
    select ev, ch from unnest(coalesce(p_channels, '{}'::text[])) ch where ch <> ''
    on conflict do nothing;
  end if;
  return ev;
end $$;

-- Whether a schedule is paused: stopped until someone acts, after KiotViet rejected its credentials for
-- good (kiotviet_pause_schedules sets paused_reason; a resume clears it). Kept in one function so the
-- alerts follow the pausing rule wherever it goes.
create or replace function public.kiotviet_alert_is_paused(s public.kiotviet_sync_schedules)
returns boolean
language sql stable security definer set search_path = '' as $$
  select s.paused_reason is not null
$$;

-- Looks at every schedule, running run and stream, moves each subject to the state it is in now, and
-- returns the events this call raised (for this replica to deliver at once; any replica can also deliver
-- them later through kiotviet_alert_claim). Safe to call from any number of replicas at any time: it is
-- level-triggered, so calling it twice raises nothing new.
--   failing      a schedule with at least p_failures consecutive failed (or partial) runs
--   paused       a schedule kiotviet_alert_is_paused says is paused
--   recovered    a failing schedule that is not any more, or a paused one that was resumed
--   running_long a scheduled run going for longer than p_long_factor × the schedule's median duration
--                over 30 days (kiotviet_run_stats), and at least p_long_min_seconds
--   stale        an active credential's stream with no successful sync for p_stale_seconds
create or replace function public.kiotviet_alert_scan(
  p_failures integer default 1, p_long_factor numeric default 3, p_long_min_seconds integer default 600,
  p_stale_seconds integer default 86400, p_channels text[] default '{}'::text[]
) returns table (event_id uuid, kind text, details jsonb, created_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
declare
  r record;
  ev uuid;
  evs uuid[] := '{}'::uuid[];
  st text;
begin
  if p_failures < 1 or p_long_factor <= 0 or p_long_min_seconds < 0 or p_stale_seconds < 60 then
    raise exception 'kiotviet_alert_scan: failures must be at least 1, the long factor above 0, the minimum '
      'seconds 0 or more and the stale limit at least 60 seconds' using errcode = '22023';
  end if;

  delete from public.kiotviet_alert_state a
   where a.schedule_id is not null
     and not exists (select from public.kiotviet_sync_schedules s where s.id = a.schedule_id);

  -- Schedules' health, in a fixed order so concurrent scans lock subjects in the same order.
  for r in
    select s.id, s.credential_id, c.retailer_name, s.sync_type, s.consecutive_failures, s.last_error,
           s.last_status, s.next_run_at, s.last_success_at, public.kiotviet_alert_is_paused(s) as paused,
           s.paused_reason, s.paused_at, a.state as cur_state, a.since as cur_since,
           (select min(l.started_at) from public.kiotviet_sync_logs l
             where l.schedule_id = s.id and l.status in ('failed', 'partial')
               and l.started_at > coalesce(s.last_success_at, '-infinity'::timestamptz)) as failing_since,
           (select max(l.completed_at) from public.kiotviet_sync_logs l
             where l.schedule_id = s.id and l.status in ('failed', 'partial')) as last_failed_at
      from public.kiotviet_sync_schedules s
      join public.kiotviet_credentials c on c.id = s.credential_id
      left join public.kiotviet_alert_state a on a.subject = 'schedule:' || s.id
     order by s.id
  loop
    -- A resumed schedule is ok until it fails again: its failures from before the pause still count
    -- towards the limit, but only a failure after the resume makes it failing again.
    st := case when r.paused then 'paused'
               when r.cur_state = 'paused' then 'ok'
               when r.consecutive_failures >= p_failures
                    and (r.cur_state is distinct from 'ok' or r.last_failed_at > r.cur_since) then 'failing'
               else 'ok' end;
    ev := public.kiotviet_alert_move('schedule:' || r.id, st, st, r.credential_id, r.id,
            jsonb_strip_nulls(jsonb_build_object('retailer_name', r.retailer_name, 'sync_type', r.sync_type,
              'error', coalesce(r.paused_reason, r.last_error), 'failures', r.consecutive_failures,
              'failing_since', r.failing_since, 'paused_at', r.paused_at,
              'next_run_at', r.next_run_at, 'last_success_at', r.last_success_at)),
            p_channels);
    if ev is not null then evs := evs || ev; end if;
  end loop;

  -- Scheduled runs going for much longer than usual.
  for r in
    select s.id, s.credential_id, c.retailer_name, s.sync_type, run.id as run_id, run.started_at,
           extract(epoch from now() - run.started_at)::numeric as running_seconds, rs.p50_seconds_30d as usual_seconds
      from public.kiotviet_sync_schedules s
      join public.kiotviet_credentials c on c.id = s.credential_id
      left join lateral (select l.id, l.started_at from public.kiotviet_sync_logs l
                          where l.schedule_id = s.id and l.status = 'running'
                          order by l.started_at desc limit 1) run on true
      left join public.kiotviet_run_stats rs on rs.schedule_id = s.id
     order by s.id
  loop
    st := case when r.run_id is not null and r.usual_seconds is not null
                    and r.running_seconds > greatest(p_long_factor * r.usual_seconds, p_long_min_seconds)
               then 'running_long' else 'ok' end;
    ev := public.kiotviet_alert_move('long:' || r.id, st, 'running_long', r.credential_id, r.id,
            jsonb_strip_nulls(jsonb_build_object('retailer_name', r.retailer_name, 'sync_type', r.sync_type,
              'run_id', r.run_id, 'started_at', r.started_at, 'running_seconds', round(r.running_seconds),
              'usual_seconds', r.usual_seconds)),
            p_channels);
    if ev is not null then evs := evs || ev; end if;
  end loop;

  -- Streams of credentials that still have an enabled schedule.
  for r in
    select f.credential_id, f.retailer_name, f.stream, f.last_success_at, f.first_seen_at
      from public.kiotviet_freshness() f
     where exists (select from public.kiotviet_sync_schedules s where s.credential_id = f.credential_id and s.enabled)
     order by f.credential_id, f.stream
  loop
    st := case when coalesce(r.last_success_at, r.first_seen_at) < now() - make_interval(secs => p_stale_seconds)
               then 'stale' else 'ok' end;
    ev := public.kiotviet_alert_move('stale:' || r.credential_id || ':' || r.stream, st, 'stale', r.credential_id, null,
            jsonb_strip_nulls(jsonb_build_object('retailer_name', r.retailer_name, 'stream', r.stream,
              'last_success_at', r.last_success_at, 'stale_seconds', p_stale_seconds)),
            p_channels);
    if ev is not null then evs := evs || ev; end if;
  end loop;

  return query select e.id, e.kind, e.details, e.created_at from public.kiotviet_alert_events e
                where e.id = any (evs) order by e.created_at, e.id;
end $$;

-- A test event for `kvsync alerts test`: one delivery per channel, sent like any other.
create or replace function public.kiotviet_alert_test(p_channels text[], p_details jsonb default '{}'::jsonb)
returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  ev uuid;
begin
  insert into public.kiotviet_alert_events (dedupe_key, kind, details)
  values ('test:' || gen_random_uuid(), 'test', coalesce(p_details, '{}'::jsonb) || jsonb_build_object('since', now()))
  returning id into ev;
  insert into public.kiotviet_alert_deliveries (event_id, channel)
  select ev, ch from unnest(coalesce(p_channels, '{}'::text[])) ch where ch <> '' on conflict do nothing;
  return ev;
end $$;

-- Claims up to p_limit deliveries that are due (optionally of one event), for this replica to send within
-- p_lease_seconds. The claim counts as an attempt and moves next_attempt_at past the lease, so a replica
-- that dies mid-send leaves the row due again for another.
create or replace function public.kiotviet_alert_claim(
  p_limit integer default 20, p_lease_seconds integer default 60, p_event_id uuid default null
) returns table (event_id uuid, channel text, attempts integer, kind text, details jsonb, created_at timestamptz)
language sql volatile security definer set search_path = '' as $$
  with due as (
    select d.event_id, d.channel from public.kiotviet_alert_deliveries d
     where d.status = 'pending' and d.next_attempt_at <= now()
       and (p_event_id is null or d.event_id = p_event_id)
     order by d.next_attempt_at, d.event_id, d.channel
     limit greatest(p_limit, 0)
       for update skip locked
  ), claimed as (
    update public.kiotviet_alert_deliveries d
       set attempts = d.attempts + 1, last_attempt_at = now(),
           next_attempt_at = now() + make_interval(secs => greatest(p_lease_seconds, 1))
      from due where d.event_id = due.event_id and d.channel = due.channel
    returning d.event_id, d.channel, d.attempts
  )
  select c.event_id, c.channel, c.attempts, e.kind, e.details, e.created_at
    from claimed c join public.kiotviet_alert_events e on e.id = c.event_id
   order by e.created_at, c.event_id, c.channel
$$;

-- Records a send: p_error null means sent. A failure is retried with backoff (30 s, 1 min, 2 min, … at most
-- 30 min apart) until p_max_attempts, then given up as failed. p_error must already be redacted (kvsync
-- strips every configured secret from it); it is kept to 500 characters. Returns the delivery's status.
create or replace function public.kiotviet_alert_delivered(
  p_event_id uuid, p_channel text, p_error text default null, p_max_attempts integer default 8
) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  d public.kiotviet_alert_deliveries;
begin
  select * into d from public.kiotviet_alert_deliveries where event_id = p_event_id and channel = p_channel for update;
  if not found then
    raise exception 'no alert delivery of event % to %', p_event_id, p_channel using errcode = 'P0002';
  end if;
  if d.status <> 'pending' then
    return d.status;
  end if;
  if p_error is null then
    update public.kiotviet_alert_deliveries set status = 'sent', sent_at = now(), last_error = null
     where event_id = p_event_id and channel = p_channel;
    return 'sent';
  end if;
  update public.kiotviet_alert_deliveries
     set status = case when d.attempts >= p_max_attempts then 'failed' else 'pending' end,
         last_error = left(p_error, 500),
         next_attempt_at = now() + least(interval '30 minutes',
                                         interval '30 seconds' * power(2, greatest(d.attempts - 1, 0))::integer)
   where event_id = p_event_id and channel = p_channel
  returning status into d.status;
  return d.status;
end $$;

-- Per channel, deliveries that failed lately: given up in the last 7 days, or still being retried after an
-- error. For `kvsync doctor`.
create or replace function public.kiotviet_alert_problems()
returns table (channel text, failed integer, retrying integer, last_error text, last_attempt_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select d.channel,
         count(*) filter (where d.status = 'failed')::integer,
         count(*) filter (where d.status = 'pending')::integer,
         (array_agg(d.last_error order by d.last_attempt_at desc nulls last))[1],
         max(d.last_attempt_at)
    from public.kiotviet_alert_deliveries d
   where d.last_error is not null
     and ((d.status = 'failed' and d.last_attempt_at >= now() - interval '7 days') or d.status = 'pending')
   group by d.channel
   order by d.channel
$$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_freshness()',
                           'public.kiotviet_alert_move(text, text, text, uuid, uuid, jsonb, text[])',
                           'public.kiotviet_alert_is_paused(public.kiotviet_sync_schedules)',
                           'public.kiotviet_alert_scan(integer, numeric, integer, integer, text[])',
                           'public.kiotviet_alert_test(text[], jsonb)',
                           'public.kiotviet_alert_claim(integer, integer, uuid)',
                           'public.kiotviet_alert_delivered(uuid, text, text, integer)',
                           'public.kiotviet_alert_problems()']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
