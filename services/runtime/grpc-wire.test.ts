// http2RequestHeaders: reads from Node's header object behave as a Headers
// built from it would, and the first change or iteration copies them.
import { describe, expect, it } from "vitest";
import { http2RequestHeaders, webHeaders } from "./grpc-wire.js";

const raw = () => ({
  ":method": "POST",
  ":path": "/myevents.v1.EventService/GetEvent",
  "content-type": "application/grpc",
  authorization: "Bearer abc",
  "x-padded": " \tspaced value\t ",
  "set-cookie": ["a=1", "b=2"],
});

describe("http2RequestHeaders", () => {
  it("reads as the equivalent Headers does: case, pseudo-headers, whitespace, repeated values", () => {
    const lazy = http2RequestHeaders(raw());
    const real = webHeaders(raw());
    expect(lazy).toBeInstanceOf(Headers);
    for (const name of ["Content-Type", "authorization", "x-padded", "set-cookie", "missing"]) {
      expect(lazy.get(name)).toBe(real.get(name));
      expect(lazy.has(name)).toBe(real.has(name));
    }
    // Pseudo-headers are not headers: an invalid name, as for any Headers.
    expect(() => lazy.get(":path")).toThrow(TypeError);
    expect(() => real.get(":path")).toThrow(TypeError);
    expect([...lazy]).toEqual([...real]);
  });

  it("answers absent names as Headers does: null for a valid name, a TypeError for an invalid one", () => {
    const lazy = http2RequestHeaders(raw());
    const real = webHeaders(raw());
    for (const name of ["X-Missing", "tracestate", "a!#$%&'*+-.^_`|~9"]) expect(lazy.get(name)).toBe(real.get(name));
    for (const name of ["bad name", "bad:name", "", "x\u0100", "é"]) {
      expect(() => real.get(name)).toThrow(TypeError);
      expect(() => lazy.get(name)).toThrow(TypeError);
      expect(() => lazy.has(name)).toThrow(TypeError);
    }
  });

  it("answers a name asked again, in any case, from what was checked the first time", () => {
    const real = webHeaders(raw());
    for (let round = 0; round < 2; round++) {
      const lazy = http2RequestHeaders(raw());
      for (const name of ["AUTHORIZATION", "Authorization", "authorization", "x-Missing", "x-missing"]) expect(lazy.get(name)).toBe(real.get(name));
      // An invalid name is never taken as checked: it throws every time.
      for (const name of ["bad name", ":method"]) expect(() => lazy.get(name)).toThrow(TypeError);
    }
  });

  it("checks a name before lowercasing it: a non-ASCII letter that lowercases to ASCII is invalid, as in Headers", () => {
    const source = { ...raw(), "x-kelvin": "k" };
    const name = "x-\u212Aelvin"; // KELVIN SIGN, whose lowercase is "k"
    expect(name.toLowerCase()).toBe("x-kelvin");
    expect(() => webHeaders(source).get(name)).toThrow(TypeError);
    expect(() => http2RequestHeaders(source).get(name)).toThrow(TypeError);
  });

  it("stays right when more names are asked than it keeps checked", () => {
    const source = { ...raw(), "x-last": "here" };
    const lazy = http2RequestHeaders(source);
    for (let i = 0; i < 1000; i++) expect(lazy.get(`X-Name-${i}`)).toBeNull();
    expect(lazy.get("X-Last")).toBe("here");
    expect(lazy.get("Content-Type")).toBe("application/grpc");
  });

  it("reads an HTTP/1.1 request's header object (no pseudo-headers) as headersOf's Headers", () => {
    const http1 = { host: "localhost:8080", "content-type": "application/json", cookie: "a=1; b=2", traceparent: "00-ab-cd-01", "set-cookie": ["a=1", "b=2"] };
    const lazy = http2RequestHeaders(http1);
    const real = webHeaders(http1);
    for (const name of ["host", "Content-Type", "cookie", "traceparent", "set-cookie", "authorization"]) expect(lazy.get(name)).toBe(real.get(name));
    expect([...lazy]).toEqual([...real]);
  });

  it("copies on the first change and then behaves as a plain Headers, leaving the HTTP/2 object alone", () => {
    const source = raw();
    const lazy = http2RequestHeaders(source);
    lazy.set("authorization", "Bearer other");
    lazy.append("x-added", "1");
    lazy.delete("x-padded");
    expect(lazy.get("authorization")).toBe("Bearer other");
    expect(lazy.get("x-added")).toBe("1");
    expect(lazy.has("x-padded")).toBe(false);
    expect(lazy.get("content-type")).toBe("application/grpc");
    expect(lazy.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect(source.authorization).toBe("Bearer abc");
    const seen: string[] = [];
    lazy.forEach((_v, k) => seen.push(k));
    expect(seen).toEqual(["authorization", "content-type", "set-cookie", "set-cookie", "x-added"]);
  });
});
