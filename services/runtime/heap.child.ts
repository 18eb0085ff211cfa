// heap.test.ts's child: churns objects that live long enough to reach V8's
// old space, then die, and prints the old space's peak use (MiB). With
// "bounded" it first calls boundHeapGrowth(), as every service does at start.
import { getHeapSpaceStatistics } from "node:v8";
import { boundHeapGrowth } from "./heap.js";

if (process.argv[2] === "bounded") boundHeapGrowth();
const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!.space_used_size;
const ring: unknown[] = new Array(300_000).fill(null);
let peak = 0;
for (let n = 0; n < 5_000_000; n++) {
  ring[n % ring.length] = { n, list: [n] }; // survives scavenges (promoted), dies 300,000 allocations later
  if (n % 50_000 === 0) peak = Math.max(peak, oldSpaceUsed());
}
console.log(`peak ${(peak / 2 ** 20).toFixed(1)}`);
