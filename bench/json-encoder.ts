// Microbenchmark: the EventService's GetEvent response body as the gateway writes it for a
// Connect JSON caller, before (Buffer.from(toJsonString)) and now (encodeJsonBytes).
//   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 --import tsx bench/json-encoder.ts [ops per batch, default 200000] [batches, default 5]
// Alternates the two sides batch by batch; prints ns/op per batch, and JS heap bytes per op
// (measured on a short run between forced GCs; needs --expose-gc, and a young generation large
// enough from the start that no scavenge runs during it: the semi-space flags).
// The harness: bench/encoder-ab.ts.
import { toJsonString } from "@bufbuild/protobuf";
import { encodeJsonBytes } from "../services/runtime/codec/json-encoder.js";
import { compareEncoders } from "./encoder-ab.js";

compareEncoders("body", [
  ["toJsonString+Buffer.from", (s, m) => Buffer.from(toJsonString(s, m))],
  ["encodeJsonBytes", (s, m) => encodeJsonBytes(s, m)],
]);
