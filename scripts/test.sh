#!/usr/bin/env bash
# make test: the Go tests, a short fuzz run of every fuzz target and the pgTAP files, all against the
# project's test cluster (or TEST_DATABASE_URL when set).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(KVSYNC_DB_PORT=${KVSYNC_TEST_DB_PORT:-54339} KVSYNC_DB_DIR=.local/pg-test scripts/db.sh up)
fi
export TEST_DATABASE_URL
go run ./cmd/kvsync migrate --db-url "$TEST_DATABASE_URL" >/dev/null

echo "== go test"
go test -count=1 ${GOTEST_FLAGS:-} ./...

echo "== fuzz (${FUZZTIME:=3s} per target)"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >/dev/null \
      || { echo "fuzz $pkg $target failed"; go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; exit 1; }
    echo "ok  fuzz $target"
  done
done

echo "== pgTAP: supabase test db's own pg_prove run (supabase/tests), which must leave the database as it was"
scripts/test-db.sh "$TEST_DATABASE_URL"

echo "== make run, end to end (scripts/run.sh --check: its own cluster and ports, a small shop)"
scripts/run.sh --check >.local/run-check.log 2>&1 || { cat .local/run-check.log; echo "scripts/run.sh --check failed"; exit 1; }
grep -A4 '^RETAILER .*EVERY' .local/run-check.log | head -n 5
echo "ok  make run reached the status table and kvsync doctor passed"

echo "== chaos, small (scripts/chaos.sh --small: its own cluster, faults and killed workers, then the shop must match)"
scripts/chaos.sh --small >.local/chaos-small.log 2>&1 || { cat .local/chaos-small.log; echo "scripts/chaos.sh --small failed"; exit 1; }
grep '^chaos: kills' .local/chaos-small.log
