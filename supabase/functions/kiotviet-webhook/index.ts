// POST /functions/v1/kiotviet-webhook on the Supabase project, for shops whose webhook URL must be the
// project's: KiotViet's delivery goes to kvsync unchanged. The raw body bytes and the headers (the
// X-Hub-Signature is over those exact bytes) and the query (?credential=…&event=…, which picks the secret
// and names a bare delete's type) reach kvsync as sent, and kvsync's status comes back as it is: KiotViet
// must see kvsync's 200, or its 401 for a bad signature, never a 200 standing for an error.
import { forwardTo } from "../_shared/forward.ts";

Deno.serve(forwardTo("/functions/v1/kiotviet-webhook", { replies: "as-is" }));
