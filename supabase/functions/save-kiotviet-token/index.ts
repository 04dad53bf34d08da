// POST /functions/v1/save-kiotviet-token, as the ERP frontend calls it, answered by kvsync.
import { forwardTo } from "../_shared/forward.ts";

Deno.serve(forwardTo("/functions/v1/save-kiotviet-token"));
