-- Alerts: "webhooks stopped" (issue "Alerts people read"). A credential that was receiving KiotViet
-- webhooks and has received none for longer than a threshold raises one alert, and one recovery when
-- events arrive again; once for the whole deployment, through the same state rows, dedupe keys and
-- deliveries as the other events (kiotviet_alert_move). Polling keeps the data right meanwhile, so this is
-- news, not an outage: KiotViet disables a webhook after any 4xx, a proxy may drop the path, a secret may
-- have been rotated on one side only.

alter table public.kiotviet_alert_state drop constraint kiotviet_alert_state_state_check;
alter table public.kiotviet_alert_state add constraint kiotviet_alert_state_state_check
  check (state in ('ok', 'failing', 'paused', 'running_long', 'stale', 'webhooks_stopped'));
alter table public.kiotviet_alert_events drop constraint kiotviet_alert_events_kind_check;
alter table public.kiotviet_alert_events add constraint kiotviet_alert_events_kind_check
  check (kind in ('failing', 'recovered', 'paused', 'running_long', 'stale', 'webhooks_stopped', 'test'));

-- As in 20261202600000_alerts.sql, with one change: webhooks arriving again after they stopped is a
-- recovery people are told about (like a failing schedule that works again), where a stream fresh again
-- or a long run ending is not.
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
  kind := case
    when p_state <> 'ok' then p_kind_from_ok
    when cur.state in ('failing', 'paused', 'webhooks_stopped') then 'recovered'
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

-- The webhook part of a scan: subject 'webhooks:<credential id>', ok | webhooks_stopped.
--   stopped    an active credential with webhooks registered (active or disabled by KiotViet: a disabled
--              one is exactly how they stop) that has received events before and none for p_after_seconds
--   ok         events arrive, or none ever did (doctor says "registered, but no event has arrived yet":
--              nothing was working, so nothing stopped)
-- Once stopped, only an event received since then is a recovery: a limit raised later is not news, and
-- a message saying "webhooks arrive again" must be true.
-- A credential whose registrations were all removed (kvsync webhooks remove) is not watched any more: its
-- state row is deleted without a message. When the received events were purged (kiotviet_purge) and none
-- is left, the state stays as it was, so a purge never reads as a recovery.
-- Called by kiotviet_alert_scan under its lock; returns the events it raised.
create or replace function public.kiotviet_alert_scan_webhooks(p_after_seconds integer, p_channels text[])
returns table (event_id uuid, kind text, details jsonb, created_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
declare
  r record;
  ev uuid;
  evs uuid[] := '{}'::uuid[];
  st text;
begin
  if p_after_seconds is null or p_after_seconds < 60 then
    raise exception 'kiotviet_alert_scan_webhooks: the limit must be at least 60 seconds (got %)', p_after_seconds
      using errcode = '22023';
  end if;

  delete from public.kiotviet_alert_state a
   where a.subject like 'webhooks:%'
     and not exists (select from public.kiotviet_webhook_registrations g
                      join public.kiotviet_credentials c on c.id = g.credential_id and c.is_active
                     where 'webhooks:' || g.credential_id = a.subject);

  for r in
    select c.id as credential_id, c.retailer_name,
           (select max(e.received_at) from public.kiotviet_webhook_events e where e.credential_id = c.id) as last_received_at,
           (select array_agg(g.event_type order by g.event_type) filter (where not g.is_active)
              from public.kiotviet_webhook_registrations g where g.credential_id = c.id) as inactive_types,
           a.state as cur_state, a.since as cur_since
      from public.kiotviet_credentials c
      left join public.kiotviet_alert_state a on a.subject = 'webhooks:' || c.id
     where c.is_active
       and exists (select from public.kiotviet_webhook_registrations g where g.credential_id = c.id)
     order by c.id
  loop
    st := case when r.last_received_at is null then coalesce(r.cur_state, 'ok')
               when r.cur_state = 'webhooks_stopped' then
                 case when r.last_received_at >= r.cur_since then 'ok' else 'webhooks_stopped' end
               when r.last_received_at < now() - make_interval(secs => p_after_seconds) then 'webhooks_stopped'
               else 'ok' end;
    ev := public.kiotviet_alert_move('webhooks:' || r.credential_id, st, 'webhooks_stopped', r.credential_id, null,
            jsonb_strip_nulls(jsonb_build_object('retailer_name', r.retailer_name, 'credential_id', r.credential_id,
              'last_received_at', r.last_received_at, 'stopped_seconds', p_after_seconds,
              'inactive_types', r.inactive_types)),
            p_channels);
    if ev is not null then evs := evs || ev; end if;
  end loop;

  return query select e.id, e.kind, e.details, e.created_at from public.kiotviet_alert_events e
                where e.id = any (evs) order by e.created_at, e.id;
end $$;

-- The scan callers use gains the webhook limit (default a day, as doctor's "no event for 24 h"). The old
-- signature goes first, so a call by name (PostgREST) or by position with five arguments finds this one.
drop function public.kiotviet_alert_scan(integer, numeric, integer, integer, text[]);
create function public.kiotviet_alert_scan(
  p_failures integer default 1, p_long_factor numeric default 3, p_long_min_seconds integer default 600,
  p_stale_seconds integer default 86400, p_channels text[] default '{}'::text[],
  p_webhooks_stopped_seconds integer default 86400
) returns table (event_id uuid, kind text, details jsonb, created_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(7246001115);  -- kvsync's alert scan; released at commit
  return query
    select s.* from public.kiotviet_alert_scan_once(p_failures, p_long_factor, p_long_min_seconds,
                                                    p_stale_seconds, p_channels) s
    union all
    select w.* from public.kiotviet_alert_scan_webhooks(p_webhooks_stopped_seconds, p_channels) w;
end $$;
comment on function public.kiotviet_alert_scan(integer, numeric, integer, integer, text[], integer) is
  'kvsync: compare every watched subject with its recorded state and raise one event per change; scans take turns';

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_alert_scan(integer, numeric, integer, integer, text[], integer)',
                           'public.kiotviet_alert_scan_webhooks(integer, text[])']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
