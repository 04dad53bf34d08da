#!/usr/bin/env bash
# make bench: kvsync against the earlier system's algorithm and the API floor (DESIGN.md §8), on a fake
# KiotViet served from 127.0.0.1 and a PostgreSQL cluster of the benchmark's own (under .local/pg-bench,
# on a free port or KVSYNC_BENCH_DB_PORT, stopped at the end), since the benchmark empties every
# kiotviet_* table and switches the cluster between the two database profiles (dev, durable: fsync,
# synchronous_commit, full_page_writes off or on; reset at the end); BENCH_DATABASE_URL picks another
# database instead (a superuser on a cluster of its own). The report is also written as
# JSON to bench-<commit>.json, to compare runs across commits. Arguments (or BENCH_ARGS) go to
# `kvsync-bench`, e.g. --quick for a run of a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

root=$(pwd)
# shellcheck source=scripts/ports.sh
. scripts/ports.sh
url=${BENCH_DATABASE_URL:-}
ours=false   # whether this script started the cluster, and so stops it
if [ -z "$url" ]; then
  pick_port db_port $(( $(port_base) + 6 ))
  db_port=${KVSYNC_BENCH_DB_PORT:-$db_port}
  pg_isready -q -h 127.0.0.1 -p "$db_port" 2>/dev/null || ours=true
  url=$(KVSYNC_DB_PORT=$db_port KVSYNC_DB_DIR=.local/pg-bench scripts/db.sh up)
fi
bin=$(mktemp -d)
cleanup() {
  rm -rf "$bin"
  if $ours; then KVSYNC_DB_PORT=$db_port KVSYNC_DB_DIR=.local/pg-bench scripts/db.sh down || true; fi
}
trap cleanup EXIT
go build -o "$bin/" ./cmd/kvsync ./cmd/kvsync-bench
"$bin/kvsync" migrate --db-url "$url" >/dev/null
rev=$(git describe --always --dirty 2>/dev/null || echo local)
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$bin/kvsync-bench" --db-url "$url" --json "bench-$rev.json" --commit "$rev" ${BENCH_ARGS:-} "$@"
