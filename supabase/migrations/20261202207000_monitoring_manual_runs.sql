-- kiotviet_run_stats counts manual runs too: a run started by the ERP's button, `kvsync sync` or the API
-- counts for the schedule of its credential and sync type (before, only the scheduled runs did, so a shop
-- syncing by hand looked idle, and its failures went unseen). It also shows, per schedule, the manual
-- share, the last failure and its reason, the next retry of a failing schedule, and the schedule's time
-- zone, with those times as text in it (named).
create or replace view public.kiotviet_run_stats with (security_invoker = true) as
select
  s.id as schedule_id,
  s.credential_id,
  c.retailer_name,
  s.sync_type,
  count(l.id) filter (where l.started_at >= now() - interval '7 days') as runs_7d,
  count(l.id) filter (where l.started_at >= now() - interval '7 days' and l.status = 'failed') as failed_7d,
  round(count(l.id) filter (where l.started_at >= now() - interval '7 days' and l.status = 'success')::numeric
        / nullif(count(l.id) filter (where l.started_at >= now() - interval '7 days'
                                     and l.status in ('success', 'partial', 'failed')), 0), 4) as success_rate_7d,
  round(percentile_cont(0.5) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.started_at >= now() - interval '7 days' and l.status in ('success', 'partial', 'failed')
            and l.completed_at is not null)::numeric, 3) as p50_seconds_7d,
  round(percentile_cont(0.95) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.started_at >= now() - interval '7 days' and l.status in ('success', 'partial', 'failed')
            and l.completed_at is not null)::numeric, 3) as p95_seconds_7d,
  coalesce(sum(l.records_synced) filter (where l.started_at >= now() - interval '7 days'), 0) as records_synced_7d,
  coalesce(sum(l.api_calls) filter (where l.started_at >= now() - interval '7 days'), 0) as api_calls_7d,
  count(l.id) as runs_30d,
  count(l.id) filter (where l.status = 'failed') as failed_30d,
  round(count(l.id) filter (where l.status = 'success')::numeric
        / nullif(count(l.id) filter (where l.status in ('success', 'partial', 'failed')), 0), 4) as success_rate_30d,
  round(percentile_cont(0.5) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.status in ('success', 'partial', 'failed') and l.completed_at is not null)::numeric, 3) as p50_seconds_30d,
  round(percentile_cont(0.95) within group (order by extract(epoch from (l.completed_at - l.started_at)))
    filter (where l.status in ('success', 'partial', 'failed') and l.completed_at is not null)::numeric, 3) as p95_seconds_30d,
  coalesce(sum(l.records_synced), 0) as records_synced_30d,
  coalesce(sum(l.api_calls), 0) as api_calls_30d,
  -- added by this migration (appended, so the columns above keep their places)
  count(l.id) filter (where l.started_at >= now() - interval '7 days' and l.trigger <> 'cron') as manual_runs_7d,
  count(l.id) filter (where l.trigger <> 'cron') as manual_runs_30d,
  max(l.completed_at) filter (where l.status in ('failed', 'partial')) as last_failed_at,
  (array_agg(l.error_message order by l.completed_at desc nulls last)
     filter (where l.status in ('failed', 'partial')))[1] as last_failure_reason,
  case when s.consecutive_failures > 0 and s.enabled then s.next_run_at end as next_retry_at,
  s.timezone,
  public.kiotviet_local_time(max(l.completed_at) filter (where l.status in ('failed', 'partial')), s.timezone) as last_failed_local,
  public.kiotviet_local_time(case when s.consecutive_failures > 0 and s.enabled then s.next_run_at end, s.timezone) as next_retry_local
from public.kiotviet_sync_schedules s
left join public.kiotviet_credentials c on c.id = s.credential_id
left join public.kiotviet_sync_logs l
  on l.started_at >= now() - interval '30 days'
 and (l.schedule_id = s.id
      or (l.schedule_id is null and l.credential_id = s.credential_id and l.sync_type = s.sync_type))
group by s.id, s.credential_id, c.retailer_name, s.sync_type, s.consecutive_failures, s.enabled, s.next_run_at, s.timezone;
comment on view public.kiotviet_run_stats is
  'kvsync: per schedule over 7 and 30 days (its scheduled runs and the manual runs of its credential and type): runs, success rate, p50/p95 duration, rows, API calls, last failure and its reason, next retry, in the schedule''s zone';

revoke all on public.kiotviet_run_stats from public, anon, authenticated, service_role;
grant select on public.kiotviet_run_stats to authenticated, service_role;
