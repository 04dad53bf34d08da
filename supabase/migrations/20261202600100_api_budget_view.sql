-- For /metrics: how much of each active credential's shared KiotViet API budget (kiotviet_api_grants,
-- 20261202100100_api_budget.sql) the last hour used, read at scrape time so every replica reports the same.
-- Grants older than an hour no longer count, as in kiotviet_take_api_calls.
create or replace function public.kiotviet_api_budget_used()
returns table (credential_id uuid, retailer_name text, used_last_hour bigint)
language sql stable security definer set search_path = '' as $$
  select c.id, c.retailer_name,
         coalesce((select sum(g.n) from public.kiotviet_api_grants g
                    where g.credential_id = c.id and g.granted_at > now() - interval '1 hour'), 0)::bigint
    from public.kiotviet_credentials c
   where c.is_active
   order by c.retailer_name, c.id
$$;
revoke all on function public.kiotviet_api_budget_used() from public, anon, authenticated;
grant execute on function public.kiotviet_api_budget_used() to service_role;
