-- One line per database object (schemas, relations, functions, types, roles, extensions, policies,
-- triggers, publications, cron jobs, Vault secret names, role settings) and per public table's row
-- count, sorted. scripts/test.sh takes it before and after `supabase test db`'s pg_prove run: any
-- difference is something a test left behind. Session-local temp schemas are left out.
with obj(line) as (
  select 'schema ' || nspname from pg_namespace where nspname !~ '^pg_(toast_)?temp_'
  union all
  select 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname !~ '^pg_(toast_)?temp_'
  union all
  select 'function ' || p.oid::regprocedure::text
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast_)?temp_'
  union all
  select 'type ' || t.oid::regtype::text
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
   where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname !~ '^pg_(toast_)?temp_'
  union all select 'role ' || rolname from pg_roles
  union all select 'extension ' || extname || ' ' || extversion from pg_extension
  union all select 'policy ' || polrelid::regclass::text || ' ' || polname from pg_policy
  union all select 'trigger ' || tgrelid::regclass::text || ' ' || tgname from pg_trigger where not tgisinternal
  union all select 'publication ' || pubname from pg_publication
  union all select 'publication table ' || pubname || ' ' || schemaname || '.' || tablename from pg_publication_tables
  union all select 'cron job ' || jobname || ' ' || schedule || ' ' || command from cron.job
  union all select 'vault secret ' || name from vault.secrets
  union all select 'setting ' || coalesce(setrole::regrole::text, '-') || ' ' || array_to_string(setconfig, ' ') from pg_db_role_setting
  union all
  select 'rows ' || c.oid::regclass::text || ' '
         || (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %s', c.oid::regclass), false, true, '')))[1]::text
    from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
)
select line from obj order by line;
