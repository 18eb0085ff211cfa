// Microbenchmark: the EventService's GetEvent response frame, encoded as grpc-unary.ts did
// (toBinary + encodeEnvelope) and as it does now (encodeBinaryEnveloped).
//   node --expose-gc --import tsx bench/encoder.ts [ops per batch, default 200000] [batches, default 5]
// Alternates the two sides batch by batch; prints ns/op per batch, and JS heap bytes per op
// (measured on a short run between forced GCs; needs --expose-gc). GC counts: add --trace-gc and
// count the "Scavenge"/"Mark-Compact" lines between the "batch ..." lines this prints.
// The harness: bench/encoder-ab.ts.
import { toBinary } from "@bufbuild/protobuf";
import { encodeEnvelope } from "../services/runtime/grpc-wire.js";
import { encodeBinaryEnveloped } from "../services/runtime/codec/binary-encoder.js";
import { compareEncoders } from "./encoder-ab.js";

compareEncoders("frame", [
  ["toBinary+encodeEnvelope", (s, m) => encodeEnvelope(toBinary(s, m))],
  ["encodeBinaryEnveloped", (s, m) => encodeBinaryEnveloped(s, m)],
]);
