-- anon (and any publishable key) opens nothing: not even a harmless function. kiotviet_local_time (a
-- formatter the status views use) kept PostgreSQL's default EXECUTE for PUBLIC, so anon could call it.
-- The views are readable by authenticated only, which keeps its grant; nothing changes for the ERP.
-- supabase/tests/22_no_function_for_anon.test.sql keeps every kvsync function this way.
revoke execute on function public.kiotviet_local_time(timestamptz, text) from public, anon;
