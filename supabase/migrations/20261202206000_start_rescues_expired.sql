-- A manual sync of a credential whose running run's lease has expired (its worker died, or lost the
-- database and could not finish in time) no longer waits for the next dispatcher tick to rescue that
-- run: it rescues it (kiotviet_rescue_expired, the tick's own function) and goes ahead. A run whose lease
-- still holds keeps the credential: "already syncing", as before.
--
-- kiotviet_start_run: newest definition 20261130000300_rpc.sql, plus the rescue.
create or replace function public.kiotviet_start_run(
  p_credential_id uuid, p_sync_type text, p_trigger text default 'manual', p_worker text default null,
  p_lease_seconds integer default 120, p_options jsonb default '{}'::jsonb
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  active boolean;
  running uuid;
  rid uuid;
begin
  select c.is_active into active from public.kiotviet_credentials c where c.id = p_credential_id;
  if not found then
    raise exception 'credential % does not exist', p_credential_id using errcode = 'P0002';
  end if;
  if not coalesce(active, false) then
    raise exception 'credential % is not active', p_credential_id using errcode = '55000',
      hint = 'Save the KiotViet connection again, or sync with the active credential.';
  end if;
  if p_sync_type not in ('categories', 'products', 'inventory', 'products_full', 'attributes', 'all') then
    raise exception 'syncType must be one of categories, products, inventory, products_full, attributes, all'
      using errcode = '22023';
  end if;
  for attempt in 1..2 loop
    begin
      insert into public.kiotviet_sync_logs
        (sync_type, status, trigger, credential_id, worker, lease_expires_at, heartbeat_at, started_at, options)
      values (p_sync_type, 'running', p_trigger, p_credential_id, p_worker,
              now() + make_interval(secs => p_lease_seconds), now(), now(), coalesce(p_options, '{}'::jsonb))
      returning id into rid;
      return rid;
    exception when unique_violation then
      select l.id into running from public.kiotviet_sync_logs l
       where l.credential_id = p_credential_id and l.status = 'running';
      -- the expiry test of kiotviet_rescue_expired: no lease, a lease past, or one written more than a day ahead
      if attempt = 1 and exists (select from public.kiotviet_sync_logs l
                                  where l.id = running
                                    and (l.lease_expires_at is null or l.lease_expires_at < now()
                                         or l.lease_expires_at > now() + interval '1 day')) then
        perform from public.kiotviet_rescue_expired();
      else
        raise exception 'credential % is already syncing (run %)', p_credential_id, running
          using errcode = '23505', constraint = 'kiotviet_sync_logs_one_running';
      end if;
    end;
  end loop;
  raise exception 'credential % is already syncing (run %)', p_credential_id, running
    using errcode = '23505', constraint = 'kiotviet_sync_logs_one_running';
end $$;
revoke all on function public.kiotviet_start_run(uuid, text, text, text, integer, jsonb) from public, anon, authenticated;
grant execute on function public.kiotviet_start_run(uuid, text, text, text, integer, jsonb) to service_role;
