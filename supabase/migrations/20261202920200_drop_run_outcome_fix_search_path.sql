-- Two tidy-ups (issue "Alerts people read").
--
-- kiotviet_run_outcome told the first alerts what a finished run meant. Alerts read their state from
-- kiotviet_alert_scan now, and kvsync no longer calls it (nor do the monitoring queries or the ERP): a
-- function nobody calls is only something to keep secure.
drop function if exists public.kiotviet_run_outcome(uuid);

-- update_updated_at_column is the ERP's trigger function (erp-contract §4.3: kiotviet_credentials's
-- updated_at trigger), created by kvsync only where the ERP had none. It had no search_path, so it
-- resolved names through the caller's, which Supabase's advisor flags (function_search_path_mutable). Its
-- body names nothing but now() (pg_catalog, always searched), so an empty search_path changes nothing it
-- does. Set only when the body is that one: a project whose ERP wrote a different body keeps it as it is.
do $$
declare body text;
begin
  select p.prosrc into body from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and p.proname = 'update_updated_at_column' and p.pronargs = 0;
  if body is null then
    return;
  end if;
  if regexp_replace(lower(body), '\s+', '', 'g') = 'beginnew.updated_at=now();returnnew;end' then
    alter function public.update_updated_at_column() set search_path = '';
  else
    raise notice 'update_updated_at_column has a body of the ERP''s own; its search_path is left as it is';
  end if;
end $$;
