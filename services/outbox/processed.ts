import type { IncomingMessage } from "../messaging/port.js";

/** Which messages each consumer has already handled (by message id). */
export interface ProcessedMessages {
  has(consumer: string, messageId: string): Promise<boolean>;
  /** Idempotent: recording an id twice is fine. */
  record(consumer: string, messageId: string): Promise<void>;
}

/** A `processed_messages` document: one per consumer and message, unique by its _id. */
export interface ProcessedDoc {
  _id: string;
  at: Date;
}

/** The record's id: one per consumer and message. */
export const processedKey = (consumer: string, messageId: string) => `${consumer}:${messageId}`;

export class MemoryProcessedMessages implements ProcessedMessages {
  private readonly ids = new Set<string>();

  async has(consumer: string, messageId: string): Promise<boolean> {
    return this.ids.has(processedKey(consumer, messageId));
  }

  async record(consumer: string, messageId: string): Promise<void> {
    this.ids.add(processedKey(consumer, messageId));
  }
}

/**
 * Wraps a message handler so that a message already handled by `consumer`
 * is acknowledged without running it again (the relay and the broker both
 * deliver at least once). The id is recorded only after the handler
 * succeeded, so a failed handler is retried on redelivery.
 *
 * This narrows duplicates, it does not remove them: a crash (or a failing
 * record) after the handler's effect but before the record replays the
 * effect on redelivery, and two deliveries of one message racing each other
 * both pass has(). Handlers must therefore be idempotent themselves (e.g.
 * keyed writes, inserts by the event's id); the record makes the common
 * duplicate cheap and safe.
 */
export function idempotent(
  consumer: string,
  store: ProcessedMessages,
  handle: (msg: IncomingMessage) => Promise<void>,
): (msg: IncomingMessage) => Promise<void> {
  return async (msg) => {
    if (await store.has(consumer, msg.messageId)) return;
    await handle(msg);
    await store.record(consumer, msg.messageId);
  };
}
