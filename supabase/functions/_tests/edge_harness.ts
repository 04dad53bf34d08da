// An edge-runtime-like server for the forwarder tests (cmd/kvsync/forwarders_test.go); never deployed.
// Like Supabase's edge runtime it loads each function's index.ts as it is, keeps the handler the module
// gives Deno.serve, and routes /functions/v1/<name>/... to it (404 for an unknown name). The gateway's
// JWT check is off for these functions (config.toml), so none is done here either.
//
//   deno run --allow-net --allow-env --allow-read edge_harness.ts kiotviet-sync save-kiotviet-token
//
// It listens on HARNESS_PORT (0: any free port) and prints "listening on <port>" once ready.

type Handler = (
  req: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

const handlers = new Map<string, Handler>();
const realServe = Deno.serve;

for (const name of Deno.args) {
  let captured: Handler | undefined;
  Object.defineProperty(Deno, "serve", {
    configurable: true,
    writable: true,
    value: (a: unknown, b?: unknown) => {
      captured = (typeof a === "function" ? a : b) as Handler;
      return {
        finished: Promise.resolve(),
        ref() {},
        unref() {},
        shutdown: () => Promise.resolve(),
      };
    },
  });
  await import(new URL(`../${name}/index.ts`, import.meta.url).href);
  if (!captured) throw new Error(`${name}/index.ts did not call Deno.serve`);
  handlers.set(name, captured);
}
Object.defineProperty(Deno, "serve", {
  configurable: true,
  writable: true,
  value: realServe,
});

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("HARNESS_PORT") ?? "0"),
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, (req, info) => {
  const m = new URL(req.url).pathname.match(
    /^\/functions\/v1\/([A-Za-z][A-Za-z0-9_-]*)(\/.*)?$/,
  );
  const handler = m ? handlers.get(m[1]) : undefined;
  if (!handler) {
    return Response.json({
      code: "NOT_FOUND",
      message: "Requested function was not found",
    }, { status: 404 });
  }
  return handler(req, info);
});
