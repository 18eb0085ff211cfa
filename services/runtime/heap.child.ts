// heap.test.ts's child: churns objects that live long enough to reach V8's
// old space, then die, and prints the old space's live size after a full GC
// and its peak use afterwards (MiB). With "bounded" it first calls
// boundHeapGrowth(), as every service does at start.
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { boundHeapGrowth } from "./heap.js";

if (process.argv[2] === "bounded") boundHeapGrowth();
const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!.space_used_size;
const ring: unknown[] = new Array(300_000).fill(null);
for (let n = 0; n < ring.length; n++) ring[n] = { n, list: [n] };
// V8 sets the first old-space limit from its start-up heuristics (which vary
// between versions and runs); from the first full GC on, the growth factor
// sets it. So one full GC first, and the peak is the factor's doing alone.
setFlagsFromString("--expose-gc");
(runInNewContext("gc") as () => void)();
const live = oldSpaceUsed();
let peak = 0;
for (let n = 0; n < 5_000_000; n++) {
  ring[n % ring.length] = { n, list: [n] }; // survives scavenges (promoted), dies 300,000 allocations later
  if (n % 50_000 === 0) peak = Math.max(peak, oldSpaceUsed());
}
console.log(`live ${(live / 2 ** 20).toFixed(1)} peak ${(peak / 2 ** 20).toFixed(1)}`);
