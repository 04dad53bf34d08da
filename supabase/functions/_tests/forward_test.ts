// deno test for _shared/forward.ts's "as-is" mode, the one for callers that read statuses and sign their
// bodies (a webhook sender): kvsync's status and body come back unchanged, and the request body reaches
// kvsync byte for byte. Run by cmd/kvsync/forwarders_test.go; never deployed.
import { forwardTo, withoutURLs } from "../_shared/forward.ts";

function assertEquals(actual: unknown, expected: unknown, what: string) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(
      `${what}: got ${JSON.stringify(actual)}, want ${
        JSON.stringify(expected)
      }`,
    );
  }
}

Deno.test("as-is: raw body in, kvsync's status and body out", async () => {
  let received: Uint8Array | undefined;
  let receivedType = "";
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      received = new Uint8Array(await req.arrayBuffer());
      receivedType = req.headers.get("content-type") ?? "";
      return new Response("retry later", {
        status: 503,
        headers: { "Retry-After": "30" },
      });
    },
  );
  try {
    Deno.env.set("KVSYNC_URL", `http://127.0.0.1:${upstream.addr.port}`);
    const forward = forwardTo("/functions/v1/kiotviet-webhook", {
      replies: "as-is",
    });
    // Not valid JSON, with bytes a JSON round trip would change: must arrive exactly.
    const body = new TextEncoder().encode(
      '{"Notifications": [ {"Action":"product.update"} ],  "x":"\u00e9"}\n',
    );
    const res = await forward(
      new Request("http://edge/kiotviet-webhook", {
        method: "POST",
        body,
        headers: {
          "content-type": "application/json; charset=utf-8",
          "x-hub-signature": "sha256=abc",
        },
      }),
    );
    assertEquals(res.status, 503, "status");
    assertEquals(await res.text(), "retry later", "body");
    assertEquals(res.headers.get("retry-after"), "30", "Retry-After");
    assertEquals(
      Array.from(received ?? []),
      Array.from(body),
      "request body bytes",
    );
    assertEquals(
      receivedType,
      "application/json; charset=utf-8",
      "content-type",
    );
  } finally {
    await upstream.shutdown();
  }
});

Deno.test("erp: a non-JSON error page becomes {success:false} with the status in words", async () => {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("<html>Bad Gateway</html>", {
        status: 502,
        statusText: "Bad Gateway",
      }),
  );
  try {
    Deno.env.set("KVSYNC_URL", `http://127.0.0.1:${upstream.addr.port}`);
    const res = await forwardTo("/functions/v1/kiotviet-sync")(
      new Request("http://edge/kiotviet-sync", { method: "POST", body: "{}" }),
    );
    assertEquals(res.status, 200, "status");
    assertEquals(res.headers.get("x-kvsync-status"), "502", "X-Kvsync-Status");
    assertEquals(await res.json(), {
      success: false,
      error: "kvsync answered 502 Bad Gateway",
    }, "body");
  } finally {
    await upstream.shutdown();
  }
});

// KVSYNC_URL may carry a token; when kvsync cannot be reached, or the value is not a URL at all, the
// forwarder's log line and its reply say so without the value.
Deno.test("KVSYNC_URL's value is never logged nor replied", async () => {
  const logged: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => {
    logged.push(args.map(String).join(" "));
  };
  // a port nothing listens on: listen, note it, close
  const ln = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (ln.addr as Deno.NetAddr).port;
  ln.close();
  try {
    for (
      const value of [
        `http://kvsync:tok-in-userinfo@127.0.0.1:${port}/tok-in-path/?token=tok-in-query`,
        "not a url tok-in-garbage",
      ]
    ) {
      Deno.env.set("KVSYNC_URL", value);
      const res = await forwardTo("/functions/v1/kiotviet-sync")(
        new Request("http://edge/kiotviet-sync", {
          method: "POST",
          body: "{}",
        }),
      );
      const body = await res.text();
      assertEquals(res.status, 200, "status");
      assertEquals(
        JSON.parse(body).error,
        "kvsync could not be reached; try again",
        "reply",
      );
      const all = logged.join("\n") + body;
      for (
        const secret of [
          "tok-in-userinfo",
          "tok-in-path",
          "tok-in-query",
          "tok-in-garbage",
        ]
      ) {
        if (all.includes(secret)) {
          throw new Error(`${secret} leaked: ${all}`);
        }
      }
    }
    assertEquals(logged.length, 2, "one log line per failed call");
    if (!logged.every((l) => l.startsWith("kvsync could not be reached:"))) {
      throw new Error(`log lines: ${logged}`);
    }
  } finally {
    console.error = consoleError;
  }
});

Deno.test("withoutURLs removes the configured value and any URL", () => {
  assertEquals(
    withoutURLs(
      "error sending request for url (https://u:p@kv.example/x?token=1): refused; base 'raw-secret'",
      "raw-secret",
    ),
    "error sending request for url (<url>): refused; base '<KVSYNC_URL>'",
    "scrubbed",
  );
});
