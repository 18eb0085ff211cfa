// Shared by the encoder microbenchmarks (bench/encoder.ts, bench/json-encoder.ts): two ways of
// encoding the EventService's GetEvent response, timed in the same process, batch by batch.
//   argv: [ops per batch, default 200000] [batches, default 5]
// Alternates the two sides batch by batch (which goes first too); prints ns/op per batch, then the
// median and min per side and the JS heap bytes per op (measured on a short run between forced
// GCs; needs --expose-gc). Each batch is announced by a "batch N <side> start" line, so that the
// GC lines of --trace-gc can be counted per batch.
import { create, type DescMessage, type Message } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GetEventResponseSchema } from "../gen/myevents/v1/event_service_pb.js";
import { EventSchema, EventState } from "../gen/myevents/v1/event_pb.js";
import { newId } from "../services/runtime/ids.js";

export type Encode = (schema: DescMessage, message: Message) => Uint8Array;

/** `what` names the output in the first line ("frame", "body"); the first side is the baseline. */
export function compareEncoders(what: string, sides: [[string, Encode], [string, Encode]]): void {
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

  const a = sides[0][1](GetEventResponseSchema, response);
  const b = sides[1][1](GetEventResponseSchema, response);
  if (Buffer.compare(a, b) !== 0) throw new Error("the two sides disagree");
  console.log(`${what}: ${a.length} bytes; ${OPS} ops x ${BATCHES} batches per side, alternating`);

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

  const width = Math.max(...sides.map(([name]) => name.length)) + 2;
  const results = new Map<string, number[]>(sides.map(([name]) => [name, []]));
  for (const [, enc] of sides) run(enc, 20_000); // warm-up, both sides
  for (let batch = 0; batch < BATCHES; batch++) {
    const order = batch % 2 === 0 ? sides : [...sides].reverse();
    for (const [name, enc] of order) {
      console.log(`batch ${batch + 1} ${name} start`);
      const ns = run(enc, OPS);
      results.get(name)!.push(ns);
      console.log(`batch ${batch + 1} ${name.padEnd(width)} ${ns.toFixed(0).padStart(5)} ns/op`);
    }
  }

  console.log(`\n${"side".padEnd(width + 2)}median ns/op  min ns/op  allocation per op`);
  const medians: number[] = [];
  for (const [name, enc] of sides) {
    const xs = results.get(name)!.slice().sort((x, y) => x - y);
    const med = xs[Math.floor(xs.length / 2)]!;
    medians.push(med);
    console.log(`${name.padEnd(width + 2)}${med.toFixed(0).padStart(12)}${xs[0]!.toFixed(0).padStart(11)}  ${heapPerOp(enc)}`);
  }
  console.log(`speed-up: ${(medians[0]! / medians[1]!).toFixed(2)}x   (sink ${sink})`);
}
