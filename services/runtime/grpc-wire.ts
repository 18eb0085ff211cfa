import type http2 from "node:http2";

/** gRPC's length prefix: one flags byte, then the message length as a big-endian uint32. */
export const ENVELOPE_HEADER_BYTES = 5;
/** The flags bit that marks a compressed message. */
export const COMPRESSED_FLAG = 0b01;

/** One uncompressed gRPC message, length-prefixed, in a single buffer (one DATA frame). */
export function encodeEnvelope(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + payload.length);
  frame[0] = 0;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, ENVELOPE_HEADER_BYTES);
  return frame;
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
