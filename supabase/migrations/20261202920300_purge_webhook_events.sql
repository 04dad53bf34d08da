-- Retention for KiotViet webhook events: a shop that sells all day stores thousands a day, each with its
-- body, and nothing deleted them. kiotviet_purge (daily, pg_cron) now also deletes events applied before
-- the cutoff. Kept whatever their age: events not applied yet (pending, applying) and parked ones (someone
-- must look at them: kvsync doctor fails on them, kiotviet_webhook_retry requeues them), and each
-- credential's newest event, so "when did the last webhook arrive" (doctor, /metrics, the "webhooks
-- stopped" alert) stays true for a shop that has been quiet longer than the retention.
-- As in 20261202920100_purge_alerts.sql otherwise.
create or replace function public.kiotviet_purge(p_keep interval default '30 days') returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_cutoff timestamptz;
  v_cron bigint;
  v_net bigint;
  v_logs bigint;
  v_deliveries bigint;
  v_events bigint;
  v_states bigint;
  v_hooks bigint;
begin
  if p_keep is null or p_keep < interval '1 day' then
    raise exception 'kiotviet_purge: p_keep must be at least 1 day (got %)', p_keep using errcode = '22023';
  end if;
  v_cutoff := now() - p_keep;

  delete from cron.job_run_details d
   where coalesce(d.end_time, d.start_time) < v_cutoff
     and d.status is distinct from 'running';
  get diagnostics v_cron = row_count;

  delete from net._http_response r where r.created < v_cutoff;
  get diagnostics v_net = row_count;

  delete from public.kiotviet_sync_logs l
   where l.status <> 'running'
     and coalesce(l.completed_at, l.started_at) < v_cutoff;
  get diagnostics v_logs = row_count;

  with settled as (
    select e.id from public.kiotviet_alert_events e
     where e.created_at < v_cutoff
       and not exists (select from public.kiotviet_alert_deliveries d where d.event_id = e.id and d.status = 'pending')
  ), dd as (
    delete from public.kiotviet_alert_deliveries d using settled s where d.event_id = s.id returning 1
  ), de as (
    delete from public.kiotviet_alert_events e using settled s where e.id = s.id returning 1
  )
  select (select count(*) from dd), (select count(*) from de) into v_deliveries, v_events;

  delete from public.kiotviet_alert_state a
   where a.state = 'ok' and a.updated_at < v_cutoff
     and not exists (select from public.kiotviet_alert_events e where starts_with(e.dedupe_key, a.subject || ':'));
  get diagnostics v_states = row_count;

  delete from public.kiotviet_webhook_events e
   where e.status = 'applied' and e.received_at < v_cutoff
     and e.received_at < (select max(n.received_at) from public.kiotviet_webhook_events n
                           where n.credential_id = e.credential_id);
  get diagnostics v_hooks = row_count;

  return jsonb_build_object('cutoff', v_cutoff, 'cron_job_run_details', v_cron,
                            'net_http_response', v_net, 'kiotviet_sync_logs', v_logs,
                            'kiotviet_alert_events', v_events, 'kiotviet_alert_deliveries', v_deliveries,
                            'kiotviet_alert_state', v_states, 'kiotviet_webhook_events', v_hooks);
end $$;
comment on function public.kiotviet_purge(interval) is
  'kvsync: delete cron.job_run_details, net._http_response, finished kiotviet_sync_logs, settled alerts and applied webhook events older than p_keep';
