import type http2 from "node:http2";
import type { UnaryResponse } from "@connectrpc/connect";

/** gRPC's length prefix: one flags byte, then the message length as a big-endian uint32. */
export const ENVELOPE_HEADER_BYTES = 5;
/** The flags bit that marks a compressed message. */
export const COMPRESSED_FLAG = 0b01;

/** One gRPC (or gRPC-Web) message, length-prefixed, in a single buffer (one DATA frame). */
export function encodeEnvelope(payload: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + payload.length);
  frame[0] = flags;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, ENVELOPE_HEADER_BYTES);
  return frame;
}

/**
 * Marks a response whose header and trailer getters make their Headers only
 * when read (the fast paths' responses); answers whether one was read.
 */
export const LAZY_HEADERS = Symbol("lazy response headers");
export type LazyHeaders = { [LAZY_HEADERS](key: "header" | "trailer"): boolean };

/**
 * The response's header or trailer fields when there are any. A response
 * still holding its lazy getter, never read, had none set: reading it would
 * only allocate an empty Headers. (Spreading a response turns the getters
 * into values, which are then read.)
 */
export function responseHeaders(res: UnaryResponse, key: "header" | "trailer"): Headers | undefined {
  if (LAZY_HEADERS in res && Object.getOwnPropertyDescriptor(res, key)?.get !== undefined && !(res as UnaryResponse & LazyHeaders)[LAZY_HEADERS](key)) return undefined;
  const fields = res[key];
  let empty = true;
  fields.forEach(() => (empty = false));
  return empty ? undefined : fields;
}

/** Node response headers from fetch Headers (several Set-Cookie stay apart). */
export function copyHeadersInto(target: http2.OutgoingHttpHeaders, from: Headers | undefined): void {
  if (!from) return;
  from.forEach((value, key) => {
    target[key] = key === "set-cookie" ? from.getSetCookie() : value;
  });
}

/** HTTP/2 headers as fetch Headers, as connect-node presents them: pseudo-headers left out. */
export function webHeaders(raw: http2.IncomingHttpHeaders): Headers {
  const header = new Headers();
  for (const key in raw) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = raw[key];
    if (typeof value === "string") header.append(key, value);
    else if (Array.isArray(value)) for (const v of value) header.append(key, v);
  }
  return header;
}

/** Headers' methods, declared as methods so that a subclass can override them (undici types them as properties). */
interface HeaderMethods {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  delete(name: string): void;
  getSetCookie(): string[];
  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}
const FetchHeaders = Headers as unknown as new () => HeaderMethods;

/**
 * A request's headers as fetch Headers, read straight from Node's header
 * object (HTTP/2's, or HTTP/1.1's, which has no pseudo-headers): building
 * a real Headers validates and copies every header (a cost on every call),
 * while a handler or interceptor usually reads two or three of them. The
 * first change or iteration copies them into the Headers this object is
 * (so it stays a real Headers, `instanceof` included), and from then on it
 * behaves exactly as one.
 */
export function http2RequestHeaders(raw: http2.IncomingHttpHeaders): Headers {
  return new Http2RequestHeaders(raw) as unknown as Headers;
}

class Http2RequestHeaders extends FetchHeaders {
  #raw: http2.IncomingHttpHeaders | undefined;

  constructor(raw: http2.IncomingHttpHeaders) {
    super();
    this.#raw = raw;
  }

  override get(name: string): string | null {
    const raw = this.#raw;
    if (raw === undefined) return super.get(name);
    const key = headerKey(name);
    // An invalid name (pseudo-headers included): Headers throws for it.
    if (key === undefined) return super.get(name);
    const value = raw[key];
    if (value === undefined) return null;
    return trimHttpWhitespace(typeof value === "string" ? value : value.join(", "));
  }

  override has(name: string): boolean {
    return this.#raw === undefined ? super.has(name) : this.get(name) !== null;
  }

  override set(name: string, value: string): void {
    this.#copy();
    super.set(name, value);
  }

  override append(name: string, value: string): void {
    this.#copy();
    super.append(name, value);
  }

  override delete(name: string): void {
    this.#copy();
    super.delete(name);
  }

  override getSetCookie(): string[] {
    this.#copy();
    return super.getSetCookie();
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#copy();
    super.forEach(callback, thisArg);
  }

  override keys(): IterableIterator<string> {
    this.#copy();
    return super.keys();
  }

  override values(): IterableIterator<string> {
    this.#copy();
    return super.values();
  }

  override entries(): IterableIterator<[string, string]> {
    this.#copy();
    return super.entries();
  }

  override [Symbol.iterator](): IterableIterator<[string, string]> {
    this.#copy();
    return super[Symbol.iterator]();
  }

  /** From here on the headers live in the Headers this object is. */
  #copy(): void {
    const raw = this.#raw;
    if (raw === undefined) return;
    this.#raw = undefined;
    for (const key in raw) {
      if (key.charCodeAt(0) === 58 /* ":" */) continue;
      const value = raw[key];
      if (typeof value === "string") super.append(key, value);
      else if (Array.isArray(value)) for (const v of value) super.append(key, v);
    }
  }
}

/** A valid header name (RFC 9110 token), as Headers checks it. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Valid names as asked, each to its lowercase form: the interceptors ask
 * the same few names on every call, and checking and lowercasing them was a
 * visible share of the fast path. Bounded, in case names come from data.
 */
const checkedNames = new Map<string, string>();
const MAX_CHECKED_NAMES = 256;

/** The key of a valid header name in Node's header object; undefined for an invalid name. */
function headerKey(name: string): string | undefined {
  let key = checkedNames.get(name);
  if (key === undefined) {
    // Checked before lowercasing: some non-ASCII letters lowercase to ASCII ones.
    if (!HTTP_TOKEN.test(name)) return undefined;
    key = name.toLowerCase();
    if (checkedNames.size < MAX_CHECKED_NAMES) checkedNames.set(name, key);
  }
  return key;
}

/** What Headers does to a value: leading and trailing HTTP whitespace go. */
function trimHttpWhitespace(value: string): string {
  const n = value.length;
  if (n === 0 || (!isHttpWhitespace(value.charCodeAt(0)) && !isHttpWhitespace(value.charCodeAt(n - 1)))) return value;
  return value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
}

function isHttpWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
