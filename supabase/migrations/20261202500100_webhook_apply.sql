-- Applying stored webhook events. Every replica's applier claims due events with FOR UPDATE SKIP LOCKED
-- (so replicas never apply the same event at once and never wait on each other), applies each through
-- the same page functions the sync uses, and marks it applied; a failure is retried with backoff and,
-- after the last attempt, parked with its reason for status and doctor, never blocking the others.
-- Newer wins: an update is applied only where its ModifiedDate is newer than the row's, so a repeated,
-- reordered or late event never overwrites newer data.

------------------------------------------------------------------------------------------------------------
-- A page may be written by a run that still holds its lease, or by a webhook event its worker still holds
-- (status applying). Started from the definition in 20261130000300_rpc.sql; only the second case is new.
create or replace function public.kiotviet_assert_running(p_run_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  -- FOR SHARE: a rescue or finish of this run waits for the page's commit, so no page lands after its
  -- run was declared dead.
  perform from public.kiotviet_sync_logs where id = p_run_id and status = 'running' for share;
  if found then
    return;
  end if;
  -- a webhook event being applied: FOR SHARE too, so a reclaim after its lease waits for this write
  perform from public.kiotviet_webhook_events where id = p_run_id and status = 'applying' for share;
  if not found then
    raise exception 'run % is not running (finished, or rescued after its lease expired)', p_run_id
      using errcode = '55000';
  end if;
end $$;

-- Claims up to p_limit due events for p_worker: pending ones whose retry time has come, and ones whose
-- worker's lease ran out (it died after the reply or mid-apply). Oldest first. An event whose worker
-- died p_max_attempts times is parked instead of being handed out again.
create or replace function public.kiotviet_webhook_claim(p_worker text, p_limit integer default 20,
  p_lease_seconds integer default 60, p_max_attempts integer default 8)
returns table (id uuid, credential_id uuid, event_types text[], body jsonb, attempts integer, received_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.kiotviet_webhook_events e
     set status = 'parked', worker = null, lease_expires_at = null,
         last_error = coalesce(e.last_error, 'its worker stopped while applying it')
           || format(' (given up after %s attempts)', e.attempts)
   where e.status = 'applying' and e.lease_expires_at < now() and e.attempts >= p_max_attempts;
  return query
  with due as (
    select e.id from public.kiotviet_webhook_events e
     where (e.status = 'pending' and e.next_attempt_at <= now())
        or (e.status = 'applying' and e.lease_expires_at < now())
     order by e.received_at
     limit greatest(p_limit, 0)
     for update skip locked
  )
  update public.kiotviet_webhook_events e
     set status = 'applying', worker = p_worker, attempts = e.attempts + 1,
         lease_expires_at = now() + make_interval(secs => greatest(p_lease_seconds, 5))
    from due
   where e.id = due.id
  returning e.id, e.credential_id, e.event_types, e.body, e.attempts, e.received_at;
end $$;

-- The event was applied: what it did is kept in result. False when the event is no longer this worker's.
create or replace function public.kiotviet_webhook_done(p_id uuid, p_worker text, p_result jsonb)
returns boolean
language sql volatile security definer set search_path = '' as $$
  with done as (
    update public.kiotviet_webhook_events
       set status = 'applied', applied_at = now(), result = coalesce(p_result, '{}'::jsonb), last_error = null,
           worker = null, lease_expires_at = null
     where id = p_id and worker = p_worker and status = 'applying'
    returning 1
  )
  select exists (select from done)
$$;

-- The event failed: back to pending after a backoff (10 s, 20 s, 40 s … at most 15 min), or parked with
-- the reason once p_max_attempts are used up. Returns the new status (null: no longer this worker's).
create or replace function public.kiotviet_webhook_fail(p_id uuid, p_worker text, p_error text,
  p_max_attempts integer default 8)
returns text
language sql volatile security definer set search_path = '' as $$
  update public.kiotviet_webhook_events e
     set status = case when e.attempts >= p_max_attempts then 'parked' else 'pending' end,
         next_attempt_at = now() + least(interval '10 seconds' * power(2, greatest(e.attempts - 1, 0)), interval '15 minutes'),
         last_error = left(coalesce(p_error, 'failed'), 2000), worker = null, lease_expires_at = null
   where e.id = p_id and e.worker = p_worker and e.status = 'applying'
  returning e.status
$$;

-- Puts a parked event back in the queue (an operator fixed its cause). Returns whether it was parked.
create or replace function public.kiotviet_webhook_retry(p_id uuid) returns boolean
language sql volatile security definer set search_path = '' as $$
  with r as (
    update public.kiotviet_webhook_events set status = 'pending', attempts = 0, next_attempt_at = now()
     where id = p_id and status = 'parked' returning 1
  )
  select exists (select from r)
$$;

-- Webhook health per credential, for status and doctor: events by state, the last one received, the
-- oldest still waiting, the parked ones' latest reason, and the registrations.
create or replace function public.kiotviet_webhook_health()
returns table (credential_id uuid, retailer_name text, retailer_id bigint, pending integer, applying integer,
               applied integer, parked integer, last_received_at timestamptz, oldest_pending_at timestamptz,
               last_parked_error text, registrations integer, active_registrations integer,
               inactive_types text[])
language sql stable security definer set search_path = '' as $$
  select c.id, c.retailer_name, ep.retailer_id,
         coalesce(ev.pending, 0), coalesce(ev.applying, 0), coalesce(ev.applied, 0), coalesce(ev.parked, 0),
         ev.last_received_at, ev.oldest_pending_at, pk.last_error,
         coalesce(rg.n, 0), coalesce(rg.active, 0), coalesce(rg.inactive_types, '{}')
    from public.kiotviet_credentials c
    left join public.kiotviet_webhook_endpoints ep on ep.credential_id = c.id
    left join lateral (
      select count(*) filter (where e.status = 'pending')::int as pending,
             count(*) filter (where e.status = 'applying')::int as applying,
             count(*) filter (where e.status = 'applied')::int as applied,
             count(*) filter (where e.status = 'parked')::int as parked,
             max(e.received_at) as last_received_at,
             min(e.received_at) filter (where e.status in ('pending', 'applying')) as oldest_pending_at
        from public.kiotviet_webhook_events e where e.credential_id = c.id
    ) ev on true
    left join lateral (
      select e.last_error from public.kiotviet_webhook_events e
       where e.credential_id = c.id and e.status = 'parked' order by e.received_at desc limit 1
    ) pk on true
    left join lateral (
      select count(*)::int as n, count(*) filter (where r.is_active)::int as active,
             array_agg(r.event_type order by r.event_type) filter (where not r.is_active) as inactive_types
        from public.kiotviet_webhook_registrations r where r.credential_id = c.id
    ) rg on true
   where ep.credential_id is not null or rg.n > 0 or ev.last_received_at is not null
   order by c.retailer_name
$$;

------------------------------------------------------------------------------------------------------------
-- The apply functions. p_event_id is the claimed event (it stands in for the run id of the page functions).
-- Rows are locked per id (advisory, in id order) before the newer-wins check, so two replicas applying two
-- events for one product serialise and the newer one is the one that stays.

-- products (product.update / product.delete): rows shaped as for kiotviet_apply_products.
create or replace function public.kiotviet_webhook_apply_products(p_event_id uuid, p_credential_id uuid,
  p_rows jsonb, p_removed_ids bigint[])
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  fresh jsonb;
  n_in integer;
  res jsonb;
begin
  perform public.kiotviet_assert_running(p_event_id);
  perform pg_advisory_xact_lock(hashtext('kiotviet_products'), id::integer)
     from (select distinct (r ->> 'id')::bigint % 2147483647 as id
             from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r order by 1) x;
  n_in := jsonb_array_length(coalesce(p_rows, '[]'::jsonb));
  select coalesce(jsonb_agg(r), '[]'::jsonb) into fresh
    from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r
   where not exists (
     select from public.kiotviet_products_full f
      where f.id = (r ->> 'id')::bigint
        and f.modified_date is not null
        and (r ->> 'modified_date' is null or f.modified_date >= (r ->> 'modified_date')::timestamptz));
  res := public.kiotviet_apply_products(p_event_id, p_credential_id, fresh, p_removed_ids, null, false);
  return res || jsonb_build_object('older', n_in - jsonb_array_length(fresh));
end $$;

-- stock (stock.update): [{product_id, branches: [{branch_id, on_hand, reserved}]}], merged per branch:
-- the branches the event does not carry keep their stock. Stock events carry no date, so they apply in
-- the order they are claimed; the next stock scan corrects one the network reordered.
create or replace function public.kiotviet_webhook_apply_stock(p_event_id uuid, p_credential_id uuid, p_rows jsonb)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform public.kiotviet_assert_running(p_event_id);
  perform pg_advisory_xact_lock(hashtext('kiotviet_products'), id::integer)
     from (select distinct (r ->> 'product_id')::bigint % 2147483647 as id
             from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r order by 1) x;
  return public.kiotviet_apply_stock(p_event_id, p_credential_id, p_rows);
end $$;

-- categories (category.update with IsDeleted, category.delete): rows shaped as for kiotviet_apply_categories.
create or replace function public.kiotviet_webhook_apply_categories(p_event_id uuid, p_credential_id uuid,
  p_rows jsonb, p_removed_ids bigint[])
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  fresh jsonb;
  n_in integer;
begin
  perform public.kiotviet_assert_running(p_event_id);
  perform pg_advisory_xact_lock(hashtext('kiotviet_categories'), id::integer)
     from (select distinct (r ->> 'id')::bigint % 2147483647 as id
             from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r order by 1) x;
  n_in := jsonb_array_length(coalesce(p_rows, '[]'::jsonb));
  select coalesce(jsonb_agg(r), '[]'::jsonb) into fresh
    from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r
   where not exists (
     select from public.kiotviet_categories c
      where c.id = (r ->> 'id')::bigint and c.modified_date is not null
        and (r ->> 'modified_date' is null or c.modified_date >= (r ->> 'modified_date')::timestamptz));
  return public.kiotviet_apply_categories(p_event_id, p_credential_id, fresh, p_removed_ids, null, false)
         || jsonb_build_object('older', n_in - jsonb_array_length(fresh));
end $$;

-- branches (branch.update with IsActive, branch.delete): rows {id, branch_name, address, is_active,
-- modified_date}; a deleted branch is deactivated as kiotviet_apply_branches deactivates a removed one
-- (kept with its name, its stock gone).
create or replace function public.kiotviet_webhook_apply_branches(p_event_id uuid, p_credential_id uuid,
  p_rows jsonb, p_removed_ids bigint[])
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  fresh jsonb;
  n_in integer;
begin
  perform public.kiotviet_assert_running(p_event_id);
  n_in := jsonb_array_length(coalesce(p_rows, '[]'::jsonb));
  select coalesce(jsonb_agg(r), '[]'::jsonb) into fresh
    from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r
   where not exists (
     select from public.kiotviet_branches b
      where b.id = (r ->> 'id')::bigint and b.modified_date is not null
        and (r ->> 'modified_date' is null or b.modified_date >= (r ->> 'modified_date')::timestamptz));
  return public.kiotviet_apply_branches(p_event_id, p_credential_id, fresh, coalesce(p_removed_ids, '{}'))
         || jsonb_build_object('older', n_in - jsonb_array_length(fresh));
end $$;

-- price books: pricebookdetail.update [{price_book_id, product_id, price}] sets that book's price in the
-- product's price_books (adding the entry when the product has none for the book);
-- pricebookdetail.delete [{price_book_id, product_id}] and pricebook.delete (ids) remove entries.
-- Entries are matched on priceBookId whatever its case, as KiotViet's lists and webhooks differ.
create or replace function public.kiotviet_webhook_apply_price_books(p_event_id uuid, p_credential_id uuid,
  p_kind text, p_rows jsonb, p_removed_ids bigint[])
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer := 0;
  m integer := 0;
begin
  perform public.kiotviet_assert_running(p_event_id);
  if p_kind not in ('detail.update', 'detail.delete', 'delete') then
    raise exception 'price book change % is not one of detail.update, detail.delete, delete', p_kind using errcode = '22023';
  end if;
  if p_kind = 'delete' and coalesce(cardinality(p_removed_ids), 0) > 0 then
    update public.kiotviet_products_full f
       set price_books = (select coalesce(jsonb_agg(e order by o), '[]'::jsonb)
                            from jsonb_array_elements(f.price_books) with ordinality x(e, o)
                           where coalesce(e ->> 'priceBookId', e ->> 'PriceBookId')::bigint <> all (p_removed_ids)),
           synced_at = now()
     where exists (select from jsonb_array_elements(f.price_books) e
                    where coalesce(e ->> 'priceBookId', e ->> 'PriceBookId')::bigint = any (p_removed_ids));
    get diagnostics n = row_count;
    return jsonb_build_object('written', n, 'deleted', 0);
  end if;
  with d as (
    select distinct on ((r ->> 'product_id')::bigint, (r ->> 'price_book_id')::bigint)
           (r ->> 'product_id')::bigint as product_id, (r ->> 'price_book_id')::bigint as book,
           (r ->> 'price')::numeric as price
      from jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) r
     where r ->> 'product_id' is not null and r ->> 'price_book_id' is not null
  ), per_product as (
    select f.id,
           (select coalesce(jsonb_agg(
                     case when p_kind = 'detail.update' and d.book is not null
                          then e || jsonb_build_object('price', d.price) else e end order by o), '[]'::jsonb)
              from jsonb_array_elements(f.price_books) with ordinality x(e, o)
              left join d on d.product_id = f.id and d.book = coalesce(e ->> 'priceBookId', e ->> 'PriceBookId')::bigint
             where not (p_kind = 'detail.delete' and d.book is not null))
           ||
           (select coalesce(jsonb_agg(jsonb_build_object('priceBookId', d.book, 'productId', d.product_id,
                     'price', d.price) order by d.book), '[]'::jsonb)
              from d where p_kind = 'detail.update' and d.product_id = f.id
               and not exists (select from jsonb_array_elements(f.price_books) e
                                where coalesce(e ->> 'priceBookId', e ->> 'PriceBookId')::bigint = d.book)) as books
      from public.kiotviet_products_full f
     where f.id in (select product_id from d)
  )
  update public.kiotviet_products_full f set price_books = p.books, synced_at = now()
    from per_product p where f.id = p.id and f.price_books is distinct from p.books;
  get diagnostics m = row_count;
  return jsonb_build_object('written', m, 'deleted', 0);
end $$;

do $$
declare f text;
begin
  foreach f in array array['public.kiotviet_webhook_claim(text, integer, integer, integer)',
                           'public.kiotviet_webhook_done(uuid, text, jsonb)',
                           'public.kiotviet_webhook_fail(uuid, text, text, integer)',
                           'public.kiotviet_webhook_retry(uuid)',
                           'public.kiotviet_webhook_health()',
                           'public.kiotviet_webhook_apply_products(uuid, uuid, jsonb, bigint[])',
                           'public.kiotviet_webhook_apply_stock(uuid, uuid, jsonb)',
                           'public.kiotviet_webhook_apply_categories(uuid, uuid, jsonb, bigint[])',
                           'public.kiotviet_webhook_apply_branches(uuid, uuid, jsonb, bigint[])',
                           'public.kiotviet_webhook_apply_price_books(uuid, uuid, text, jsonb, bigint[])',
                           'public.kiotviet_assert_running(uuid)']
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end $$;
