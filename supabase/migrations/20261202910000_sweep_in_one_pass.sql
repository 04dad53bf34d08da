-- The sweep of a full reconcile in time linear in the catalogue (issue: "the writer keeps up").
--
-- kiotviet_sweep deleted what a full pass did not see with `where not exists (select from
-- kiotviet_sync_seen ...)`. The seen ids are written during the very pass the sweep ends, so the
-- planner's statistics of kiotviet_sync_seen are those of an empty table (it is scratch space, emptied
-- after every sweep): it estimated one seen row and planned a nested-loop anti join that scans every
-- seen id for every product, n² comparisons: 50 million (about 1 s on 2 cores) for 10,000 products,
-- 5 billion for 100,000. The ids not seen are now found with EXCEPT, which is always a hash or sort of
-- both lists whatever the planner believes, and then deleted by primary key: a sweep costs one read of
-- the table's ids and one of the seen ids. Everything else is as in 20261130000300_rpc.sql.

create or replace function public.kiotviet_sweep(p_run_id uuid, p_credential_id uuid, p_stream text, p_total integer)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  seen integer;
  n integer := 0;
  m integer;
  gone bigint[];
begin
  perform public.kiotviet_assert_running(p_run_id);
  select count(*) into seen from public.kiotviet_sync_seen where run_id = p_run_id and stream = p_stream;
  if seen < coalesce(p_total, 0) then
    delete from public.kiotviet_sync_seen where run_id = p_run_id and stream = p_stream;
    return jsonb_build_object('deleted', 0, 'swept', false, 'seen', seen, 'total', p_total);
  end if;
  if p_stream = 'categories' then
    gone := array(select c.id from public.kiotviet_categories c
                  except select s.id from public.kiotviet_sync_seen s where s.run_id = p_run_id and s.stream = p_stream);
    delete from public.kiotviet_categories c where c.id = any (gone);
    get diagnostics n = row_count;
    if n > 0 then perform public.kiotviet_relink_categories(); end if;
  elsif p_stream = 'products' then
    -- both tables' ids: a row may be in one and not the other (a row written by hand, an older writer)
    gone := array(select f.id from public.kiotviet_products_full f
                  union select p.id from public.kiotviet_products p
                  except select s.id from public.kiotviet_sync_seen s where s.run_id = p_run_id and s.stream = p_stream);
    delete from public.kiotviet_products_full f where f.id = any (gone);
    get diagnostics n = row_count;
    delete from public.kiotviet_products f where f.id = any (gone);  -- inventory rows cascade
    get diagnostics m = row_count; n := greatest(n, m);
  else
    raise exception 'kiotviet_sweep: unknown stream %', p_stream using errcode = '22023';
  end if;
  delete from public.kiotviet_sync_seen where run_id = p_run_id and stream = p_stream;
  insert into public.kiotviet_sync_state as s (credential_id, stream, last_full_at, updated_at)
  values (p_credential_id, p_stream, now(), now())
  on conflict (credential_id, stream) do update set last_full_at = now(), updated_at = now();
  return jsonb_build_object('deleted', n, 'swept', true, 'seen', seen, 'total', p_total);
end $$;
