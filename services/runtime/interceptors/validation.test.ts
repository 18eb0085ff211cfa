// The buf.validate rules' descriptor (validate.proto, ~50 kB) exists once:
// protovalidate's own copy, which the generated contracts import too
// (buf.gen.yaml rewrites their import), so a process decodes it once at start.
import { describe, expect, it } from "vitest";
import type { DescFile } from "@bufbuild/protobuf";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { file_myevents_v1_booking_service } from "../../../gen/myevents/v1/booking_service_pb.js";
import { file_myevents_v1_event_service } from "../../../gen/myevents/v1/event_service_pb.js";
import { file_myevents_v1_notification_service } from "../../../gen/myevents/v1/notification_service_pb.js";

/** `file` and every file it imports, transitively. */
function withImports(file: DescFile, into = new Set<DescFile>()): Set<DescFile> {
  if (into.has(file)) return into;
  into.add(file);
  for (const dependency of file.dependencies) withImports(dependency, into);
  return into;
}

describe("buf.validate descriptor", () => {
  it("is protovalidate's own copy wherever the contracts import it", () => {
    const contracts = new Set<DescFile>();
    for (const file of [file_myevents_v1_event_service, file_myevents_v1_booking_service, file_myevents_v1_notification_service]) withImports(file, contracts);
    const copies = [...contracts].filter((file) => file.name === "buf/validate/validate");
    // Compared as booleans: a failing toBe would print two descriptors (huge, cyclic).
    expect(copies.map((file) => file === file_buf_validate_validate)).toEqual([true]);
  });
});
