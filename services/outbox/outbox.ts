import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { OutgoingMessage } from "../messaging/port.js";
import { traceHeadersOf, type TraceHeaders } from "../runtime/tracing.js";

/**
 * Transactional outbox without transactions. FerretDB (and MongoDB without
 * a replica set) only guarantees single-document atomicity, so a domain
 * event is stored *inside the document whose change it announces*, in its
 * `outbox` array, by the same update. The relay (relay.ts) publishes pending
 * entries with publisher confirms and only then removes them, so an event
 * survives a broker outage or a crash between the write and the publish.
 * A crash after publishing but before removal publishes it again:
 * consumers drop duplicates by message id.
 */
export interface OutboxEntry {
  /** The domain event's id; becomes the AMQP message id. */
  id: string;
  routingKey: string;
  /** Full protobuf message name. */
  type: string;
  body: Uint8Array;
  occurredAt: Date;
  /** W3C trace context of the change, so the message continues its trace. */
  traceparent?: string;
  tracestate?: string;
}

/** Where pending entries live: one per collection (or in-memory map) that embeds outboxes. */
export interface OutboxSource {
  /** For logs and metric labels, e.g. "bookings". */
  name: string;
  /** Up to `limit` pending entries, oldest documents first. */
  pending(limit: number): Promise<PendingEntry[]>;
  /** Removes a published entry from its document (idempotent). */
  markSent(docId: string, entryId: string): Promise<void>;
  /** Number of pending entries and the time of the oldest. */
  stats(): Promise<{ count: number; oldest?: Date }>;
}

export interface PendingEntry {
  docId: string;
  entry: OutboxEntry;
}

/**
 * An outbox entry for a domain event message (id and occurred_at are read
 * from it). It carries the trace of the work that made the change (the
 * active span: the RPC or the consumed message), unless `trace` is given.
 */
export function outboxEntry<Desc extends DescMessage>(
  schema: Desc,
  event: MessageShape<Desc> & { id: string; occurredAt?: { seconds: bigint; nanos: number } },
  routingKey: string,
  trace: TraceHeaders = traceHeadersOf(),
): OutboxEntry {
  const at = event.occurredAt ? new Date(Number(event.occurredAt.seconds) * 1000 + Math.floor(event.occurredAt.nanos / 1e6)) : new Date();
  return {
    id: event.id,
    routingKey,
    type: schema.typeName,
    body: toBinary(schema, event),
    occurredAt: at,
    ...traceFields(trace),
  };
}

/** The message the relay publishes for an entry. */
export function toOutgoing(entry: OutboxEntry): OutgoingMessage {
  return {
    routingKey: entry.routingKey,
    messageId: entry.id,
    type: entry.type,
    body: entry.body,
    timestamp: entry.occurredAt,
    ...traceFields(entry),
  };
}

/** traceparent and tracestate when set, nothing otherwise (never undefined fields: stored documents would get nulls). */
export function traceFields(from: TraceHeaders): TraceHeaders {
  if (!from.traceparent) return {};
  return from.tracestate ? { traceparent: from.traceparent, tracestate: from.tracestate } : { traceparent: from.traceparent };
}
