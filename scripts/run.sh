#!/usr/bin/env bash
# make run: the whole thing on this machine, no Docker, no KiotViet account.
#   scripts/run.sh           database, migrations, a fake KiotViet shop, kvsync serve, the cron job, a
#                            credential, schedules and a first sync; then serves until Ctrl-C and stops
#                            what it started.
#   scripts/run.sh --check   the same with a small shop on a cluster and ports of its own; prints the status
#                            table and `kvsync doctor`, then stops what it started (CI runs this).
# Environment (all optional):
#   KVSYNC_DB_PORT, KVSYNC_DB_DIR    the database cluster (default 54329 and .local/pg; --check: 54398 and
#                                    .local/pg-run-check)
#   KVSYNC_PORT                      kvsync serve's port on 127.0.0.1 (default 8080; --check 18080)
#   KIOTVIET_FAKE_PORT               the fake KiotViet's port (default 8765; --check 18765)
#   DEMO_PRODUCTS, DEMO_BRANCHES     the fake shop's size (default 2000 and 3; --check 200 and 3)
# Secrets for the demo (encryption key, cron secret) are generated once into .local/demo.env (git-ignored)
# and reused; logs go to .local/run/.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: scripts/run.sh [--check]" >&2; exit 2 ;;
esac
if [ "${KVSYNC_RUN_CHECK:-}" = 1 ]; then check=true; fi

if $check; then
  export KVSYNC_DB_PORT=${KVSYNC_DB_PORT:-54398} KVSYNC_DB_DIR=${KVSYNC_DB_DIR:-.local/pg-run-check}
  port=${KVSYNC_PORT:-18080}
  fake_port=${KIOTVIET_FAKE_PORT:-18765}
  products=${DEMO_PRODUCTS:-200}
else
  port=${KVSYNC_PORT:-8080}
  fake_port=${KIOTVIET_FAKE_PORT:-8765}
  products=${DEMO_PRODUCTS:-2000}
fi
branches=${DEMO_BRANCHES:-3}
db_port=${KVSYNC_DB_PORT:-54329}
logs=.local/run
mkdir -p "$logs"

say() { printf '\n== %s\n' "$*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# --- stop what this script started, whatever way it ends --------------------------------------------------
pids=()
db_started=false
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if $db_started; then scripts/db.sh down || true; fi
  if [ ${#pids[@]} -gt 0 ]; then echo "run.sh: stopped what it started" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for DESCRIPTION SECONDS PID COMMAND...: polls COMMAND until it succeeds; fails early if PID died.
wait_for() {
  local what=$1 secs=$2 pid=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$what exited; see its log under $logs/"
    [ $SECONDS -lt $deadline ] || die "$what not ready after ${secs}s; see its log under $logs/"
    sleep 0.2
  done
}

# --- machine, database, build -------------------------------------------------------------------------------
say "dependencies"
scripts/install-deps.sh   # quiet when all is there; as root it installs what is missing
command -v go >/dev/null || die "Go is not installed (https://go.dev/dl/; Go 1.26)"

say "database (port $db_port)"
if ! pg_isready -q -h 127.0.0.1 -p "$db_port" 2>/dev/null; then db_started=$check; fi
DATABASE_URL=$(scripts/db.sh up)
export DATABASE_URL
echo "$DATABASE_URL"

say "build"
go build -o bin/ ./cmd/kvsync ./cmd/kiotviet-fake
bin/kvsync migrate | tail -n 1

# --- demo secrets ---------------------------------------------------------------------------------------------
demo=.local/demo.env
if ! [ -s "$demo" ]; then
  (
    umask 077
    {
      echo "# kvsync demo secrets, made by scripts/run.sh; local only (git-ignored). Delete to get new ones."
      bin/kvsync keys generate 2>/dev/null
      echo "KIOTVIET_CRON_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$demo.tmp"
    mv "$demo.tmp" "$demo"
  )
  echo "generated $demo (encryption key and cron secret)"
fi
set -a
# shellcheck disable=SC1090
. "$demo"
set +a

# --- the fake KiotViet shop and kvsync serve ----------------------------------------------------------------
say "fake KiotViet: $products products, $branches branches (port $fake_port)"
bin/kiotviet-fake -port "$fake_port" -products "$products" -branches "$branches" -seed 42 >"$logs/kiotviet-fake.log" 2>&1 &
pids+=($!)
wait_for "kiotviet-fake" 30 "${pids[-1]}" grep -q '^  client secret:' "$logs/kiotviet-fake.log"
field() { sed -n "s/^  $1 *//p" "$logs/kiotviet-fake.log" | head -n 1; }
export KIOTVIET_TOKEN_URL=$(field 'KIOTVIET_TOKEN_URL=')
export KIOTVIET_API_URL=$(field 'KIOTVIET_API_URL=')
retailer=$(field 'retailer:')
client_id=$(field 'client id:')
client_secret=$(field 'client secret:')
echo "retailer $retailer at $KIOTVIET_API_URL"

say "kvsync serve (127.0.0.1:$port)"
export KVSYNC_ADDR=127.0.0.1:$port
bin/kvsync serve >"$logs/kvsync.log" 2>&1 &
pids+=($!)
wait_for "kvsync serve" 30 "${pids[-1]}" curl -fsS "http://127.0.0.1:$port/healthz"
echo "listening; log: $logs/kvsync.log"

# --- cron job, credential, schedules --------------------------------------------------------------------------
say "pg_cron job → http://127.0.0.1:$port/functions/v1/kiotviet-schedule-sync"
bin/kvsync cron install --url "http://127.0.0.1:$port/functions/v1/kiotviet-schedule-sync"

say "credential"
cred=$(bin/kvsync credentials list --retailer "$retailer" --active --ids | head -n 1)
if [ -n "$cred" ]; then
  echo "already there: $cred"
else
  cred=$(printf %s "$client_secret" | bin/kvsync credentials add --retailer "$retailer" --client-id "$client_id" 2>/dev/null)
  echo "added $cred"
fi

say "schedules"
# Products incrementally every hour (cheap: only what changed); stock every 2 hours (/productOnHands is a
# full read each time); attributes once a day, at night.
bin/kvsync schedule set --credential "$cred" --type products_full --every hourly
bin/kvsync schedule set --credential "$cred" --type inventory --every 2h
bin/kvsync schedule set --credential "$cred" --type attributes --every daily --at 03:00

# --- the first runs, through the dispatcher as the cron job would start them ----------------------------------
say "first sync (kvsync dispatch)"
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" \
  -c "update public.kiotviet_sync_schedules set next_run_at = now() where credential_id = '$cred'"
# One run per credential at a time: each tick claims the next due schedule.
for _ in 1 2 3 4; do
  out=$(bin/kvsync dispatch 2>>"$logs/dispatch.log") || { echo "$out"; die "a sync failed; see $logs/dispatch.log"; }
  echo "$out"
  case "$out" in *"nothing is due"*) break ;; esac
done

say "status"
bin/kvsync status
psql -X -q "$DATABASE_URL" -v cred="$cred" <<'SQL'
\pset footer off
select (select count(*) from public.kiotviet_products_full where credential_id = :'cred') as products,
       (select count(*) from public.kiotviet_inventory where credential_id = :'cred') as inventory_rows,
       (select count(*) from public.kiotviet_categories where credential_id = :'cred') as categories,
       (select count(*) from public.kiotviet_attributes where credential_id = :'cred') as attributes;
SQL

say "doctor"
if ! bin/kvsync doctor; then
  $check && die "kvsync doctor found a problem"
  echo "(the demo goes on; see the fixes above)"
fi

if $check; then
  echo
  echo "run.sh --check: everything came up; stopping"
  exit 0
fi

cat <<EOF

kvsync is running:
  dispatcher  http://127.0.0.1:$port/functions/v1/kiotviet-schedule-sync (pg_cron calls it every 5 minutes)
  fake shop   $KIOTVIET_API_URL   (change it: curl -X POST '$KIOTVIET_API_URL/_fake/change?n=50')
  logs        $logs/
In another shell:  set -a; . $demo; set +a; export DATABASE_URL='$DATABASE_URL'
                   KIOTVIET_TOKEN_URL=$KIOTVIET_TOKEN_URL KIOTVIET_API_URL=$KIOTVIET_API_URL bin/kvsync status
Ctrl-C stops kvsync serve and the fake (the database keeps running: make db-down).
EOF
wait "${pids[@]}"
