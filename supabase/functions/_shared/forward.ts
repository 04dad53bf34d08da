// Forwards a call of the ERP frontend to kvsync unchanged: method, headers (Authorization, apikey,
// x-client-info, content-type) and body go to KVSYNC_URL + path, and kvsync's answer comes back as it is.
// No logic lives here: kvsync authenticates the caller (the anon key opens nothing) and does the work.
// Secrets: `supabase secrets set KVSYNC_URL=https://kvsync.example.com`.

const hopByHop = ["host", "connection", "content-length", "transfer-encoding", "keep-alive", "upgrade"];

export function forwardTo(path: string): (req: Request) => Promise<Response> {
  return async (req: Request): Promise<Response> => {
    const base = Deno.env.get("KVSYNC_URL");
    if (!base) {
      return reply(500, "KVSYNC_URL is not set: supabase secrets set KVSYNC_URL=https://<your kvsync host>");
    }
    const headers = new Headers(req.headers);
    for (const h of hopByHop) headers.delete(h);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
    try {
      const res = await fetch(new URL(path, base), { method: req.method, headers, body, redirect: "manual" });
      const out = new Headers(res.headers);
      for (const h of hopByHop) out.delete(h);
      return new Response(res.body, { status: res.status, headers: out });
    } catch (_e) {
      return reply(502, "kvsync could not be reached; try again");
    }
  };
}

function reply(status: number, error: string): Response {
  return new Response(JSON.stringify({ success: false, error }), {
    status,
    headers: { "Content-Type": "application/json", "Access-Control-Allow-Origin": "*" },
  });
}
