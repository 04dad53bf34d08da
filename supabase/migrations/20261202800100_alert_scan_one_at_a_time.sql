-- One alert per change of state, however many replicas scan at once (issue "Alerts people read").
-- kiotviet_alert_scan reads each subject's health and its recorded state in one query, then moves the
-- state under a row lock. Two scans running together could each read before the other's move committed:
-- the later one then compared a health it read earlier with a state the other had just recorded, and
-- raised "recovered" and "failing" again for one failure (seen with three replicas' notifiers scanning
-- every 50 ms). Scans are cheap and each replica runs one a minute, so they simply take turns: a
-- transaction-scoped advisory lock is taken before anything is read, so every statement of a scan sees
-- what the scan before it committed.
--
-- The scan itself (20261202600000_alerts.sql) keeps its body under the name kiotviet_alert_scan_once; the
-- name callers use takes the lock and runs it.
alter function public.kiotviet_alert_scan(integer, numeric, integer, integer, text[])
  rename to kiotviet_alert_scan_once;

create function public.kiotviet_alert_scan(
  p_failures integer default 1, p_long_factor numeric default 3, p_long_min_seconds integer default 600,
  p_stale_seconds integer default 86400, p_channels text[] default '{}'::text[]
) returns table (event_id uuid, kind text, details jsonb, created_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(7246001115);  -- kvsync's alert scan; released at commit
  return query select * from public.kiotviet_alert_scan_once(p_failures, p_long_factor, p_long_min_seconds,
                                                             p_stale_seconds, p_channels);
end $$;
comment on function public.kiotviet_alert_scan(integer, numeric, integer, integer, text[]) is
  'kvsync: compare every watched subject with its recorded state and raise one event per change; scans take turns';
revoke all on function public.kiotviet_alert_scan(integer, numeric, integer, integer, text[]) from public, anon, authenticated;
grant execute on function public.kiotviet_alert_scan(integer, numeric, integer, integer, text[]) to service_role;
revoke all on function public.kiotviet_alert_scan_once(integer, numeric, integer, integer, text[]) from public, anon, authenticated;
