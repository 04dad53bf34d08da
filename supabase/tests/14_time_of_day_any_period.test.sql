-- DESIGN.md §3: a time of day anchors the grid for any period; the ERP card cannot see or clear it, so
-- every period it can write (hourly, daily, custom 1–168) must work on a schedule that has one.
begin;
select plan(7);
delete from public.kiotviet_credentials;
insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c1400000-0000-0000-0000-000000000001', 'tod-shop', 'client', 'ct', true);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency, custom_interval_hours, time_of_day) values
  ('51400000-0000-0000-0000-000000000001', 'c1400000-0000-0000-0000-000000000001', 'products_full', 'custom', 6, '02:00');

-- Every value the card can write, as the card writes it (frequency and custom_interval_hours), after a
-- success half an hour ago: the update is accepted and the next run is ahead, within one period, on a grid
-- through 02:00 local.
create temporary table tried (value text, ok boolean, next_at timestamptz, step interval, slot timestamptz);
do $$
declare
  v record;
  n timestamptz;
begin
  for v in select 'hourly' f, null::int h union all select 'daily', null
           union all select 'custom', g from generate_series(1, 168) g
  loop
    begin
      update public.kiotviet_sync_schedules set last_run_at = now() - interval '30 minutes', frequency = 'daily',
        custom_interval_hours = null where id = '51400000-0000-0000-0000-000000000001' and v.f <> 'daily';
      update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 7
        where id = '51400000-0000-0000-0000-000000000001' and v.f = 'daily';
      update public.kiotviet_sync_schedules set frequency = v.f, custom_interval_hours = v.h
        where id = '51400000-0000-0000-0000-000000000001' returning next_run_at into n;
      insert into tried select v.f || coalesce(v.h::text, ''), true, n, public.kiotviet_schedule_interval(v.f, v.h), last_slot_at
        from public.kiotviet_sync_schedules where id = '51400000-0000-0000-0000-000000000001';
    exception when others then
      insert into tried values (v.f || coalesce(v.h::text, '') || ': ' || sqlerrm, false, null, null, null);
    end;
  end loop;
end $$;
select is((select count(*)::int from tried), 170, 'the card''s 170 periods were each tried');
select is_empty($$select value from tried where not ok$$, 'with a time of day set, every period the card can write is accepted');
select is_empty($$select value from tried where ok and not (next_at > now() and next_at <= now() + step)$$,
  'each is due within one period, and not at once (the last success was 30 minutes ago, less than any period)');
select is_empty($$select value from tried where ok and
    (extract(epoch from ((next_at at time zone 'Asia/Ho_Chi_Minh') - ((slot at time zone 'Asia/Ho_Chi_Minh')::date + time '02:00')))::bigint
     % extract(epoch from step)::bigint) <> 0 and (slot at time zone 'Asia/Ho_Chi_Minh')::time = '02:00'$$,
  'each next run is whole periods from its 02:00 anchor');
select is_empty($$select value from tried where ok and
    extract(epoch from (next_at - slot))::bigint <> extract(epoch from step)::bigint$$,
  'each grid column is exactly one period before its next run (Asia/Ho_Chi_Minh has no DST)');

-- Every 5 h from 02:00 runs 02:00, 07:00, 12:00, 17:00, 22:00, then 03:00 the next day: the grid crosses days.
update public.kiotviet_sync_schedules set frequency = 'custom', custom_interval_hours = 5
 where id = '51400000-0000-0000-0000-000000000001';
update public.kiotviet_sync_schedules set last_run_at = null, last_slot_at = '2026-01-10 02:00+07', next_run_at = '2026-01-10 07:00+07' where id = '51400000-0000-0000-0000-000000000001';
select is(array(select public.kiotviet_next_slot('custom', 5, '02:00', 'Asia/Ho_Chi_Minh', '2026-01-10 02:00+07',
                         '2026-01-10 02:00+07'::timestamptz + make_interval(hours => 5 * k)) at time zone 'Asia/Ho_Chi_Minh'
                from generate_series(0, 5) k),
          array['2026-01-10 07:00', '2026-01-10 12:00', '2026-01-10 17:00', '2026-01-10 22:00', '2026-01-11 03:00',
                '2026-01-11 08:00']::timestamp[],
          'every 5 h from 02:00: 07:00, 12:00, 17:00, 22:00, then 03:00 and 08:00 the next day');
-- a success claimed for 22:00 finishing after midnight keeps that grid
select is(public.kiotviet_schedule_after_run('51400000-0000-0000-0000-000000000001', 'success', '2026-01-10 22:00+07', null)
            at time zone 'Asia/Ho_Chi_Minh',
          public.kiotviet_next_slot('custom', 5, '02:00', 'Asia/Ho_Chi_Minh', '2026-01-10 22:00+07', now()) at time zone 'Asia/Ho_Chi_Minh',
          'a success on the 5 h grid keeps its slots across days');
select * from finish();
rollback;
