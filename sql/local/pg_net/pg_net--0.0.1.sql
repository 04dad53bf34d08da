-- LOCAL USE ONLY. A stand-in for Supabase's pg_net extension on plain Debian PostgreSQL, where pg_net is
-- not packaged. Never install it on a Supabase database (Supabase ships the real pg_net).
--
-- It keeps pg_net's public surface (net.http_post / net.http_get with the real signatures, the
-- net.http_request_queue and net._http_response tables) and really sends each request with curl, from a
-- deferred constraint trigger: the request leaves only when the transaction that queued it commits, never
-- after a rollback, as with the real extension's background worker.
--
-- Mode, per session or transaction: set kvsync.net_dispatch = 'async' (default: curl in the background, the
-- response row written later by psql, like the real worker) | 'sync' (curl runs at commit and the response
-- row is written in the same transaction: deterministic for tests) | 'off' (queue only).
\echo Use "CREATE EXTENSION pg_net" to load this file. \quit

create schema if not exists net;

create table net.http_request_queue (
  id bigserial primary key,
  method text not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds int not null,
  created timestamptz not null default now()
);

create table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out bool,
  error_msg text,
  created timestamptz not null default now()
);
create index on net._http_response (created);

create function net._url_with_params(url text, params jsonb) returns text
language sql immutable as $$
  select case when params is null or params = '{}'::jsonb then url
    else url || case when position('?' in url) > 0 then '&' else '?' end
      || (select string_agg(key || '=' || value, '&' order by key) from jsonb_each_text(params)) end
$$;

create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare request_id bigint;
begin
  if body is null then raise exception 'body must not be null'; end if;
  headers := coalesce(headers, '{}'::jsonb);
  if not exists (select from jsonb_object_keys(headers) k where lower(k) = 'content-type') then
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  end if;
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._url_with_params(url, params), headers, convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  return request_id;
end $$;

create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('GET', net._url_with_params(url, params), coalesce(headers, '{}'::jsonb), null, timeout_milliseconds)
  returning id into request_id;
  return request_id;
end $$;

-- curl reads its whole request from a config on stdin, so nothing of it shows in a process list.
create function net._curl_cfg_escape(s text) returns text language sql immutable as $$
  select replace(replace(replace(replace(s, '\', '\\'), '"', '\"'), E'\n', '\n'), E'\r', '\r')
$$;

-- Prints the status code on the first line, then the response body.
create function net._plsh_curl_sync(cfg text) returns text language plsh as $$
#!/bin/sh
out=$(mktemp) || exit 0
code=$(printf '%s\n' "$1" | curl -sS -K - -o "$out" -w '%{http_code}' 2>/dev/null)
printf '%s\n' "${code:-000}"
head -c 1048576 "$out"
rm -f "$out"
exit 0
$$;

create function net._plsh_curl_async(cfg text, request_id bigint, pgport text, pghost text, dbname text)
returns void language plsh as $$
#!/bin/sh
( code=$(printf '%s\n' "$1" | curl -sS -K - -o /dev/null -w '%{http_code}' 2>/dev/null)
  code=${code:-0}
  if [ "$code" = "000" ]; then err="'curl failed'"; code=0; else err=null; fi
  psql -X -q -h "$4" -p "$3" -U postgres -d "$5" \
    -c "insert into net._http_response(id, status_code, timed_out, error_msg) values ($2, $code, false, $err)" >/dev/null 2>&1
) </dev/null >/dev/null 2>&1 &
$$;

create function net._dispatch_request() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  cfg text;
  h record;
  mode text;
  reply text;
  code int;
begin
  mode := coalesce(nullif(current_setting('kvsync.net_dispatch', true), ''), 'async');
  if mode = 'off' then return null; end if;
  cfg := format(E'url = "%s"\nrequest = "%s"\nmax-time = %s\n', net._curl_cfg_escape(new.url), new.method,
                (new.timeout_milliseconds / 1000.0)::text);
  for h in select key, value from jsonb_each_text(new.headers) loop
    cfg := cfg || format(E'header = "%s"\n', net._curl_cfg_escape(h.key || ': ' || h.value));
  end loop;
  if new.body is not null then
    cfg := cfg || format(E'data-binary = "%s"\n', net._curl_cfg_escape(convert_from(new.body, 'UTF8')));
  end if;
  if mode = 'sync' then
    reply := net._plsh_curl_sync(cfg);
    code := nullif(split_part(reply, E'\n', 1), '')::int;
    insert into net._http_response (id, status_code, content, timed_out, error_msg)
    values (new.id, nullif(code, 0),
            nullif(substr(reply, length(split_part(reply, E'\n', 1)) + 2), ''),
            false, case when coalesce(code, 0) = 0 then 'curl failed' end);
  else
    perform net._plsh_curl_async(cfg, new.id, current_setting('port'),
      coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), '/var/run/postgresql'),
      current_database());
  end if;
  return null;
end $$;

create constraint trigger dispatch_after_commit after insert on net.http_request_queue
  deferrable initially deferred for each row execute function net._dispatch_request();
