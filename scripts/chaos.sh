#!/usr/bin/env bash
# make chaos: kvsync serve processes against a fake KiotViet that answers 429, 5xx, hangs, cuts pages
# short, revokes tokens and drifts pages, killed with SIGKILL at random and restarted, with the shop
# changing under them; then a clean sync, and the checks: the database equals the shop, no two runs of
# the credential overlapped, every run finished or was rescued. Exits non-zero otherwise.
# It uses a PostgreSQL cluster of its own (under .local/pg-chaos, on a free port or KVSYNC_CHAOS_DB_PORT,
# stopped at the end), since it empties every kiotviet_* table; CHAOS_DATABASE_URL picks another database instead. `scripts/chaos.sh --small` is the
# short version `make test` runs; other arguments (or CHAOS_ARGS) go to `kvsync-bench --chaos`.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
if [ "${1:-}" = "--small" ]; then
  shift
  args=(--chaos-duration 20s --chaos-products 300 --chaos-workers 2)
fi
root=$(pwd)
# shellcheck source=scripts/ports.sh
. scripts/ports.sh
url=${CHAOS_DATABASE_URL:-}
ours=false   # whether this script started the cluster, and so stops it
if [ -z "$url" ]; then
  pick_port db_port $(( $(port_base) + 5 ))
  db_port=${KVSYNC_CHAOS_DB_PORT:-$db_port}
  pg_isready -q -h 127.0.0.1 -p "$db_port" 2>/dev/null || ours=true
  url=$(KVSYNC_DB_PORT=$db_port KVSYNC_DB_DIR=.local/pg-chaos scripts/db.sh up)
fi
bin=$(mktemp -d)
cleanup() {
  rm -rf "$bin"
  if $ours; then KVSYNC_DB_PORT=$db_port KVSYNC_DB_DIR=.local/pg-chaos scripts/db.sh down || true; fi
}
trap cleanup EXIT
go build -o "$bin/" ./cmd/kvsync ./cmd/kvsync-bench
"$bin/kvsync" migrate --db-url "$url" >/dev/null
# shellcheck disable=SC2086 # CHAOS_ARGS is a list of flags
"$bin/kvsync-bench" --chaos --kvsync "$bin/kvsync" --db-url "$url" "${args[@]}" ${CHAOS_ARGS:-} "$@"
