-- The ERP can watch a run live: kiotviet_sync_logs joins the supabase_realtime publication, so every
-- heartbeat's progress ({stream, done, total, pages, records}) and the final status reach a
-- postgres_changes subscriber. Realtime applies the subscriber's SELECT RLS: only admins see log rows
-- (kiotviet_sync_logs_admin), anon sees nothing. On a database without the publication (plain Postgres
-- without the local stand-ins) there is nothing to join.
do $$
begin
  if exists (select from pg_publication where pubname = 'supabase_realtime')
     and not exists (select from pg_publication_tables where pubname = 'supabase_realtime'
                       and schemaname = 'public' and tablename = 'kiotviet_sync_logs') then
    alter publication supabase_realtime add table public.kiotviet_sync_logs;
  end if;
end $$;
