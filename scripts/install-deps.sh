#!/usr/bin/env bash
# Installs what kvsync's local database and tests need from Debian, the pg_net stand-in
# (sql/local/pg_net) into PostgreSQL's extension directory, and the npm tools pinned in
# tools/package-lock.json (the Supabase CLI, Deno, supabase-js) into tools/node_modules.
# Idempotent: quiet when all is there.
set -euo pipefail

PG_MAJOR=15
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
extdir=/usr/share/postgresql/$PG_MAJOR/extension

die() { echo "install-deps: $*" >&2; exit 1; }

missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || missing+=("$1"); }
need_pkg postgresql-$PG_MAJOR
need_pkg postgresql-contrib
need_pkg postgresql-$PG_MAJOR-cron
need_pkg postgresql-$PG_MAJOR-pgtap
need_pkg postgresql-$PG_MAJOR-plsh
need_pkg libtap-parser-sourcehandler-pgtap-perl   # pg_prove
need_pkg curl                                      # the pg_net stand-in sends with curl
need_pkg postgresql-$PG_MAJOR-plpgsql-check        # supabase db lint and make lint
command -v npm >/dev/null 2>&1 || { need_pkg nodejs; need_pkg npm; }   # the tools below
need_pkg python3-aiosmtpd                          # the real SMTP server the alert tests send email to

# The pg_net stand-in is installed when it is missing or differs from the project's copy.
ext_stale=0
for f in pg_net.control pg_net--0.0.1.sql; do
  cmp -s "$root/sql/local/pg_net/$f" "$extdir/$f" 2>/dev/null || ext_stale=1
done

# The npm tools: installed exactly as tools/package-lock.json pins them, again whenever the lock changed.
npm_tools() {
  local stamp=$root/tools/node_modules/.kvsync-lock
  cmp -s "$root/tools/package-lock.json" "$stamp" 2>/dev/null && return 0
  command -v npm >/dev/null 2>&1 || die "npm is missing: install nodejs and npm"
  echo "install-deps: installing the pinned npm tools into tools/node_modules (supabase, deno, supabase-js)"
  (cd "$root/tools" && npm ci --no-fund --no-audit --loglevel=error >/dev/null) || die "npm ci in tools/ failed"
  "$root/tools/node_modules/.bin/supabase" --version >/dev/null || die "the Supabase CLI from npm does not run"
  "$root/tools/node_modules/.bin/deno" --version >/dev/null || die "Deno from npm does not run"
  cp "$root/tools/package-lock.json" "$stamp"
}

if [ ${#missing[@]} -eq 0 ] && [ $ext_stale -eq 0 ]; then
  npm_tools
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "this script needs Debian (apt-get); install ${missing[*]:-nothing} and copy sql/local/pg_net/* into $extdir by hand"
if [ "$(id -u)" != 0 ]; then
  die "needs root to install ${missing[*]:-the pg_net stand-in}: run 'sudo scripts/install-deps.sh'"
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

if [ $ext_stale -eq 1 ] || [ ! -f "$extdir/pg_net.control" ]; then
  [ -d "$extdir" ] || die "$extdir does not exist: is postgresql-$PG_MAJOR installed?"
  install -m 644 "$root/sql/local/pg_net/pg_net.control" "$root/sql/local/pg_net/pg_net--0.0.1.sql" "$extdir/"
  echo "install-deps: installed the local pg_net stand-in into $extdir"
fi

npm_tools
