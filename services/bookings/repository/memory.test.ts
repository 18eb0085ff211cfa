import { MemoryBookingRepository } from "./memory.js";
import { describeBookingRepositoryContract } from "./repository.contract.js";

describeBookingRepositoryContract("MemoryBookingRepository", async () => {
  const repo = new MemoryBookingRepository();
  return { repo, cleanup: () => repo.close() };
});
