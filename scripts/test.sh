#!/usr/bin/env bash
# make test: the Go tests, a short fuzz run of every fuzz target, the pgTAP files, the demo and a short
# chaos run, all against clusters of this run's own (or TEST_DATABASE_URL when set).
#
# Good neighbour: every port is chosen free, starting from a base derived from the checkout's folder
# (scripts/ports.sh), so two checkouts on one machine can run `make test` at once; every cluster and
# server this script starts is stopped when it ends, however it ends. KVSYNC_TEST_DB_PORT,
# KVSYNC_ADOPT_DB_PORT, KVSYNC_OUTAGE_DB_PORT, KVSYNC_CHAOS_DB_PORT, KVSYNC_CLI_DB_PORT and KVSYNC_RUN_CHECK_PORTS ("db kvsync fake") pin ports.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/ports.sh
. scripts/ports.sh
base=$(port_base)

started=()   # "port dir" of each cluster this script started
stop_started() {
  local rc=$? spec
  trap - EXIT INT TERM
  for spec in "${started[@]}"; do
    KVSYNC_DB_PORT=${spec%% *} KVSYNC_DB_DIR=${spec#* } scripts/db.sh down || true
  done
  exit "$rc"
}
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_cluster PORT DIR: starts (creating if needed) a cluster that stop_started stops; prints its URL.
start_cluster() {
  local was_up=false
  pg_isready -q -h 127.0.0.1 -p "$1" 2>/dev/null && was_up=true
  url=$(KVSYNC_DB_PORT=$1 KVSYNC_DB_DIR=$2 scripts/db.sh up)
  $was_up || started+=("$1 $2")
}

own_test_db=false
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  pick_port test_port "$base"
  test_port=${KVSYNC_TEST_DB_PORT:-$test_port}
  start_cluster "$test_port" .local/pg-test
  TEST_DATABASE_URL=$url
  own_test_db=true
fi
export TEST_DATABASE_URL
# The adoption test starts (and deletes) a throwaway cluster of its own on this port.
pick_port adopt_port $((base + 1))
export KVSYNC_ADOPT_DB_PORT=${KVSYNC_ADOPT_DB_PORT:-$adopt_port}
# The outage test (internal/syncer) stops and starts a throwaway cluster of its own under a running sync.
pick_port outage_port $((base + 2))
export KVSYNC_OUTAGE_DB_PORT=${KVSYNC_OUTAGE_DB_PORT:-$outage_port}
go run ./cmd/kvsync migrate --db-url "$TEST_DATABASE_URL" >/dev/null
# The template every committing test clones a database of its own from (internal/testdb.DB), remade from
# the migrated database so it is never behind; a TEST_DATABASE_URL given by hand must have one already.
if $own_test_db; then
  KVSYNC_DB_PORT=$test_port KVSYNC_DB_DIR=.local/pg-test scripts/db.sh template >/dev/null
fi

echo "== go test"
go test -count=1 ${GOTEST_FLAGS:-} ./...

echo "== fuzz (${FUZZTIME:=3s} per target)"
# The targets are read from the test files (a fuzz target is `func FuzzXxx(f *testing.F)`), not with
# `go test -list`, which links every package's test binary only to list it: most of this step's time
# under load.
while read -r pkg dir; do
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)([A-Za-z_]* \*testing\.F).*/\1/p' "$dir"/*_test.go 2>/dev/null); do
    # A finding is a failing input the fuzzer writes to testdata/fuzz: that fails the run at once. A
    # failure with no input written is the fuzzing engine's own (a worker it lost at the time limit,
    # seen on a loaded 2-core machine): its output is shown and the target runs once more.
    fuzz_log=$(mktemp)
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" </dev/null >"$fuzz_log" 2>&1; then
      cat "$fuzz_log"
      if grep -q 'Failing input written to' "$fuzz_log"; then rm -f "$fuzz_log"; echo "fuzz $pkg $target found a failing input"; exit 1; fi
      echo "fuzz $pkg $target failed without a failing input: running it once more"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" </dev/null || { rm -f "$fuzz_log"; echo "fuzz $pkg $target failed"; exit 1; }
    fi
    rm -f "$fuzz_log"
    echo "ok  fuzz $target"
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)

echo "== pgTAP: supabase test db's own pg_prove run (supabase/tests), which must leave the database as it was"
scripts/test-db.sh "$TEST_DATABASE_URL"

pick_port cli_port $((base + 6))
cli_port=${KVSYNC_CLI_DB_PORT:-$cli_port}
echo "== the Supabase CLI (scripts/supabase-cli-check.sh: db push and migration list on fresh, seed-era and ERP-history clusters of its own on $cli_port)"
KVSYNC_CLI_DB_PORT=$cli_port scripts/supabase-cli-check.sh

pick_port rc_db $((base + 2)); pick_port rc_kvsync $((base + 3)); pick_port rc_fake $((base + 4))
if [ -n "${KVSYNC_RUN_CHECK_PORTS:-}" ]; then read -r rc_db rc_kvsync rc_fake <<<"$KVSYNC_RUN_CHECK_PORTS"; fi
echo "== make run, end to end (scripts/run.sh --check: its own cluster on $rc_db, kvsync on $rc_kvsync, fake on $rc_fake, a small shop)"
KVSYNC_DB_PORT=$rc_db KVSYNC_PORT=$rc_kvsync KIOTVIET_FAKE_PORT=$rc_fake \
  scripts/run.sh --check >.local/run-check.log 2>&1 || { cat .local/run-check.log; echo "scripts/run.sh --check failed"; exit 1; }
grep -A4 '^RETAILER .*EVERY' .local/run-check.log | head -n 5
echo "ok  make run reached the status table and kvsync doctor passed"

pick_port chaos_port $((base + 5))
chaos_port=${KVSYNC_CHAOS_DB_PORT:-$chaos_port}
echo "== chaos, small (scripts/chaos.sh --small: its own cluster on $chaos_port, faults and killed workers, then the shop must match)"
KVSYNC_CHAOS_DB_PORT=$chaos_port scripts/chaos.sh --small >.local/chaos-small.log 2>&1 || { cat .local/chaos-small.log; echo "scripts/chaos.sh --small failed"; exit 1; }
grep '^chaos: kills' .local/chaos-small.log
