// Microbenchmark: the EventService's GetEvent response body as the gateway writes it for a
// Connect JSON caller, before (Buffer.from(toJsonString)) and now (encodeJsonBytes).
//   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 --import tsx bench/json-encoder.ts [ops per batch, default 200000] [batches, default 5]
// Alternates the two sides batch by batch; prints ns/op per batch, and JS heap bytes per op
// (measured on a short run between forced GCs; needs --expose-gc, and a young generation large
// enough from the start that no scavenge runs during it: the semi-space flags).
import { create, toJsonString, type DescMessage, type Message } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GetEventResponseSchema } from "../gen/myevents/v1/event_service_pb.js";
import { EventSchema, EventState } from "../gen/myevents/v1/event_pb.js";
import { encodeJsonBytes } from "../services/runtime/codec/json-encoder.js";
import { newId } from "../services/runtime/ids.js";

const OPS = Number(process.argv[2] ?? 200_000);
const BATCHES = Number(process.argv[3] ?? 5);

const start = Date.parse("2026-06-01T19:30:00.123Z");
const response = create(GetEventResponseSchema, {
  event: create(EventSchema, {
    id: newId(),
    name: "Spring Concert at the Old Hall",
    locationId: newId(),
    hall: "Main",
    startTime: timestampFromMs(start),
    endTime: timestampFromMs(start + 2.5 * 3600_000),
    capacity: 500,
    seatsAvailable: 321,
    state: EventState.SCHEDULED,
  }),
});

type Encode = (schema: DescMessage, message: Message) => Uint8Array;
const sides: [string, Encode][] = [
  ["toJsonString+Buffer.from", (s, m) => Buffer.from(toJsonString(s, m))],
  ["encodeJsonBytes", (s, m) => encodeJsonBytes(s, m)],
];

const a = sides[0]![1](GetEventResponseSchema, response);
const b = sides[1]![1](GetEventResponseSchema, response);
if (Buffer.compare(a, b) !== 0) throw new Error("the two sides disagree");
console.log(`body: ${a.length} bytes; ${OPS} ops x ${BATCHES} batches per side, alternating`);

let sink = 0;
function run(encode: Encode, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += encode(GetEventResponseSchema, response).length;
  return Number(process.hrtime.bigint() - t0) / n;
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapPerOp(encode: Encode): string {
  if (!gc) return "n/a (run with --expose-gc)";
  const n = 2000; // small enough to finish without a scavenge
  gc();
  const m0 = process.memoryUsage();
  for (let i = 0; i < n; i++) sink += encode(GetEventResponseSchema, response).length;
  const m1 = process.memoryUsage();
  return `${Math.round((m1.heapUsed - m0.heapUsed) / n)} B heap, ${Math.round((m1.arrayBuffers - m0.arrayBuffers) / n)} B arrayBuffers`;
}

const results = new Map<string, number[]>(sides.map(([name]) => [name, []]));
for (const [, enc] of sides) run(enc, 20_000); // warm-up, both sides
for (let batch = 0; batch < BATCHES; batch++) {
  const order = batch % 2 === 0 ? sides : [...sides].reverse();
  for (const [name, enc] of order) {
    const ns = run(enc, OPS);
    results.get(name)!.push(ns);
    console.log(`batch ${batch + 1} ${name.padEnd(26)} ${ns.toFixed(0).padStart(5)} ns/op`);
  }
}

console.log("\nside                        median ns/op  min ns/op  allocation per op");
const medians: number[] = [];
for (const [name, enc] of sides) {
  const xs = results.get(name)!.slice().sort((x, y) => x - y);
  const med = xs[Math.floor(xs.length / 2)]!;
  medians.push(med);
  console.log(`${name.padEnd(28)}${med.toFixed(0).padStart(12)}${xs[0]!.toFixed(0).padStart(11)}  ${heapPerOp(enc)}`);
}
console.log(`speed-up: ${(medians[0]! / medians[1]!).toFixed(2)}x   (sink ${sink})`);
