#!/usr/bin/env bash
# The project's own PostgreSQL 15 cluster, with pg_cron preloaded and the Supabase stand-ins of sql/local.
#   scripts/db.sh up      start it (create it first if needed); prints its URL. Twice is harmless.
#   scripts/db.sh down    stop the cluster that 'up' started (its data is kept).
#   scripts/db.sh reset   stop it and delete its data.
#   scripts/db.sh url     print its URL.
#   scripts/db.sh template
#                         (re)make kvsync_template, the migrated database that internal/testdb clones a
#                         database of its own from for every test that commits; run it after migrating.
#                         It restarts the cluster: run it when nothing else is using it.
#   scripts/db.sh psql    open psql on it (extra arguments go to psql).
# Environment: KVSYNC_DB_PORT (default 54329), KVSYNC_DB_DIR (default .local/pg in the project).
# As root, postgres runs as the 'postgres' user.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
port=${KVSYNC_DB_PORT:-54329}
dir=${KVSYNC_DB_DIR:-$root/.local/pg}
case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

die() { echo "db.sh: $*" >&2; exit 1; }

runas=()
if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); fi

# As root, postgres must be able to reach its data directory. When the project lives somewhere the
# postgres user cannot traverse (a home directory with mode 700, say), the data lives under /var/tmp and
# the project's folder holds a link to it.
if [ "$(id -u)" = 0 ] && ! [ -L "$dir" ]; then
  mkdir -p -m 755 "$(dirname "$dir")"
  if ! runuser -u postgres -- test -x "$(dirname "$dir")" 2>/dev/null; then
    ln -s "/var/tmp/kvsync-pg-$(printf '%s' "$dir" | md5sum | cut -c1-12)" "$dir"
  fi
fi
datadir() { if [ -L "$dir" ]; then readlink "$dir"; else printf '%s' "$dir"; fi; }

running() { [ -f "$1/postmaster.pid" ] && "${runas[@]}" "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

psql_su() { psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }

up() {
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 is not installed: run 'make deps' (scripts/install-deps.sh) as root"
  local d; d=$(datadir)
  mkdir -p "$root/.local"
  exec 9>"$root/.local/db-$port.lock"
  flock 9
  if ! [ -f "$d/PG_VERSION" ]; then
    if [ "$(id -u)" = 0 ]; then install -d -m 700 -o postgres -g postgres "$d"; else mkdir -p -m 700 "$d"; fi
    "${runas[@]}" "$PGBIN/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    cat >>"$d/postgresql.conf" <<CONF
# kvsync development settings: fast, not durable.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$d'
timezone = 'UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = logical
max_connections = 200
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 32
CONF
  fi
  # A cluster left running on another port (a port chosen free on an earlier run) is restarted on this one.
  if running "$d" && [ "$(sed -n 4p "$d/postmaster.pid")" != "$port" ]; then
    "${runas[@]}" "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null
  fi
  running "$d" || start "$d"
  psql_su -f "$root/sql/local/supabase.sql" >/dev/null \
    || die "the Supabase stand-ins (sql/local/supabase.sql) did not apply: run 'make deps' as root first"
  echo "$url"
}

start() {
  "${runas[@]}" "$PGBIN/pg_ctl" -D "$1" -l "$1/server.log" -o "-p $port" -w -t 60 start </dev/null >/dev/null 2>&1 9>&- \
    || die "postgres did not start; see $1/server.log"
}

# Test databases are clones: CREATE DATABASE … TEMPLATE is a file copy (milliseconds), where migrating a
# fresh database takes seconds. The template can only be cloned from the migrated 'postgres' database
# while nobody is connected to it, and pg_cron's scheduler always is (cron.database_name; pg_cron's CREATE
# EXTENSION is refused in any other database, a clone of one that has it is not). So the scheduler is
# stopped for the copy, and the cluster restarted after it to bring the scheduler back. The template is
# emptied of rows (the shared database keeps what committed tests left) and labelled with its
# migrations, so that internal/testdb can tell it is up to date without connecting to it (a connection
# would block the clones).
template() {
  up >/dev/null
  local d t1 tpl
  d=$(datadir)
  t1=${url/\/postgres\?/\/template1?}
  tpl=${url/\/postgres\?/\/kvsync_template?}
  psql -X -q -At -v ON_ERROR_STOP=1 "$t1" >/dev/null <<'SQL'
select pg_terminate_backend(pid, 10000) from pg_stat_activity where backend_type = 'pg_cron launcher';
select format('drop database %I with (force)', datname) from pg_database
 where datname = 'kvsync_template' or datname like 'kvsync\_test\_%' \gexec
create database kvsync_template template postgres strategy file_copy;
SQL
  psql -X -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<'SQL'
-- CREATE DATABASE copies no ALTER DATABASE … SET (sql/local/supabase.sql's search_path): copy them from
-- this session, which started with postgres's.
select format('alter database kvsync_template set %I from current', split_part(c, '=', 1))
  from pg_db_role_setting s, unnest(s.setconfig) c
 where s.setrole = 0 and s.setdatabase = (select oid from pg_database where datname = current_database()) \gexec
SQL
  psql -X -q -v ON_ERROR_STOP=1 "$tpl" >/dev/null <<'SQL'
do $$
declare names text;
begin
  select string_agg(format('public.%I', tablename), ', ') into names
    from pg_tables where schemaname = 'public' and tablename like 'kiotviet\_%';
  if names is not null then
    execute 'truncate ' || names || ' cascade';
  end if;
  delete from net.http_request_queue;
  delete from net._http_response;
  delete from cron.job_run_details;
  execute format('comment on database kvsync_template is %L', 'kvsync test template, migrations '
    || (select md5(string_agg(version, ',' order by version)) from supabase_migrations.schema_migrations));
end $$;
SQL
  "${runas[@]}" "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null
  start "$d"
  echo "$tpl"
}

down() {
  local d; d=$(datadir)
  if running "$d"; then
    "${runas[@]}" "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  reset)
    down
    rm -rf "$(datadir)"
    if [ -L "$dir" ]; then rm -f "$dir"; fi
    ;;
  template) template ;;
  url) echo "$url" ;;
  psql) shift; exec psql -X "$url" "$@" ;;
  *) echo "usage: scripts/db.sh up|down|reset|template|url|psql" >&2; exit 2 ;;
esac
