// A queue of the suite's own on the exchange, bound to the routing keys whose
// messages the invariants must count but no database records (the
// ReservationUndone events recovery publishes). It talks to the broker
// directly, not through the proxy, and is read only after recovery; the
// queue is durable so that a broker restart keeps what it holds.
import { connect } from "amqplib";
import { EXCHANGE } from "../../services/messaging/port.js";

export class MessageTap {
  /** Distinct message ids taken from the queue so far (publishing is at least once). */
  readonly ids = new Set<string>();
  private readonly queue = `faults.tap.${Math.random().toString(16).slice(2, 10)}`;

  constructor(
    private readonly amqpUrl: string,
    private readonly routingKeys: string[],
  ) {}

  /** Declares and binds the queue (the exchange must exist: the services declare it on connect). */
  async start(): Promise<void> {
    await this.withChannel(async (ch) => {
      await ch.assertQueue(this.queue, { durable: true, arguments: { "x-queue-type": "classic" } });
      for (const key of this.routingKeys) await ch.bindQueue(this.queue, EXCHANGE, key);
    });
  }

  /** Takes every message waiting and returns how many distinct ids were seen in all. */
  async drain(): Promise<number> {
    await this.withChannel(async (ch) => {
      for (;;) {
        const msg = await ch.get(this.queue, { noAck: true });
        if (!msg) break;
        if (msg.properties.messageId) this.ids.add(String(msg.properties.messageId));
      }
    });
    return this.ids.size;
  }

  async delete(): Promise<void> {
    await this.withChannel((ch) => ch.deleteQueue(this.queue).then(() => undefined)).catch(() => {});
  }

  private async withChannel<T>(work: (ch: Awaited<ReturnType<Awaited<ReturnType<typeof connect>>["createChannel"]>>) => Promise<T>): Promise<T> {
    const conn = await connect(this.amqpUrl);
    conn.on("error", () => {}); // a broker restart while connected: the call below fails instead
    try {
      return await work(await conn.createChannel());
    } finally {
      await conn.close().catch(() => {});
    }
  }
}
