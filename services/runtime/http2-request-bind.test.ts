import { AsyncLocalStorage, AsyncResource, executionAsyncId } from "node:async_hooks";
import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useCheapRequestBind } from "./http2-request-bind.js";

type Bind = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => (...args: unknown[]) => unknown;
const proto = AsyncResource.prototype as unknown as { bind: Bind };

let server: http2.Http2Server;
let url: string;
beforeAll(async () => {
  useCheapRequestBind();
  server = http2.createServer((req, res) => res.end(`hello ${req.url}`));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Records what AsyncResource#bind is given and returns while `run` runs. */
async function recordingBinds(run: () => Promise<void>): Promise<{ name: string; accessor: boolean }[]> {
  const seen: { name: string; accessor: boolean }[] = [];
  const installed = proto.bind;
  proto.bind = function (fn, thisArg) {
    const bound = installed.call(this, fn, thisArg);
    seen.push({ name: fn.name, accessor: "asyncResource" in bound });
    return bound;
  };
  try {
    await run();
  } finally {
    proto.bind = installed;
  }
  return seen;
}

async function get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  const req = session.request({ ":path": path });
  req.setEncoding("utf8");
  let body = "";
  for await (const chunk of req) body += chunk;
  return body;
}

describe("useCheapRequestBind", () => {
  it("binds node's HTTP/2 client request callback without the deprecated accessor, and requests still work", async () => {
    const session = http2.connect(url);
    try {
      const seen = await recordingBinds(async () => {
        // The first request is made while the session is still connecting (node queues the callback), the second after.
        expect(await get(session, "/first")).toBe("hello /first");
        expect(await get(session, "/second")).toBe("hello /second");
      });
      // If node's code changes (another name, no bind), this fails and the patch is dead code.
      expect(seen).toEqual([
        { name: "bound requestOnConnect", accessor: false },
        { name: "bound requestOnConnect", accessor: false },
      ]);
    } finally {
      session.close();
    }
  });

  it("runs the callback in the resource's async scope, with its this and arguments", () => {
    const store = new AsyncLocalStorage<string>();
    const resource = store.run("at request()", () => new AsyncResource("PendingRequest"));
    function requestOnConnect(this: { id: number }, a: number, b: number) {
      return { id: this.id, sum: a + b, asyncId: executionAsyncId(), store: store.getStore() };
    }
    const bound = proto.bind.call(resource, requestOnConnect.bind({ id: 7 }, 1) as (...args: unknown[]) => unknown);
    expect(store.run("elsewhere", () => bound(2))).toEqual({ id: 7, sum: 3, asyncId: resource.asyncId(), store: "at request()" });
  });

  it("leaves every other bind as node makes it", () => {
    const resource = new AsyncResource("Other");
    const fn = (a: number, b: number) => a + b;
    const bound = resource.bind(fn);
    expect(bound(1, 2)).toBe(3);
    expect(bound.length).toBe(2);
    expect("asyncResource" in bound).toBe(true);
  });
});
