// The MongoDB client's guard against a wedged server monitor (see reconnectWhenWedged).
// The hang itself is a race in the driver that the fault suite's db-outage
// scenario provokes (test/faults); here the guard's mechanism is checked
// against a real server: a heartbeat that never ends makes it reconnect,
// and the client works afterwards; the owner's close() ends the watch.
import { MongoClient } from "mongodb";
import { describe, expect, it } from "vitest";
import { mongodbUrl } from "../../test/support/backing.js";
import { eventually, sleep } from "../../test/support/eventually.js";
import { reconnectWhenWedged } from "./mongo.js";

describe("reconnectWhenWedged", () => {
  it("replaces the connection when a heartbeat never ends, and stops with the owner's close()", async () => {
    const client = new MongoClient(mongodbUrl(), { serverSelectionTimeoutMS: 2_000, serverMonitoringMode: "poll" });
    const reconnects: Array<Error | undefined> = [];
    reconnectWhenWedged(client, { stuckAfterMs: 300, checkEveryMs: 50, onReconnect: (err) => reconnects.push(err) });
    await client.connect();
    await client.db("admin").command({ ping: 1 });

    // A heartbeat that started and never ended: what the driver's hang looks like from outside.
    client.emit("serverHeartbeatStarted", { connectionId: "127.0.0.1:1", awaited: false, name: "serverHeartbeatStarted" } as never);
    await eventually(() => expect(reconnects.length).toBeGreaterThanOrEqual(1), 5_000);
    expect(reconnects[0]).toBeUndefined(); // reconnected without error
    await expect(client.db("admin").command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });

    await client.close();
    const after = reconnects.length;
    client.emit("serverHeartbeatStarted", { connectionId: "127.0.0.1:1", awaited: false, name: "serverHeartbeatStarted" } as never);
    await sleep(600);
    expect(reconnects.length).toBe(after); // closed by its owner: no reconnect
  });

  it("keeps trying while the database is unreachable", async () => {
    const client = new MongoClient("mongodb://127.0.0.1:1/", { serverSelectionTimeoutMS: 200, connectTimeoutMS: 200, serverMonitoringMode: "poll" });
    const reconnects: Array<Error | undefined> = [];
    const stop = reconnectWhenWedged(client, { stuckAfterMs: 100, checkEveryMs: 50, onReconnect: (err) => reconnects.push(err) });
    try {
      client.emit("serverHeartbeatStarted", { connectionId: "127.0.0.1:1", awaited: false, name: "serverHeartbeatStarted" } as never);
      await eventually(() => expect(reconnects.filter(Boolean).length).toBeGreaterThanOrEqual(2), 5_000);
    } finally {
      stop();
      await client.close();
    }
  });
});
