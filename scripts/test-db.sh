#!/usr/bin/env bash
# What `supabase test db --db-url URL` does, without the Docker image it runs pg_prove in: create pgTAP
# in schema extensions if it is missing, run the CLI's own command line
#   pg_prove --ext .pg --ext .sql -r supabase/tests
# as postgres, and drop pgTAP again if it was created here. Around it, a snapshot of every object and
# row count (scripts/catalog-snapshot.sql): the run fails if a test file left anything behind.
# Usage: scripts/test-db.sh postgresql://postgres@127.0.0.1:PORT/postgres
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:?usage: scripts/test-db.sh DATABASE_URL}
hostport=${url#*@}; hostport=${hostport%%/*}; hostport=${hostport%%\?*}
host=${hostport%%:*} port=${hostport##*:}
psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$url" "$@"; }

mkdir -p .local
before=.local/test-db.before after=.local/test-db.after
psql_q -f scripts/catalog-snapshot.sql >"$before"

created=$(psql_q -c "select not exists (select from pg_extension where extname = 'pgtap')")
[ "$created" = t ] && psql_q -c "create extension if not exists pgtap with schema extensions"

echo "+ pg_prove --ext .pg --ext .sql -r supabase/tests"
status=0
PGHOST=$host PGPORT=$port PGUSER=postgres PGDATABASE=postgres pg_prove --ext .pg --ext .sql -r supabase/tests || status=$?

[ "$created" = t ] && psql_q -c "drop extension if exists pgtap"
[ $status -eq 0 ] || exit $status

psql_q -f scripts/catalog-snapshot.sql >"$after"
if ! diff -u "$before" "$after" >.local/test-db.diff; then
  echo "supabase/tests left objects or rows behind (- before, + after):"
  cat .local/test-db.diff
  exit 1
fi
echo "ok  the database is as it was: $(wc -l <"$after") objects and row counts compared"
