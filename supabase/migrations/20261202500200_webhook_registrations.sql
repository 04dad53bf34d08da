-- What kvsync registered with KiotViet for a credential (kvsync webhooks register | list | remove), and
-- what doctor found when it compared that with KiotViet's own list.

-- Records a registration (or replaces the one of that type): KiotViet's id, the URL, whether it is active.
create or replace function public.kiotviet_webhook_set_registration(p_credential_id uuid, p_event_type text,
  p_kiotviet_webhook_id bigint, p_url text, p_is_active boolean, p_problem text default null)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if coalesce(p_event_type, '') !~ '^[a-z]+\.(update|delete)$' then
    raise exception 'event type % is not a KiotViet webhook type such as product.update', p_event_type using errcode = '22023';
  end if;
  if coalesce(p_url, '') !~ '^https?://' then
    raise exception 'a webhook URL must start with https:// (or http:// for local tests)' using errcode = '22023';
  end if;
  insert into public.kiotviet_webhook_registrations as r (credential_id, event_type, kiotviet_webhook_id, url,
    is_active, registered_at, checked_at, problem)
  values (p_credential_id, p_event_type, p_kiotviet_webhook_id, p_url, coalesce(p_is_active, true), now(), now(), p_problem)
  on conflict (credential_id, event_type) do update
    set kiotviet_webhook_id = excluded.kiotviet_webhook_id, url = excluded.url, is_active = excluded.is_active,
        registered_at = case when r.kiotviet_webhook_id is distinct from excluded.kiotviet_webhook_id
                             then now() else r.registered_at end,
        checked_at = now(), problem = excluded.problem;
end $$;

-- Forgets a registration (removed from KiotViet). Returns whether there was one.
create or replace function public.kiotviet_webhook_delete_registration(p_credential_id uuid, p_event_type text)
returns boolean
language sql volatile security definer set search_path = '' as $$
  with d as (
    delete from public.kiotviet_webhook_registrations where credential_id = p_credential_id and event_type = p_event_type
    returning 1
  )
  select exists (select from d)
$$;

-- A credential's registrations as kvsync recorded them.
create or replace function public.kiotviet_webhook_list_registrations(p_credential_id uuid)
returns table (credential_id uuid, event_type text, kiotviet_webhook_id bigint, url text, is_active boolean,
               registered_at timestamptz, checked_at timestamptz, problem text)
language sql stable security definer set search_path = '' as $$
  select r.credential_id, r.event_type, r.kiotviet_webhook_id, r.url, r.is_active, r.registered_at, r.checked_at, r.problem
    from public.kiotviet_webhook_registrations r
   where p_credential_id is null or r.credential_id = p_credential_id
   order by r.credential_id, r.event_type
$$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_webhook_set_registration(uuid, text, bigint, text, boolean, text)',
                           'public.kiotviet_webhook_delete_registration(uuid, text)',
                           'public.kiotviet_webhook_list_registrations(uuid)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
