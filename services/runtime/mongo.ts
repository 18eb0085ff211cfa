import { MongoClient, MongoServerError } from "mongodb";

const CONNECT_TIMEOUT_MS = 2_000;
const HEARTBEAT_FREQUENCY_MS = 10_000;
const SOCKET_TIMEOUT_MS = 15_000;

/**
 * A MongoDB client that connects lazily: creating it never fails, so a
 * service starts even while the database is down, reports NOT_SERVING
 * through its health check, and recovers by itself once the database is
 * back. Short timeouts turn an outage into a quick Unavailable instead of
 * hanging calls. A wedged server monitor is replaced (see reconnectWhenWedged).
 */
export function createMongoClient(url: string, appName: string): MongoClient {
  const client = new MongoClient(url, {
    appName,
    serverSelectionTimeoutMS: 2_000,
    connectTimeoutMS: CONNECT_TIMEOUT_MS,
    heartbeatFrequencyMS: HEARTBEAT_FREQUENCY_MS,
    // No database call waits forever: the fault suite's stalled-consumer scenario left
    // FerretDB with 20 requests it never answered, which held the whole pool (20
    // connections, hundreds of calls queued behind them) long after the stall ended.
    // A timed-out connection is closed and replaced; the call fails as Unavailable.
    socketTimeoutMS: SOCKET_TIMEOUT_MS,
    maxPoolSize: 20,
  });
  reconnectWhenWedged(client);
  return client;
}

/**
 * Reconnects the client when its server monitor hangs.
 *
 * Why: when every connection is reset at once (a database restart, a
 * network cut), the driver (mongodb 6.22, also 7.9) can write the monitor's
 * heartbeat to a socket destroyed under it and then wait for its 'drain'
 * event forever. The heartbeat never ends, the server stays Unknown, and
 * every operation fails server selection until the process restarts. The
 * fault suite (test/faults, db-outage) found it: the BookingService never
 * came back after a 10 s outage. A heartbeat that has neither succeeded
 * nor failed well after its own timeouts is that hang; closing and
 * connecting the client again starts a new monitor. Returns a stop function.
 */
export function reconnectWhenWedged(
  client: MongoClient,
  opts: { stuckAfterMs?: number; checkEveryMs?: number; onReconnect?: (error?: Error) => void } = {},
): () => void {
  // Started heartbeats normally end within connectTimeoutMS (polling) or
  // heartbeatFrequencyMS + connectTimeoutMS (streaming, an awaited hello).
  const stuckAfterMs = opts.stuckAfterMs ?? HEARTBEAT_FREQUENCY_MS + CONNECT_TIMEOUT_MS + 5_000;
  let pendingSince: number | undefined;
  let reconnecting = false;
  let closedByUs = false;
  let connectFailed = false;
  client.on("serverHeartbeatStarted", () => (pendingSince ??= Date.now()));
  client.on("serverHeartbeatSucceeded", () => (pendingSince = undefined));
  client.on("serverHeartbeatFailed", () => (pendingSince = undefined));
  const reconnect = async () => {
    reconnecting = true;
    pendingSince = undefined;
    try {
      closedByUs = true;
      await client.close();
      closedByUs = false;
      await client.connect();
      connectFailed = false;
      opts.onReconnect?.();
    } catch (err) {
      connectFailed = true; // the database is down too: try again at the next check
      opts.onReconnect?.(err as Error);
    } finally {
      closedByUs = false;
      reconnecting = false;
    }
  };
  const timer = setInterval(() => {
    if (reconnecting) return;
    if (connectFailed || (pendingSince !== undefined && Date.now() - pendingSince > stuckAfterMs)) void reconnect();
  }, opts.checkEveryMs ?? 2_000);
  timer.unref();
  const stop = () => clearInterval(timer);
  // The owner's close() ends the watch; ours (while reconnecting) does not.
  client.on("topologyClosed", () => {
    if (!closedByUs && !reconnecting) stop();
  });
  return stop;
}

/** A unique-index violation ("duplicate key", 11000). */
export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}
