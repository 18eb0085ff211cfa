import { MemoryEventRepository } from "./memory.js";
import { describeEventRepositoryContract } from "./repository.contract.js";

describeEventRepositoryContract("MemoryEventRepository", async () => {
  const repo = new MemoryEventRepository();
  return { repo, cleanup: () => repo.close() };
});
