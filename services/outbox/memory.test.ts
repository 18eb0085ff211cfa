import { MemoryOutbox } from "./memory.js";
import { describeOutboxSourceContract } from "./source.contract.js";

describeOutboxSourceContract("MemoryOutbox", async () => {
  const source = new MemoryOutbox("test");
  return {
    source,
    async write(docId, entries) {
      for (const e of entries) source.add(docId, e);
    },
    async cleanup() {},
  };
});
