import { MongoClient, MongoServerError } from "mongodb";

/**
 * A MongoDB client that connects lazily: creating it never fails, so a
 * service starts even while the database is down, reports NOT_SERVING
 * through its health check, and recovers by itself once the database is
 * back. Short timeouts turn an outage into a quick Unavailable instead of
 * hanging calls.
 */
export function createMongoClient(url: string, appName: string): MongoClient {
  return new MongoClient(url, {
    appName,
    serverSelectionTimeoutMS: 2_000,
    connectTimeoutMS: 2_000,
    maxPoolSize: 20,
  });
}

/** A unique-index violation ("duplicate key", 11000). */
export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}
