-- Stock-scan relief: stock moves do not change a product's modifiedDate, so the inventory sync reads
-- /productOnHands in full every time (1,000 calls for 100,000 products). While a credential's stock
-- webhooks are healthy, stock.update events keep the stock fresh and a full scan is only needed as the
-- safety net, so it may run less often. Polling stays the truth: the scan still runs whenever the
-- webhooks are not clearly healthy, and at least every p_scan_every_seconds.

-- Whether this inventory run must scan stock in full. It may skip only when all hold: relief is on
-- (p_scan_every_seconds > 0), the stock.update registration is active, an event arrived within
-- p_quiet_seconds, no event was parked since the last full scan, and that scan is younger than
-- p_scan_every_seconds.
create or replace function public.kiotviet_stock_scan_due(p_credential_id uuid, p_scan_every_seconds integer,
  p_quiet_seconds integer default 3600)
returns boolean
language sql stable security definer set search_path = '' as $$
  with last_scan as (
    select s.last_full_at from public.kiotviet_sync_state s
     where s.credential_id = p_credential_id and s.stream = 'inventory'
  )
  select not (
    coalesce(p_scan_every_seconds, 0) > 0
    and exists (select from last_scan where last_full_at > now() - make_interval(secs => p_scan_every_seconds))
    and exists (select from public.kiotviet_webhook_registrations r
                 where r.credential_id = p_credential_id and r.event_type = 'stock.update' and r.is_active)
    and exists (select from public.kiotviet_webhook_events e
                 where e.credential_id = p_credential_id
                   and e.received_at > now() - make_interval(secs => greatest(coalesce(p_quiet_seconds, 3600), 60)))
    and not exists (select from public.kiotviet_webhook_events e, last_scan l
                     where e.credential_id = p_credential_id and e.status = 'parked' and e.received_at >= l.last_full_at)
  )
$$;

-- Records a complete full stock scan (the time relief counts from).
create or replace function public.kiotviet_stock_scanned(p_credential_id uuid) returns void
language sql volatile security definer set search_path = '' as $$
  insert into public.kiotviet_sync_state as s (credential_id, stream, last_full_at, updated_at)
  values (p_credential_id, 'inventory', now(), now())
  on conflict (credential_id, stream) do update set last_full_at = now(), updated_at = now()
$$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_stock_scan_due(uuid, integer, integer)', 'public.kiotviet_stock_scanned(uuid)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
