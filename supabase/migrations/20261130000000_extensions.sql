-- Extensions kvsync uses. On Supabase they are available and most are already enabled; locally,
-- scripts/db.sh provides them (pg_net through the stand-in in sql/local/pg_net).
create extension if not exists pg_cron;                          -- the 5-minute dispatch tick and the daily purge
create extension if not exists pg_net with schema extensions;    -- the tick's HTTP POST to the dispatcher
create extension if not exists pgcrypto with schema extensions;  -- gen_random_bytes for ids and secrets
