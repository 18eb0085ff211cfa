// A live-notification subscriber through the edge, kept open during every
// scenario: it records each stream (when it was registered, how it ended)
// and every booking change it was told, and subscribes again by itself
// when a stream ends, as a browser page does.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BookingState } from "../../gen/myevents/v1/booking_pb.js";
import { NotificationService } from "../../gen/myevents/v1/notification_service_pb.js";
import { sleep } from "../support/eventually.js";

export interface StreamRecord {
  /** When the stream's first heartbeat arrived: from then on every change reaches it. */
  registeredAt?: number;
  endedAt?: number;
  /** How it ended: a code name ("Unavailable", ...), or "OK" for an end without error. */
  endCode?: string;
  endMessage?: string;
}

export interface ChangeSeen {
  messageId: string;
  bookingId: string;
  state: "CONFIRMED" | "CANCELLED";
  at: number;
  /** Index of the stream (in `streams`) it arrived on. */
  stream: number;
}

export class NotificationSubscriber {
  readonly streams: StreamRecord[] = [];
  readonly changes: ChangeSeen[] = [];
  /** Subscribe calls that failed before a stream was registered, by code. */
  readonly refused = new Map<string, number>();
  private readonly client: Client<typeof NotificationService>;
  private abort = new AbortController();
  private loop?: Promise<void>;

  constructor(
    edgeUrl: string,
    private readonly eventIds: string[],
  ) {
    this.client = createClient(NotificationService, createGrpcTransport({ baseUrl: edgeUrl }));
  }

  /** Subscribes and keeps subscribing again until stop(); resolves once the first stream is registered. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.loop = this.run();
    const deadline = Date.now() + timeoutMs;
    while (this.current()?.registeredAt === undefined) {
      if (Date.now() > deadline) throw new Error(`no notification stream registered within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** The stream open (or being opened) right now. */
  current(): StreamRecord | undefined {
    return this.streams.at(-1);
  }

  /** Changes seen for a booking, in arrival order. */
  seenFor(bookingId: string): ChangeSeen[] {
    return this.changes.filter((c) => c.bookingId === bookingId);
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.abort.signal.aborted; ) {
      const index = this.streams.push({}) - 1;
      const record = this.streams[index]!;
      try {
        for await (const n of this.client.subscribe({ eventIds: this.eventIds }, { signal: this.abort.signal })) {
          if (n.change.case === "heartbeat") {
            if (record.registeredAt === undefined) record.registeredAt = Date.now();
            attempt = 0;
          } else if (n.change.case === "bookingChange") {
            const c = n.change.value;
            const state = c.state === BookingState.CANCELLED ? "CANCELLED" : "CONFIRMED";
            this.changes.push({ messageId: n.messageId, bookingId: c.bookingId, state, at: Date.now(), stream: index });
          }
        }
        record.endCode = "OK";
      } catch (err) {
        if (this.abort.signal.aborted) {
          record.endCode = "stopped";
        } else {
          const e = ConnectError.from(err);
          record.endCode = Code[e.code];
          record.endMessage = e.rawMessage;
          if (record.registeredAt === undefined) this.refused.set(record.endCode, (this.refused.get(record.endCode) ?? 0) + 1);
        }
      }
      record.endedAt = Date.now();
      if (this.abort.signal.aborted) return;
      // Subscribe again, backing off while refused (the service or the edge may still be down).
      await sleep(Math.min(100 * 2 ** attempt++, 2_000));
    }
  }
}
