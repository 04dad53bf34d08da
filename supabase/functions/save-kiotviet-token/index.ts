// POST /functions/v1/save-kiotviet-token, as the ERP frontend calls it, answered by kvsync. Errors come
// back as 200 {success:false, error} so that functions.invoke shows kvsync's reason (see
// _shared/forward.ts).
import { forwardTo } from "../_shared/forward.ts";

Deno.serve(forwardTo("/functions/v1/save-kiotviet-token"));
