-- DESIGN.md §3: a permanent failure (KiotViet rejects the credentials) pauses the credential's schedules
-- with the reason until the credentials are saved again; kvsync schedule resume (kiotviet_resume_schedules)
-- and the card's switch resume too. The ERP card reads enabled: a paused schedule is enabled = false.
begin;
select plan(13);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1700000-0000-0000-0000-000000000001', 'rejected-shop', 'client', 'ct', true);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, enabled) values
  ('51700000-0000-0000-0000-000000000001', 'c1700000-0000-0000-0000-000000000001', 'products_full', 'hourly', true),
  ('51700000-0000-0000-0000-000000000002', 'c1700000-0000-0000-0000-000000000001', 'inventory', 'daily', true),
  ('51700000-0000-0000-0000-000000000003', 'c1700000-0000-0000-0000-000000000001', 'attributes', 'daily', false);

select is(public.kiotviet_pause_schedules('c1700000-0000-0000-0000-000000000001',
            'KiotViet rejected the client id or secret (status 400, invalid_client)'), 2,
          'pause: the credential''s two enabled schedules are paused');
select set_eq($$select id, enabled, paused_reason from public.kiotviet_sync_schedules where credential_id = 'c1700000-0000-0000-0000-000000000001'$$,
  $$values ('51700000-0000-0000-0000-000000000001'::uuid, false, 'KiotViet rejected the client id or secret (status 400, invalid_client)'),
           ('51700000-0000-0000-0000-000000000002', false, 'KiotViet rejected the client id or secret (status 400, invalid_client)'),
           ('51700000-0000-0000-0000-000000000003', false, null)$$,
  'pause: enabled false with the reason; a schedule switched off by hand is not marked paused');
update public.kiotviet_sync_schedules set next_run_at = now() - interval '1 minute' where credential_id = 'c1700000-0000-0000-0000-000000000001';
select is((select count(*)::int from public.kiotviet_claim_due('w-pause', 10)), 0, 'a paused schedule is not claimed');
select is((select paused_reason from public.kiotviet_schedule_status where schedule_id = '51700000-0000-0000-0000-000000000001'),
  'KiotViet rejected the client id or secret (status 400, invalid_client)', 'the status view shows the reason');
select ok((select not is_due from public.kiotviet_schedule_status where schedule_id = '51700000-0000-0000-0000-000000000001'),
  'a paused schedule is not due');

-- Resume by CLI (one schedule)
select is(public.kiotviet_resume_schedules(p_schedule_id => '51700000-0000-0000-0000-000000000001'), 1, 'resume: one schedule');
select is(enabled || ' ' || coalesce(paused_reason, '-') || ' ' || (next_run_at = now()), 'true - true',
          'resume: enabled, the reason cleared, due at once')
  from public.kiotviet_sync_schedules where id = '51700000-0000-0000-0000-000000000001';
select is(public.kiotviet_resume_schedules(p_schedule_id => '51700000-0000-0000-0000-000000000003'), 0,
          'resume does not switch on a schedule that was switched off by hand');

-- The card's switch resumes (the admin switches it on)
select public.kiotviet_pause_schedules('c1700000-0000-0000-0000-000000000001', 'rejected again');
select set_config('request.jwt.claims', '{"sub":"a1700000-0000-0000-0000-000000000001","role":"authenticated","app_metadata":{"role":"admin"}}', true);
set local role authenticated;
update public.kiotviet_sync_schedules set frequency = 'daily', custom_interval_hours = null, enabled = true
 where id = '51700000-0000-0000-0000-000000000002';
reset role;
select is(enabled || ' ' || coalesce(paused_reason, '-'), 'true -', 'the card''s switch on resumes a paused schedule')
  from public.kiotviet_sync_schedules where id = '51700000-0000-0000-0000-000000000002';

-- Saving the connection again resumes the rest
select public.kiotviet_pause_schedules('c1700000-0000-0000-0000-000000000001', 'rejected once more');
select public.kiotviet_save_credential('c1700000-0000-0000-0000-000000000002', null, 'rejected-shop', 'client', 's', 't', now() + interval '1 day');
select set_eq($$select id, enabled, paused_reason from public.kiotviet_sync_schedules where credential_id = 'c1700000-0000-0000-0000-000000000002'$$,
  $$values ('51700000-0000-0000-0000-000000000001'::uuid, true, null::text), ('51700000-0000-0000-0000-000000000002', true, null),
           ('51700000-0000-0000-0000-000000000003', false, null)$$,
  'saving the credentials again moves the schedules and resumes the paused ones (not the one switched off by hand)');
select is(next_run_at, now(), 'a resumed schedule is due at once')
  from public.kiotviet_sync_schedules where id = '51700000-0000-0000-0000-000000000001';
select is(public.kiotviet_pause_schedules('c1700000-0000-0000-0000-000000000002', '  '), 2, 'a pause without a reason still pauses');
select is(paused_reason, 'paused', '... and says paused')
  from public.kiotviet_sync_schedules where id = '51700000-0000-0000-0000-000000000001';
select * from finish();
rollback;
