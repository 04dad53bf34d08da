#!/usr/bin/env bash
# make lint's database step: plpgsql_check over every PL/pgSQL function of schema public, on a fresh
# cluster of its own with kvsync's migrations (a free port from scripts/ports.sh, or KVSYNC_LINT_DB_PORT;
# under .local/pg-lint, deleted at the end). Needs Debian's postgresql-15-plpgsql-check and the pinned
# Supabase CLI (scripts/install-deps.sh). Two passes, both must be free of errors (warnings are shown):
#
#   1. `supabase db lint --schema public --level warning`, as a Supabase team runs it: no error at all.
#      (The page functions' run-time temporary tables are declared to it by a PRAGMA:TABLE line, see
#      supabase/migrations/20261202800000_lint_page_tables.sql.)
#   2. plpgsql_check_function on every PL/pgSQL function of public but triggers, errors only, in a
#      transaction rolled back at the end, so nothing stays.
#
# Any other false positive is silenced in the function itself with a plpgsql_check pragma and a comment
# saying why (see supabase/migrations/20261202300000_lint_clean.sql).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
supabase=tools/node_modules/.bin/supabase
[ -x "$supabase" ] || { echo "the Supabase CLI is missing: run scripts/install-deps.sh"; exit 1; }
[ -f /usr/share/postgresql/15/extension/plpgsql_check.control ] \
  || { echo "plpgsql_check is missing: run scripts/install-deps.sh (postgresql-15-plpgsql-check)"; exit 1; }
# shellcheck source=scripts/ports.sh
. scripts/ports.sh
pick_port lint_port $(($(port_base) + 7))
export KVSYNC_DB_PORT=${KVSYNC_LINT_DB_PORT:-$lint_port} KVSYNC_DB_DIR=.local/pg-lint
trap 'scripts/db.sh reset >/dev/null 2>&1 || true' EXIT
scripts/db.sh reset >/dev/null
url=$(scripts/db.sh up)
go run ./cmd/kvsync migrate --db-url "$url" >/dev/null

echo "+ supabase db lint --db-url … --schema public --level warning"
out=$("$supabase" db lint --db-url "$url" --schema public --level warning 2>&1) || { echo "$out"; exit 1; }
echo "$out"
errors=$(grep -c '"level": "error"' <<<"$out" || true)
if [ "$errors" -ne 0 ]; then
  echo "supabase db lint found $errors error(s) (above). A false positive is declared to plpgsql_check with a"
  echo "pragma and a comment saying why: see supabase/migrations/20261202300000_lint_clean.sql and"
  echo "20261202800000_lint_page_tables.sql."
  exit 1
fi
echo "ok  supabase db lint: no errors"

echo "+ plpgsql_check_function on every function of public"
found=$(psql -X -q -At -v ON_ERROR_STOP=1 "$url" <<'SQL'
begin;
set local client_min_messages = warning;
create extension plpgsql_check;
select p.oid::regprocedure || ': ' || c.message || coalesce(' (' || c.query || ')', '')
  from pg_proc p
  join pg_language l on l.oid = p.prolang and l.lanname = 'plpgsql'
  cross join lateral public.plpgsql_check_function_tb(p.oid) c
 where p.pronamespace = 'public'::regnamespace and p.prorettype <> 'trigger'::regtype
   and c.level = 'error';
rollback;
SQL
)
if [ -n "$found" ]; then
  echo "$found"
  echo "plpgsql_check found the errors above"
  exit 1
fi
echo "ok  plpgsql_check: no errors in $(psql -X -At "$url" -c "select count(*) from pg_proc p join pg_language l on l.oid = p.prolang
  where l.lanname = 'plpgsql' and p.pronamespace = 'public'::regnamespace") functions"
