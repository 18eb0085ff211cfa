import type { Db } from "mongodb";
import { MemoryProcessedMessages, type ProcessedMessages } from "../outbox/processed.js";
import { redact } from "./config.js";
import type { Dependency } from "./health.js";
import type { Logger } from "./logger.js";

interface Store {
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenedStore<R> {
  repo: R;
  /** Message ids the service's consumer has handled, kept beside its data. */
  processed: ProcessedMessages;
  /** The database for health and readiness (none for the in-memory store). */
  dependencies: Dependency[];
}

/**
 * A service's store: MongoDB when `mongodbUrl` is set (indexes created now;
 * if the database is down the service still starts, NOT_SERVING, and
 * health reports it), else the embedded in-memory store.
 *
 * The MongoDB adapters are imported only when used (`mongo` imports its
 * repository module): the driver costs a process on the embedded defaults
 * ~20 MiB of RSS and ~7 MiB of live heap, which V8 then scans at every full
 * GC (bench/README.md, finding 12).
 */
export async function openStore<R extends Store>(opts: {
  mongodbUrl?: string;
  database: string;
  logger: Logger;
  mongo(url: string, database: string): Promise<R & { ensureIndexes(): Promise<void>; database: Db }>;
  memory(): R;
}): Promise<OpenedStore<R>> {
  const { mongodbUrl, database, logger } = opts;
  if (!mongodbUrl) {
    logger.info("store", { kind: "memory" });
    return { repo: opts.memory(), processed: new MemoryProcessedMessages(), dependencies: [] };
  }
  const repo = await opts.mongo(mongodbUrl, database);
  const { MongoProcessedMessages } = await import("../outbox/processed-mongo.js");
  await repo.ensureIndexes().catch((err: Error) => logger.warn("could not create indexes yet", { error: err.message, url: redact(mongodbUrl) }));
  logger.info("store", { kind: "mongodb", database });
  return {
    repo,
    processed: new MongoProcessedMessages(repo.database),
    dependencies: [{ name: "mongodb", check: () => repo.ping() }],
  };
}
