-- Seed for `supabase db reset` on a local Supabase stack. kvsync needs no rows to start: add a KiotViet
-- connection with `kvsync credentials add` (or the ERP's settings page) and schedules with
-- `kvsync schedule set`; `make run` does both against the fake KiotViet.
select 1;
