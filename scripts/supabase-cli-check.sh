#!/usr/bin/env bash
# The real Supabase CLI (tools/node_modules, pinned 2.117.0) against kvsync's migrations, each case on a
# fresh cluster of its own (KVSYNC_CLI_DB_PORT, default 54378, under .local/pg-cli; deleted at the end):
#   1. fresh database: `supabase db push --db-url` applies every migration, `supabase migration list`
#      agrees, and `kvsync migrate` then finds nothing to do; and the other way round.
#   2. the earlier system's database (supabase/fixtures/seed_era.sql): the same push adopts it.
#   3. the ERP's real database (seed_era.sql + supabase/fixtures/erp_history.sql, the ERP's own migration
#      history): a push from kvsync's folder is refused, as on the real project; README's path works:
#      kvsync's migration files copied into the ERP project's supabase/migrations and pushed from there,
#      or `kvsync migrate` alongside; both tools agree afterwards.
#   4. `supabase db reset --db-url` on the local cluster: it drops what only the local stand-ins provide
#      (the auth schema, pg_cron, pgTAP, plsh and with it the pg_net stand-in) and stops at the first
#      migration, as README says; `scripts/db.sh up` then re-installs the stand-ins, `kvsync migrate`
#      re-applies everything, and the CLI agrees.
# make test runs it. Exits non-zero on the first disagreement.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
supabase=$root/tools/node_modules/.bin/supabase
[ -x "$supabase" ] || { echo "the Supabase CLI is missing: run scripts/install-deps.sh"; exit 1; }
export KVSYNC_DB_PORT=${KVSYNC_CLI_DB_PORT:-54378} KVSYNC_DB_DIR=.local/pg-cli
work=$(mktemp -d)
trap 'scripts/db.sh reset >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
go build -o "$work/kvsync" ./cmd/kvsync

say() { echo "+ $*"; }
where() { [ "$1" = "$root" ] && echo "kvsync's folder" || echo "the ERP's project"; }
fail() { echo "supabase-cli-check: $*" >&2; exit 1; }

fresh() { # a new cluster with the Supabase stand-ins; prints its URL
  scripts/db.sh reset >/dev/null
  url=$(scripts/db.sh up)
  psql -X -q -v ON_ERROR_STOP=1 "$url" -c "alter database postgres set kvsync.net_dispatch = 'off'" >/dev/null
}
load() { psql -X -q -v ON_ERROR_STOP=1 "$url" -c "set kvsync.net_dispatch = 'off'" -f "$1" >/dev/null; }

# agree DIR: `supabase migration list` run in project DIR shows every version on both sides, and the
# database holds exactly the versions of DIR's migrations (plus none kvsync does not know of).
agree() {
  local dir=$1 list rows bad
  say "supabase migration list --db-url … ($(where "$dir"))"
  list=$("$supabase" migration list --workdir "$dir" --db-url "$url" 2>&1) || { echo "$list"; fail "migration list failed"; }
  rows=$(printf '%s\n' "$list" | tr -d '`' | awk -F'|' 'NF >= 3 && $1 ~ /[0-9]/ {gsub(/ /, "", $1); gsub(/ /, "", $2); print $1 "|" $2}')
  bad=$(printf '%s\n' "$rows" | awk -F'|' '$1 != $2')
  [ -n "$rows" ] || { echo "$list"; fail "migration list shows no migrations"; }
  [ -z "$bad" ] || { echo "$list"; fail "local and remote disagree: $bad"; }
  local want
  want=$(ls "$dir/supabase/migrations" | sed -n 's/^\([0-9]*\)_.*\.sql$/\1/p' | sort)
  [ "$(printf '%s\n' "$rows" | cut -d'|' -f1 | sort)" = "$want" ] || { echo "$list"; fail "migration list does not show every local file"; }
  echo "ok  $(printf '%s\n' "$rows" | wc -l) versions, local = remote"
}

# kvsync_migrate_noop: kvsync sees every one of its migrations applied.
kvsync_migrate_noop() {
  local out
  say "kvsync migrate --db-url …"
  out=$("$work/kvsync" migrate --db-url "$url")
  echo "$out" | grep -q '^applied' && { echo "$out"; fail "kvsync migrate applied what the CLI had applied"; }
  echo "ok  $out"
}

push() { # push DIR
  say "supabase db push --db-url … --yes ($(where "$1"))"
  "$supabase" db push --workdir "$1" --db-url "$url" --yes >"$work/push.log" 2>&1 || { cat "$work/push.log"; fail "db push failed"; }
  grep -c '^Applying migration' "$work/push.log" | sed 's/^/ok  applied /; s/$/ migrations/'
}

# The ERP's project as the CLI sees it: its own migration files (already applied on its database; their
# contents do not matter to a push) and kvsync's, copied in, whose versions sort after the ERP's.
erp=$work/erp
mkdir -p "$erp/supabase/migrations"
printf 'project_id = "erp"\n' >"$erp/supabase/config.toml"
sed -n "s/^  ('\([0-9]*\)', '\([a-z0-9_]*\)'.*/\1_\2/p" supabase/fixtures/erp_history.sql | while read -r m; do
  echo "-- the ERP's own migration $m (applied long ago)" >"$erp/supabase/migrations/$m.sql"
done
cp supabase/migrations/*.sql "$erp/supabase/migrations/"

echo "-- 1. a fresh database"
fresh
push "$root"
agree "$root"
kvsync_migrate_noop
fresh
say "kvsync migrate --db-url … (first), then the CLI"
"$work/kvsync" migrate --db-url "$url" >/dev/null
agree "$root"
say "supabase db push --dry-run"
"$supabase" db push --workdir "$root" --db-url "$url" --dry-run 2>&1 | grep -q 'Remote database is up to date' \
  || fail "db push would apply something kvsync migrate applied"
echo "ok  the CLI has nothing to push"

echo "-- 2. the earlier system's database (supabase/fixtures/seed_era.sql)"
fresh
load supabase/fixtures/seed_era.sql
push "$root"
agree "$root"
kvsync_migrate_noop

echo "-- 3. the ERP's database, with its own migration history (supabase/fixtures/erp_history.sql)"
fresh
load supabase/fixtures/seed_era.sql
load supabase/fixtures/erp_history.sql
say "supabase db push from kvsync's own folder (must be refused)"
if "$supabase" db push --workdir "$root" --db-url "$url" --yes >"$work/push.log" 2>&1; then
  cat "$work/push.log"; fail "the push from kvsync's folder was expected to be refused"
fi
grep -q 'Remote migration versions not found' "$work/push.log" || { cat "$work/push.log"; fail "refused for another reason"; }
echo "ok  refused: Remote migration versions not found in local migrations directory"
say "kvsync's migrations copied into the ERP project's supabase/migrations, pushed from there"
push "$erp"
agree "$erp"
kvsync_migrate_noop

fresh
load supabase/fixtures/seed_era.sql
load supabase/fixtures/erp_history.sql
say "kvsync migrate alongside the ERP's history, then the ERP project's CLI"
"$work/kvsync" migrate --db-url "$url" >/dev/null
agree "$erp"
"$supabase" db push --workdir "$erp" --db-url "$url" --dry-run 2>&1 | grep -q 'Remote database is up to date' \
  || fail "the ERP project's push would apply something kvsync migrate applied"
echo "ok  the ERP project's CLI has nothing to push"

echo "-- 4. supabase db reset --db-url on the local cluster (README: why not, and what to run instead)"
fresh
"$work/kvsync" migrate --db-url "$url" >/dev/null
say "supabase db reset --db-url … --yes (expected to stop: the stand-ins are not Supabase's platform)"
if "$supabase" db reset --workdir "$root" --db-url "$url" --yes >"$work/reset.log" 2>&1; then
  cat "$work/reset.log"; fail "db reset on the local cluster succeeded: update README's section on it"
fi
grep -q 'required extension "plsh" is not installed' "$work/reset.log" || { cat "$work/reset.log"; fail "db reset failed for another reason"; }
echo "ok  stopped as documented: required extension \"plsh\" is not installed"
say "scripts/db.sh up (re-installs the stand-ins), kvsync migrate"
url=$(scripts/db.sh up)
"$work/kvsync" migrate --db-url "$url" | tail -n 1
[ "$(psql -X -At "$url" -c "select count(*) from pg_extension where extname in ('pg_cron', 'pg_net', 'plsh', 'pgtap')")" = 4 ] \
  || fail "the stand-ins did not come back"
psql -X -At "$url" -c "select auth.uid() is null" >/dev/null || fail "auth.uid() did not come back"
agree "$root"
kvsync_migrate_noop
