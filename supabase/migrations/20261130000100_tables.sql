-- kvsync's tables. The names and the columns the ERP frontend reads are fixed by its contract; kvsync's
-- own columns are added with "add column if not exists", so this applies both to an empty database and
-- to one that already holds the earlier system's tables and rows (nothing is dropped or rewritten).

-- updated_at maintenance, shared with the ERP's own tables: created only where the ERP has not.
do $$ begin
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'public' and p.proname = 'update_updated_at_column') then
    create function public.update_updated_at_column() returns trigger language plpgsql as $f$
    begin
      new.updated_at = now();
      return new;
    end $f$;
  end if;
end $$;

------------------------------------------------------------------------------------------------------------
-- Credentials: one row per connection to a KiotViet shop. Ciphertext only; the key never enters the database.
create table if not exists public.kiotviet_credentials (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references auth.users (id) on delete cascade,
  retailer_name text not null,
  client_id text not null,
  encrypted_token text not null,
  token_expires_at timestamptz,
  is_active boolean default true,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
alter table public.kiotviet_credentials
  add column if not exists encrypted_client_secret text,
  -- bumped on every token store: the compare-and-swap that keeps concurrent refreshers from fighting
  add column if not exists token_version bigint not null default 0;
drop trigger if exists update_kiotviet_credentials_updated_at on public.kiotviet_credentials;
create trigger update_kiotviet_credentials_updated_at before update on public.kiotviet_credentials
  for each row execute function public.update_updated_at_column();
create index if not exists kiotviet_credentials_active_idx on public.kiotviet_credentials (is_active, created_at desc);

------------------------------------------------------------------------------------------------------------
-- Schedules: one per (credential, sync type). The database owns next_run_at (calculate_next_run_time()).
create table if not exists public.kiotviet_sync_schedules (
  id uuid primary key default gen_random_uuid(),
  credential_id uuid not null references public.kiotviet_credentials (id) on delete cascade,
  sync_type text not null,
  frequency text not null default 'daily',
  custom_interval_hours integer,
  enabled boolean not null default true,
  last_run_at timestamptz,
  next_run_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (credential_id, sync_type)
);
alter table public.kiotviet_sync_schedules
  add column if not exists time_of_day time,                                   -- optional: runs at this local time
  add column if not exists timezone text not null default 'Asia/Ho_Chi_Minh',  -- of time_of_day and daily grids
  add column if not exists consecutive_failures integer not null default 0,
  add column if not exists last_status text,
  add column if not exists last_error text,
  add column if not exists last_success_at timestamptz;

-- Constraints are (re)made by name, so an adopted table from the earlier system gets the current rules.
alter table public.kiotviet_sync_schedules
  drop constraint if exists kiotviet_sync_schedules_sync_type_check,
  drop constraint if exists kiotviet_sync_schedules_frequency_check,
  drop constraint if exists kiotviet_sync_schedules_custom_interval_hours_check,
  drop constraint if exists kiotviet_sync_schedules_custom_interval_required,
  drop constraint if exists kiotviet_sync_schedules_timezone_check,
  drop constraint if exists kiotviet_sync_schedules_time_of_day_period;
alter table public.kiotviet_sync_schedules
  add constraint kiotviet_sync_schedules_sync_type_check
    check (sync_type in ('categories', 'products', 'inventory', 'products_full', 'attributes', 'all')),
  add constraint kiotviet_sync_schedules_frequency_check
    check (frequency in ('hourly', 'daily', 'custom')),
  add constraint kiotviet_sync_schedules_custom_interval_hours_check
    check (custom_interval_hours between 1 and 168),
  add constraint kiotviet_sync_schedules_custom_interval_required
    check (frequency <> 'custom' or custom_interval_hours is not null),
  -- a time of day fixes the grid to the day: only periods that divide a day keep it (hourly, daily,
  -- every 2, 3, 4, 6, 8 or 12 hours)
  add constraint kiotviet_sync_schedules_time_of_day_period
    check (time_of_day is null or frequency in ('hourly', 'daily') or 24 % custom_interval_hours = 0);
create index if not exists kiotviet_sync_schedules_due_idx
  on public.kiotviet_sync_schedules (next_run_at) where enabled;
drop trigger if exists update_sync_schedules_updated_at on public.kiotviet_sync_schedules;
create trigger update_sync_schedules_updated_at before update on public.kiotviet_sync_schedules
  for each row execute function public.update_updated_at_column();

------------------------------------------------------------------------------------------------------------
-- Run log: one row per run, written when the run starts. At most one running row per credential
-- (kiotviet_sync_logs_one_running): that index is the overlap guard every path goes through.
create table if not exists public.kiotviet_sync_logs (
  id uuid primary key default gen_random_uuid(),
  sync_type text not null,
  status text not null,
  records_synced integer default 0,
  error_message text,
  started_at timestamptz default now(),
  completed_at timestamptz
);
alter table public.kiotviet_sync_logs
  add column if not exists credential_id uuid references public.kiotviet_credentials (id) on delete cascade,
  add column if not exists schedule_id uuid references public.kiotviet_sync_schedules (id) on delete set null,
  add column if not exists trigger text not null default 'manual',
  add column if not exists slot_at timestamptz,               -- the schedule slot a cron run is for
  add column if not exists worker text,
  add column if not exists lease_expires_at timestamptz,
  add column if not exists heartbeat_at timestamptz,
  add column if not exists progress jsonb not null default '{}'::jsonb,
  add column if not exists stats jsonb not null default '{}'::jsonb,
  add column if not exists api_calls integer not null default 0,
  add column if not exists options jsonb not null default '{}'::jsonb;
update public.kiotviet_sync_logs set started_at = coalesce(completed_at, now()) where started_at is null;
alter table public.kiotviet_sync_logs alter column started_at set not null;
alter table public.kiotviet_sync_logs
  drop constraint if exists kiotviet_sync_logs_status_check,
  drop constraint if exists kiotviet_sync_logs_trigger_check;
alter table public.kiotviet_sync_logs
  add constraint kiotviet_sync_logs_status_check
    check (status in ('running', 'success', 'partial', 'failed', 'skipped')),
  add constraint kiotviet_sync_logs_trigger_check
    check (trigger in ('cron', 'manual', 'api', 'webhook'));
create unique index if not exists kiotviet_sync_logs_one_running
  on public.kiotviet_sync_logs (credential_id) where status = 'running';
create index if not exists kiotviet_sync_logs_started_at_idx on public.kiotviet_sync_logs (started_at desc);
create index if not exists kiotviet_sync_logs_schedule_idx on public.kiotviet_sync_logs (schedule_id, started_at desc);
create index if not exists kiotviet_sync_logs_lease_idx on public.kiotviet_sync_logs (lease_expires_at) where status = 'running';

------------------------------------------------------------------------------------------------------------
-- Cursors: per (credential, stream), the newest modifiedDate applied and the last full reconcile.
create table if not exists public.kiotviet_sync_state (
  credential_id uuid not null references public.kiotviet_credentials (id) on delete cascade,
  stream text not null,
  cursor timestamptz,
  last_full_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (credential_id, stream)
);

-- Ids seen by a full reconcile still in progress; the sweep deletes what was not seen. Unlogged: it is
-- scratch space, and losing it in a crash only means the next full reconcile starts over.
create unlogged table if not exists public.kiotviet_sync_seen (
  run_id uuid not null,
  stream text not null,
  id bigint not null,
  primary key (run_id, stream, id)
);

------------------------------------------------------------------------------------------------------------
-- Data tables: one shop's catalogue, as the ERP models it. credential_id records where a row came from.
create table if not exists public.kiotviet_categories (
  id bigint primary key,
  category_name text not null,
  parent_id bigint references public.kiotviet_categories (id) on delete set null,
  level integer default 1,
  synced_at timestamptz default now(),
  retailer_id bigint,
  has_child boolean default false,
  modified_date timestamptz,
  created_date timestamptz
);
alter table public.kiotviet_categories
  add column if not exists credential_id uuid,
  -- KiotViet's parent id even before that parent arrives; parent_id (the FK) is set once it exists
  add column if not exists kiotviet_parent_id bigint;
create index if not exists kiotviet_categories_parent_id_idx on public.kiotviet_categories (parent_id);
create index if not exists kiotviet_categories_retailer_id_idx on public.kiotviet_categories (retailer_id);
create index if not exists kiotviet_categories_modified_date_idx on public.kiotviet_categories (modified_date);
create index if not exists kiotviet_categories_has_child_idx on public.kiotviet_categories (has_child);

create table if not exists public.kiotviet_products (
  id bigint primary key,
  code text unique not null,
  barcode text,
  name text not null,
  category_id bigint references public.kiotviet_categories (id) on delete set null,
  full_name text,
  description text,
  base_price numeric(15, 2) default 0,
  has_variants boolean default false,
  allow_sale boolean default true,
  is_active boolean default true,
  images jsonb default '[]'::jsonb,
  attributes jsonb default '[]'::jsonb,
  units jsonb default '[]'::jsonb,
  product_type integer default 2,
  synced_at timestamptz default now(),
  created_at timestamptz default now()
);
alter table public.kiotviet_products
  add column if not exists credential_id uuid,
  add column if not exists kiotviet_category_id bigint,  -- KiotViet's, even when that category is not here (yet)
  add column if not exists modified_date timestamptz;
create index if not exists kiotviet_products_code_idx on public.kiotviet_products (code);
create index if not exists kiotviet_products_name_fts_idx on public.kiotviet_products using gin (to_tsvector('english', name));
create index if not exists kiotviet_products_category_id_idx on public.kiotviet_products (category_id);
create index if not exists kiotviet_products_is_active_idx on public.kiotviet_products (is_active);

create table if not exists public.kiotviet_inventory (
  id uuid primary key default gen_random_uuid(),
  product_id bigint references public.kiotviet_products (id) on delete cascade,
  branch_id bigint not null,
  branch_name text,
  on_hand numeric(15, 3) default 0,
  reserved numeric(15, 3) default 0,
  available numeric(15, 3) default 0,
  synced_at timestamptz default now(),
  unique (product_id, branch_id)
);
alter table public.kiotviet_inventory add column if not exists credential_id uuid;

create table if not exists public.kiotviet_products_full (
  id bigint primary key,
  code text not null unique,
  name text not null,
  barcode text,
  full_name text,
  description text,
  order_template text,
  category_id bigint,
  category_name text,
  category_path text,
  trademark_id bigint,
  trademark_name text,
  base_price numeric default 0,
  total_on_hand numeric default 0,
  total_reserved numeric default 0,
  total_available numeric default 0,
  weight numeric default 0,
  min_stock numeric default 0,
  max_stock numeric default 999999999,
  low_stock_alert boolean generated always as (total_on_hand < min_stock) stored,
  overstock_alert boolean generated always as (total_on_hand > max_stock) stored,
  has_variants boolean default false,
  allow_sale boolean default true,
  is_active boolean default true,
  product_type integer default 2,
  is_reward_point boolean default true,
  is_lot_serial_control boolean default false,
  is_batch_expire_control boolean default false,
  inventory_by_branch jsonb default '[]'::jsonb,
  images jsonb default '[]'::jsonb,
  attributes jsonb default '[]'::jsonb,
  units jsonb default '[]'::jsonb,
  price_books jsonb default '[]'::jsonb,
  product_formulas jsonb default '[]'::jsonb,
  product_serials jsonb default '[]'::jsonb,
  product_batch_expires jsonb default '[]'::jsonb,
  product_shelves jsonb default '[]'::jsonb,
  synced_at timestamptz default now(),
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
alter table public.kiotviet_products_full
  add column if not exists credential_id uuid,
  add column if not exists modified_date timestamptz;
create index if not exists kiotviet_products_full_code_idx on public.kiotviet_products_full (code);
create index if not exists kiotviet_products_full_barcode_idx on public.kiotviet_products_full (barcode) where barcode is not null;
create index if not exists kiotviet_products_full_name_fts_idx on public.kiotviet_products_full using gin (to_tsvector('simple', name));
create index if not exists kiotviet_products_full_category_id_idx on public.kiotviet_products_full (category_id);
create index if not exists kiotviet_products_full_trademark_id_idx on public.kiotviet_products_full (trademark_id);
create index if not exists kiotviet_products_full_low_stock_idx on public.kiotviet_products_full (low_stock_alert) where low_stock_alert = true;
create index if not exists kiotviet_products_full_overstock_idx on public.kiotviet_products_full (overstock_alert) where overstock_alert = true;
create index if not exists kiotviet_products_full_is_active_idx on public.kiotviet_products_full (is_active);
create index if not exists kiotviet_products_full_synced_at_idx on public.kiotviet_products_full (synced_at desc);
drop trigger if exists update_kiotviet_products_full_updated_at on public.kiotviet_products_full;
create trigger update_kiotviet_products_full_updated_at before update on public.kiotviet_products_full
  for each row execute function public.update_updated_at_column();
alter table public.kiotviet_products_full replica identity full;
do $$ begin
  if exists (select from pg_publication where pubname = 'supabase_realtime')
     and not exists (select from pg_publication_tables where pubname = 'supabase_realtime'
                     and schemaname = 'public' and tablename = 'kiotviet_products_full') then
    alter publication supabase_realtime add table public.kiotviet_products_full;
  end if;
end $$;

create table if not exists public.kiotviet_attributes (
  id bigint primary key,
  name text not null,
  attribute_values jsonb default '[]'::jsonb,
  synced_at timestamptz not null default now(),
  created_at timestamptz not null default now()
);
alter table public.kiotviet_attributes add column if not exists credential_id uuid;
create index if not exists kiotviet_attributes_name_idx on public.kiotviet_attributes (name);

create table if not exists public.kiotviet_branches (
  id bigint primary key,
  branch_name text not null,
  address text,
  is_active boolean not null default true,
  credential_id uuid,
  modified_date timestamptz,
  synced_at timestamptz not null default now()
);

------------------------------------------------------------------------------------------------------------
-- The earlier writers stored JSON arrays as JSON strings holding the serialised text. Turn each one that
-- parses into the array it holds, so the ERP's containment filters match; anything else is left as it is.
create or replace function public.kiotviet_unstring_json(v jsonb) returns jsonb
language plpgsql immutable set search_path = '' as $$
begin
  if v is null or jsonb_typeof(v) <> 'string' then return v; end if;
  begin
    return (v #>> '{}')::jsonb;
  exception when others then
    return v;
  end;
end $$;
revoke all on function public.kiotviet_unstring_json(jsonb) from public, anon, authenticated;

update public.kiotviet_products_full set
  inventory_by_branch = public.kiotviet_unstring_json(inventory_by_branch), images = public.kiotviet_unstring_json(images),
  attributes = public.kiotviet_unstring_json(attributes), units = public.kiotviet_unstring_json(units),
  price_books = public.kiotviet_unstring_json(price_books), product_formulas = public.kiotviet_unstring_json(product_formulas),
  product_serials = public.kiotviet_unstring_json(product_serials),
  product_batch_expires = public.kiotviet_unstring_json(product_batch_expires),
  product_shelves = public.kiotviet_unstring_json(product_shelves)
where 'string' in (jsonb_typeof(inventory_by_branch), jsonb_typeof(images), jsonb_typeof(attributes), jsonb_typeof(units),
                   jsonb_typeof(price_books), jsonb_typeof(product_formulas), jsonb_typeof(product_serials),
                   jsonb_typeof(product_batch_expires), jsonb_typeof(product_shelves));
update public.kiotviet_products set images = public.kiotviet_unstring_json(images),
  attributes = public.kiotviet_unstring_json(attributes), units = public.kiotviet_unstring_json(units)
where 'string' in (jsonb_typeof(images), jsonb_typeof(attributes), jsonb_typeof(units));
update public.kiotviet_attributes set attribute_values = public.kiotviet_unstring_json(attribute_values)
where jsonb_typeof(attribute_values) = 'string';
