// Calls the forwarders as the ERP frontend does, through @supabase/supabase-js functions.invoke, for
// cmd/kvsync/forwarders_test.go. supabase-js comes from this folder's node_modules
// (pinned in tools/package-lock.json), run under Deno, which has the browser's fetch and WebSocket:
//
//   tools/node_modules/.bin/deno run --allow-net --allow-env --allow-read tools/invoke.ts '<calls>'
//
// Each call is {url, key, name, token?, body}: a client for url with key (the anon or publishable key,
// as the ERP's client is built), signed in as token when given. It prints one JSON array, a result per
// call: {data, error: <message or null>, status: <the reply's HTTP status>}.
import { createClient } from "@supabase/supabase-js";

interface Call {
  url: string;
  key: string;
  name: string;
  token?: string;
  body: unknown;
}

const calls: Call[] = JSON.parse(Deno.args[0]);
const results = await Promise.all(calls.map(async (c) => {
  const client = createClient(c.url, c.key, {
    auth: {
      persistSession: false,
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
    global: c.token ? { headers: { Authorization: `Bearer ${c.token}` } } : {},
  });
  const { data, error, response } = await client.functions.invoke(c.name, {
    body: c.body as Record<string, unknown>,
  });
  const status =
    (response ?? (error as { context?: Response } | null)?.context)?.status ??
      0;
  return { data: data ?? null, error: error ? error.message : null, status };
}));
console.log(JSON.stringify(results));
