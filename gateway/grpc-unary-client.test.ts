// isPlainOk: the shortcut for the usual OK status agrees with findTrailerError.
import { describe, expect, it } from "vitest";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { webHeaders } from "../services/runtime/grpc-wire.js";
import { isPlainOk } from "./grpc-unary-client.js";

// google.rpc.Status { code, message: "m" } in protobuf binary, base64 as the header carries it.
const details = (code: number) => Buffer.from([...(code ? [0x08, code] : []), 0x12, 0x01, 0x6d]).toString("base64");

describe("isPlainOk", () => {
  it("is true only where findTrailerError finds no error and a grpc-status is present", () => {
    const cases = [
      { "grpc-status": "0" },
      { ":status": "200", "content-type": "application/grpc", "grpc-status": "0" },
      { "grpc-status": "0", "grpc-message": "" },
      { "grpc-status": "5", "grpc-message": "not%20found" },
      { "grpc-status": " 0" },
      { "grpc-status": "0", "grpc-status-details-bin": details(5) },
      { "grpc-status": "0", "grpc-status-details-bin": details(0) },
      { "grpc-status": "00" },
      {},
    ];
    for (const fields of cases) {
      const headers = webHeaders(fields);
      const ok = findTrailerError(headers) === undefined && headers.has("grpc-status");
      // A shortcut may miss an OK (the full check then runs), never call an error OK.
      if (isPlainOk(fields)) expect(ok, JSON.stringify(fields)).toBe(true);
    }
    expect(isPlainOk({ "grpc-status": "0" })).toBe(true);
    expect(isPlainOk({ "grpc-status": "0", "grpc-status-details-bin": details(5) })).toBe(false);
  });
});
