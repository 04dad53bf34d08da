// Forwards a call of the ERP frontend to kvsync: method, headers (Authorization, apikey, x-client-info,
// content-type) and the body's bytes, unchanged, go to KVSYNC_URL + path. No logic lives here: kvsync
// authenticates the caller (the anon and publishable keys open nothing) and does the work.
// Secrets: `supabase secrets set KVSYNC_URL=https://kvsync.example.com`.
//
// Two reply modes:
// - "erp" (the default, for the ERP's functions.invoke): a 2xx reply from kvsync comes back as it is;
//   any other reply becomes 200 {success:false, error} with kvsync's reason, because supabase-js turns
//   every non-2xx reply into "Edge Function returned a non-2xx status code" without reading the body
//   (erp-contract §1.3). kvsync's status stays visible in the X-Kvsync-Status header.
// - "as-is" (for callers that read statuses, e.g. a webhook sender that retries on 5xx): kvsync's
//   status and body come back unchanged.
// Either way the request body is passed as raw bytes, never parsed, so a signed body (a webhook's
// HMAC) arrives byte for byte.

export type ReplyMode = "erp" | "as-is";

export interface ForwardOptions {
  replies?: ReplyMode;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded. accept-encoding
// is left to Deno's fetch, which then decompresses the reply itself.
const requestDrop = [
  "host",
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "accept-encoding",
];

// Deno's fetch hands over the body already decoded, so the upstream's content-encoding and
// content-length describe bytes that no longer exist: copying them makes the client decode plain
// JSON as gzip (supabase-js: "TypeError: terminated").
const replyDrop = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-encoding",
  "content-length",
];

// What supabase-js's functions.invoke sends, as Supabase's own function examples allow.
const corsAllowHeaders = "authorization, x-client-info, apikey, content-type";

export function forwardTo(
  path: string,
  options: ForwardOptions = {},
): (req: Request) => Promise<Response> {
  const mode = options.replies ?? "erp";
  return async (req: Request): Promise<Response> => {
    const base = Deno.env.get("KVSYNC_URL");
    if (!base) {
      console.error("KVSYNC_URL is not set");
      if (req.method === "OPTIONS") return preflight(req);
      return failure(
        req,
        mode,
        500,
        "KVSYNC_URL is not set: supabase secrets set KVSYNC_URL=https://<your kvsync host>",
      );
    }
    const headers = new Headers(req.headers);
    for (const h of requestDrop) headers.delete(h);
    const body = req.method === "GET" || req.method === "HEAD"
      ? undefined
      : await req.arrayBuffer();
    let res: Response;
    try {
      // the query goes along (the webhook URL's ?credential=…&event=…; the ERP's calls have none)
      const target = new URL(path, base);
      target.search = new URL(req.url).search;
      res = await fetch(target, {
        method: req.method,
        headers,
        body,
        redirect: "manual",
      });
    } catch (e) {
      console.error(
        "kvsync could not be reached:",
        withoutURLs(e instanceof Error ? e.message : String(e), base),
      );
      // A preflight that fails stops the browser before the ERP can show anything, so it is answered
      // here; the POST that follows then gets the reason below.
      if (req.method === "OPTIONS") return preflight(req);
      return failure(req, mode, 502, "kvsync could not be reached; try again");
    }
    if (req.method === "OPTIONS" && res.status >= 500) {
      // kvsync is down behind a proxy that answered for it: the same as unreachable.
      await res.body?.cancel();
      return preflight(req);
    }
    const out = new Headers(res.headers);
    for (const h of replyDrop) out.delete(h);
    if (
      mode === "as-is" || req.method === "OPTIONS" ||
      (res.status >= 200 && res.status < 300)
    ) {
      return new Response(res.body, {
        status: res.status,
        statusText: res.statusText,
        headers: out,
      });
    }
    const reason = await reasonOf(res);
    out.set("Content-Type", "application/json");
    out.set("X-Kvsync-Status", String(res.status));
    return new Response(JSON.stringify({ success: false, error: reason }), {
      status: 200,
      headers: out,
    });
  };
}

// withoutURLs is text fit for a log line: KVSYNC_URL may carry a token (in its userinfo, path or query),
// and fetch's and URL's errors quote the URL they were given ("error sending request for url (…)",
// "Invalid URL: … with base '…'"). The configured value is removed wherever it appears, and so is
// anything else shaped like a URL.
export function withoutURLs(text: string, kvsyncURL: string): string {
  let out = text;
  for (const v of [kvsyncURL, kvsyncURL.trim()]) {
    if (v !== "") out = out.split(v).join("<KVSYNC_URL>");
  }
  return out.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s'")]+/gi, "<url>");
}

// reasonOf is kvsync's own reason ({success:false, error}), or, for a reply that has none (a proxy's
// error page), the status in words.
async function reasonOf(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const v = JSON.parse(text);
    if (v && typeof v.error === "string" && v.error !== "") return v.error;
    if (v && typeof v.message === "string" && v.message !== "") {
      return v.message;
    }
  } catch {
    // not JSON: fall through
  }
  return `kvsync answered ${res.status}${
    res.statusText ? " " + res.statusText : ""
  }`;
}

function corsHeaders(req: Request): Headers {
  const h = new Headers();
  const origin = req.headers.get("Origin");
  h.set("Access-Control-Allow-Origin", origin ?? "*");
  if (origin) h.set("Vary", "Origin");
  h.set("Access-Control-Allow-Headers", corsAllowHeaders);
  h.set("Access-Control-Allow-Methods", "POST, OPTIONS");
  return h;
}

// preflight answers an OPTIONS request here, only when kvsync cannot: it opens nothing (the POST still
// needs kvsync), and lets the browser read the reason the POST then gets.
function preflight(req: Request): Response {
  return new Response(null, { status: 204, headers: corsHeaders(req) });
}

// failure is the forwarder's own error reply: readable by the browser (CORS), and in "erp" mode a 200
// with {success:false, error} for the same reason as above.
function failure(
  req: Request,
  mode: ReplyMode,
  status: number,
  error: string,
): Response {
  const h = corsHeaders(req);
  h.set("Content-Type", "application/json");
  if (mode === "erp") h.set("X-Kvsync-Status", String(status));
  return new Response(JSON.stringify({ success: false, error }), {
    status: mode === "erp" ? 200 : status,
    headers: h,
  });
}
