#!/usr/bin/env bash
# make bench: kvsync against the earlier system's algorithm and the API floor (DESIGN.md §8), on a fake
# KiotViet served from 127.0.0.1 and a PostgreSQL cluster of the benchmark's own (port 54349 under
# .local/pg-bench), since the benchmark empties every kiotviet_* table; BENCH_DATABASE_URL picks another
# database instead. The report is also written as JSON to bench-<commit>.json, to compare runs across
# commits. Arguments (or BENCH_ARGS) go to `kvsync-bench`, e.g. --sizes 10000 for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${BENCH_DATABASE_URL:-}
if [ -z "$url" ]; then
  url=$(KVSYNC_DB_PORT=${KVSYNC_BENCH_DB_PORT:-54349} KVSYNC_DB_DIR=.local/pg-bench scripts/db.sh up)
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/kvsync ./cmd/kvsync-bench
"$bin/kvsync" migrate --db-url "$url" >/dev/null
rev=$(git describe --always --dirty 2>/dev/null || echo local)
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$bin/kvsync-bench" --db-url "$url" --json "bench-$rev.json" --commit "$rev" ${BENCH_ARGS:-} "$@"
