-- One bad row never stops anyone else (DESIGN.md §3): whatever an admin (who may write schedules, logs and
-- credentials through RLS) or an adopted database leaves in one row, the rescue and the claim go on for
-- every other credential. Each case puts one poison row next to two healthy credentials with due
-- schedules, runs a tick (rescue, then claim) and checks that both healthy schedules are claimed; the rows
-- are then put back as they were (pg_temp.reset: savepoints would roll back pgTAP's own count too).
-- now() is fixed in this transaction; nothing sleeps.
begin;
select plan(42);
set local client_min_messages = error;  -- the warnings the isolated rows raise on purpose

delete from public.kiotviet_credentials;

insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active) values
  ('c9000000-0000-0000-0000-00000000000a', 'healthyA', 'clientA', 'ct', true),
  ('c9000000-0000-0000-0000-00000000000b', 'healthyB', 'clientB', 'ct', true),
  ('c9000000-0000-0000-0000-00000000000f', 'poison', 'clientF', 'ct', true);
insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency) values
  ('59000000-0000-0000-0000-00000000000a', 'c9000000-0000-0000-0000-00000000000a', 'products', 'hourly'),
  ('59000000-0000-0000-0000-00000000000b', 'c9000000-0000-0000-0000-00000000000b', 'inventory', 'daily'),
  ('59000000-0000-0000-0000-00000000000f', 'c9000000-0000-0000-0000-00000000000f', 'products', 'hourly');
update public.kiotviet_sync_schedules set next_run_at = now() - interval '10 minutes';

-- Puts the three credentials and their due schedules back as they were, without runs or test triggers.
create function pg_temp.reset() returns void language plpgsql as $$
begin
  drop trigger if exists refuse_poison on public.kiotviet_sync_schedules;
  drop trigger if exists refuse_poison on public.kiotviet_sync_logs;
  drop trigger if exists refuse_poison_run on public.kiotviet_sync_logs;
  drop table if exists pg_temp.gone, pg_temp.expired;
  delete from public.kiotviet_sync_logs;
  insert into public.kiotviet_credentials (id, retailer_name, client_id, encrypted_token, is_active)
  values ('c9000000-0000-0000-0000-00000000000f', 'poison', 'clientF', 'ct', true)
  on conflict (id) do update set is_active = true, token_version = 0;
  insert into public.kiotviet_sync_schedules (id, credential_id, sync_type, frequency)
  values ('59000000-0000-0000-0000-00000000000f', 'c9000000-0000-0000-0000-00000000000f', 'products', 'hourly')
  on conflict (id) do nothing;
  update public.kiotviet_sync_schedules
     set consecutive_failures = 0, last_status = null, last_error = null, next_run_at = now() - interval '10 minutes';
end $$;

-- One tick as the dispatcher does it: the rescue (its error, if any, caught as the Go side catches it),
-- then the claim. Returns the credentials claimed.
create function pg_temp.tick() returns setof uuid language plpgsql as $$
begin
  perform set_config('poison.rescue_error', '', true);
  begin
    perform public.kiotviet_rescue_expired();
  exception when others then
    perform set_config('poison.rescue_error', sqlerrm, true);
  end;
  return query select c.credential_id from public.kiotviet_claim_due('poison-test', 10, 60) c;
end $$;

-- Both healthy credentials' due schedules are claimed by a tick, and its rescue did not fail.
create function pg_temp.healthy_claimed(p_name text) returns text language plpgsql as $$
declare
  claimed uuid[] := array(select t from pg_temp.tick() t where t::text like 'c9000000-%0a' or t::text like 'c9000000-%0b'
                           order by 1);
begin
  return ok(claimed = array['c9000000-0000-0000-0000-00000000000a', 'c9000000-0000-0000-0000-00000000000b']::uuid[]
            and current_setting('poison.rescue_error') = '',
            p_name || ': the rescue succeeds and the other credentials'' due schedules are claimed')
         || case when current_setting('poison.rescue_error') <> ''
                 then E'\n' || diag('rescue failed: ' || current_setting('poison.rescue_error')) else '' end;
end $$;

-- An expired running run of the poison credential's schedule.
create function pg_temp.expired_run(p_lease timestamptz) returns uuid language sql as $$
  insert into public.kiotviet_sync_logs (sync_type, status, trigger, credential_id, schedule_id, slot_at, worker, lease_expires_at, heartbeat_at)
  values ('products', 'running', 'cron', 'c9000000-0000-0000-0000-00000000000f', '59000000-0000-0000-0000-00000000000f',
          now() - interval '1 hour', 'dead-worker', p_lease, now() - interval '1 hour')
  returning id
$$;

select pg_temp.healthy_claimed('no poison (control)');
select ok(exists (select from public.kiotviet_sync_logs where credential_id = 'c9000000-0000-0000-0000-00000000000f' and status = 'running'),
          'no poison (control): the third credential is claimed too');
delete from public.kiotviet_sync_logs;

------------------------------------------------------------------------------------------------------------
-- Huge counters
select throws_ok($$update public.kiotviet_sync_schedules set consecutive_failures = 2147483647
                    where id = '59000000-0000-0000-0000-00000000000f'$$,
                 '23514', null, 'huge counters: a failure count beyond 1,000,000 is refused');
select throws_like($$update public.kiotviet_sync_schedules set consecutive_failures = -1
                      where id = '59000000-0000-0000-0000-00000000000f'$$,
                   '%kiotviet_sync_schedules_failures_range%', 'huge counters: the refusal names the rule');
update public.kiotviet_sync_schedules set consecutive_failures = 1000000 where id = '59000000-0000-0000-0000-00000000000f';
select pg_temp.expired_run(now() - interval '1 minute');
select pg_temp.healthy_claimed('failure count at its bound with an expired run (the reported poison)');
select results_eq($$select consecutive_failures, next_run_at > now() from public.kiotviet_sync_schedules
                     where id = '59000000-0000-0000-0000-00000000000f'$$,
                  $$values (1000000, true)$$,
                  'huge counters: the rescue backs the schedule off and the count stays at its bound');
select is((select status from public.kiotviet_sync_logs where worker = 'dead-worker'), 'failed',
          'huge counters: the expired run is rescued');
select pg_temp.reset();
update public.kiotviet_sync_schedules set consecutive_failures = 999999 where id = '59000000-0000-0000-0000-00000000000f';
select pg_temp.expired_run(now() - interval '1 minute');
select throws_ok($$update public.kiotviet_sync_logs set api_calls = -5$$ , '23514', null,
                 'huge counters: negative API calls are refused');
select lives_ok($$select public.kiotviet_finish_run(id, 'failed', 0, '{}', 0, 'x') from public.kiotviet_sync_logs
                   where worker = 'dead-worker'$$,
                'huge counters: a failed run of a schedule one below the bound finishes');
select is((select consecutive_failures from public.kiotviet_sync_schedules where id = '59000000-0000-0000-0000-00000000000f'),
          1000000, 'huge counters: the finish counts up to the bound');
select pg_temp.healthy_claimed('failure count at the bound after a finish');
select pg_temp.reset();
select is(public.kiotviet_backoff(2147483647, interval '1 hour'), interval '1 hour',
          'backoff: the largest integer count gives one period');
select is(public.kiotviet_backoff(null, null), interval '5 minutes', 'backoff: no count and no period give the first step');
select is(public.kiotviet_backoff(-2147483648, interval '1 day'), interval '5 minutes', 'backoff: a negative count gives the first step');

update public.kiotviet_credentials set token_version = 4611686018427387903 where id = 'c9000000-0000-0000-0000-00000000000f';
select is(public.kiotviet_store_token('c9000000-0000-0000-0000-00000000000f', 'ct2', now(), 4611686018427387903), 0::bigint,
          'huge counters: a token version at its bound wraps to 0 instead of overflowing');
select throws_ok($$update public.kiotviet_credentials set token_version = 9223372036854775807$$, '23514', null,
                 'huge counters: a token version beyond its bound is refused');
select pg_temp.reset();
------------------------------------------------------------------------------------------------------------
-- Infinite and far leases
select throws_ok($$select pg_temp.expired_run('infinity')$$, '23514', null, 'infinite lease: refused');
select pg_temp.expired_run(now() + interval '100 years');
select pg_temp.healthy_claimed('a lease 100 years ahead');
select is((select status from public.kiotviet_sync_logs where worker = 'dead-worker'), 'failed',
          'a lease 100 years ahead: the run is rescued (no kvsync lease is longer than an hour)');
select ok((select error_message like '%more than a day ahead%' from public.kiotviet_sync_logs where worker = 'dead-worker'),
          'a lease 100 years ahead: the run''s error says why');
select pg_temp.reset();
select pg_temp.expired_run(now() + interval '2 minutes');
select pg_temp.healthy_claimed('a live run of the third credential');
select is((select status from public.kiotviet_sync_logs where worker = 'dead-worker'), 'running',
          'a live run (lease two minutes ahead) is left alone');
select pg_temp.reset();
------------------------------------------------------------------------------------------------------------
-- Infinite schedule times
select throws_ok($$update public.kiotviet_sync_schedules set next_run_at = '-infinity'
                    where id = '59000000-0000-0000-0000-00000000000f'$$,
                 '23514', null, 'infinite times: a next run at -infinity is refused');
select throws_ok($$update public.kiotviet_sync_schedules set last_run_at = 'infinity'
                    where id = '59000000-0000-0000-0000-00000000000f'$$,
                 '23514', null, 'infinite times: a last run at infinity is refused');

------------------------------------------------------------------------------------------------------------
-- Null fields the code assumes
insert into public.kiotviet_sync_logs (sync_type, status, trigger, credential_id, schedule_id, slot_at, worker, lease_expires_at, heartbeat_at)
values ('products', 'running', 'cron', 'c9000000-0000-0000-0000-00000000000f', null, null, null, null, null);
select pg_temp.healthy_claimed('a running cron run without lease, worker, slot, heartbeat or schedule');
select is((select status from public.kiotviet_sync_logs where credential_id = 'c9000000-0000-0000-0000-00000000000f' and worker is null),
          'failed', 'a running run without a lease is rescued');
select pg_temp.reset();
select pg_temp.expired_run(now() - interval '1 minute');
update public.kiotviet_sync_logs set slot_at = null, worker = null where worker = 'dead-worker';
select pg_temp.healthy_claimed('an expired run without slot or worker');
select is((select next_run_at > now() from public.kiotviet_sync_schedules where id = '59000000-0000-0000-0000-00000000000f'),
          true, 'an expired run without slot or worker: its schedule backs off');
select pg_temp.reset();
update public.kiotviet_sync_schedules set next_run_at = null where id = '59000000-0000-0000-0000-00000000000f';
select pg_temp.healthy_claimed('a schedule without a next run');
select pg_temp.reset();
update public.kiotviet_credentials set is_active = null where id = 'c9000000-0000-0000-0000-00000000000f';
select pg_temp.healthy_claimed('a credential whose is_active is null');
select ok(not exists (select from public.kiotviet_sync_logs where credential_id = 'c9000000-0000-0000-0000-00000000000f'),
          'a credential whose is_active is null is not run');
select pg_temp.reset();
------------------------------------------------------------------------------------------------------------
-- A credential deleted under a running run
create temporary table gone as select pg_temp.expired_run(now() + interval '2 minutes') as id;
delete from public.kiotviet_credentials where id = 'c9000000-0000-0000-0000-00000000000f';
select pg_temp.healthy_claimed('a credential deleted under a running run');
select is(public.kiotviet_heartbeat((select id from gone), 'w'), false,
          'a credential deleted under a running run: the run''s heartbeat says stop');
select throws_ok($$select public.kiotviet_finish_run((select id from gone), 'success')$$, '55000', null,
                 'a credential deleted under a running run: its finish is refused as "not running"');
select pg_temp.reset();
------------------------------------------------------------------------------------------------------------
-- A row that fails for a reason nobody foresaw (here: a trigger that raises for one credential)
create function pg_temp.refuse_poison() returns trigger language plpgsql as $$
begin
  if new.credential_id = 'c9000000-0000-0000-0000-00000000000f' then
    raise exception 'poison row %', new.id;
  end if;
  return new;
end $$;

create temporary table expired as select pg_temp.expired_run(now() - interval '1 minute') as id;
insert into public.kiotviet_sync_logs (sync_type, status, trigger, credential_id, schedule_id, worker, lease_expires_at)
values ('products', 'running', 'manual', 'c9000000-0000-0000-0000-00000000000b', null,
        'dead-healthy', now() - interval '1 minute');
create trigger refuse_poison before update on public.kiotviet_sync_schedules
  for each row execute function pg_temp.refuse_poison();
select lives_ok('select public.kiotviet_rescue_expired()', 'a schedule whose update fails: the rescue does not fail');
select is((select status from public.kiotviet_sync_logs where worker = 'dead-healthy'), 'failed',
          'a schedule whose update fails: the other credential''s expired run is rescued');
select ok((select status = 'failed' and lease_expires_at is null and error_message like 'the rescue of this expired run failed: poison row%'
             from public.kiotviet_sync_logs where id = (select id from expired)),
          'a schedule whose update fails: its run is marked failed with the reason');
select pg_temp.healthy_claimed('a schedule whose update fails');
select pg_temp.reset();
create trigger refuse_poison before insert on public.kiotviet_sync_logs
  for each row execute function pg_temp.refuse_poison();
select pg_temp.healthy_claimed('a schedule whose run row cannot be inserted');
select results_eq($$select last_status, last_error like 'could not be claimed: poison row%', consecutive_failures, next_run_at > now()
                     from public.kiotviet_sync_schedules where id = '59000000-0000-0000-0000-00000000000f'$$,
                  $$values ('failed'::text, true, 1, true)$$,
                  'a schedule whose run row cannot be inserted: marked failed with the reason and backed off');
select pg_temp.reset();
create trigger refuse_poison before update on public.kiotviet_sync_schedules
  for each row execute function pg_temp.refuse_poison();
create trigger refuse_poison_run before insert or update on public.kiotviet_sync_logs
  for each row execute function pg_temp.refuse_poison();
select pg_temp.expired_run(now() - interval '1 minute') where false;  -- (the insert would be refused)
select pg_temp.healthy_claimed('a schedule that can be neither claimed nor marked');
select is((select count(*)::int from public.kiotviet_sync_logs where status = 'running'), 2,
          'a schedule that can be neither claimed nor marked: only the two healthy runs start');
select pg_temp.reset();
select * from finish();
rollback;
