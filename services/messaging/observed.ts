import { SpanKind, SpanStatusCode, context, trace, type Span } from "@opentelemetry/api";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../runtime/logger.js";
import { contextFromTraceHeaders, traceHeadersOf, tracer } from "../runtime/tracing.js";
import { traceFields } from "../outbox/outbox.js";
import { EXCHANGE, type Consumer, type ConsumerOptions, type IncomingMessage, type MessageBus, type OutgoingMessage } from "./port.js";
import { consumerSettings } from "./settings.js";

/**
 * A bus with the traces and metrics of every message, the same for both
 * adapters (and per service even when services share the in-process bus):
 *
 * - publishing: a PRODUCER span per message, a child of the trace stored
 *   with its outbox entry (the RPC or message that made the change); the
 *   message's `traceparent` names this span, so consumers continue it;
 * - consuming: a CONSUMER span per delivery, a child of the message's
 *   `traceparent`, active while the handler runs (its log lines, RPCs and
 *   outbox entries join the trace);
 * - amqp_messages_{published,consumed,acked,nacked,dead_lettered}_total;
 * - one log line per delivery (like the one per RPC), in the message's trace.
 */
export function observedBus(bus: MessageBus, registry: Registry, logger: Logger): MessageBus {
  const { system } = bus;
  const metrics = new MessagingMetrics(registry);
  return {
    system,
    async publish(messages) {
      const spans: Span[] = [];
      const traced = messages.map((m): OutgoingMessage => {
        const parent = contextFromTraceHeaders(m);
        const span = tracer().startSpan(`publish ${m.routingKey}`, { kind: SpanKind.PRODUCER }, parent);
        if (span.isRecording()) span.setAttributes({ ...messageAttributes(system, m), "messaging.operation.type": "publish" });
        spans.push(span);
        const { traceparent: _p, tracestate: _s, ...rest } = m;
        return { ...rest, ...traceFields(traceHeadersOf(trace.setSpan(parent, span))) };
      });
      try {
        await bus.publish(traced);
      } catch (err) {
        for (const span of spans) endWithError(span, err);
        throw err;
      }
      for (const span of spans) span.end();
      for (const m of messages) metrics.published.inc({ routing_key: m.routingKey });
    },

    consume(options: ConsumerOptions): Promise<Consumer> {
      const { name, maxDeliveries, handle } = consumerSettings(options);
      return bus.consume({
        ...options,
        onMalformed(routingKey) {
          metrics.deadLettered.inc({ consumer: name, routing_key: routingKey, reason: "malformed" });
          options.onMalformed?.(routingKey);
        },
        handle(message: IncomingMessage) {
          const labels = { consumer: name, routing_key: message.routingKey };
          metrics.consumed.inc(labels);
          const parent = contextFromTraceHeaders(message);
          const span = tracer().startSpan(`process ${message.routingKey}`, { kind: SpanKind.CONSUMER }, parent);
          if (span.isRecording()) {
            span.setAttributes({
              ...messageAttributes(system, message),
              "messaging.operation.type": "process",
              "messaging.consumer.group.name": name,
              "messaging.rabbitmq.message.delivery_count": message.deliveryCount,
            });
          }
          const start = process.hrtime.bigint();
          const log = (outcome: string) =>
            logger.info("message", {
              consumer: name,
              routing_key: message.routingKey,
              message_id: message.messageId,
              delivery_count: message.deliveryCount,
              outcome,
              duration_ms: Math.round(Number(process.hrtime.bigint() - start) / 1e3) / 1e3,
            });
          return context.with(trace.setSpan(parent, span), async () => {
            try {
              await handle(message);
            } catch (err) {
              // The adapter logs the failure itself; this line gives the outcome.
              const final = message.deliveryCount >= maxDeliveries;
              if (final) metrics.deadLettered.inc({ ...labels, reason: "delivery_limit" });
              else metrics.nacked.inc(labels);
              log(final ? "dead_lettered" : "nacked");
              endWithError(span, err);
              throw err;
            }
            metrics.acked.inc(labels);
            log("acked");
            span.end();
          });
        },
      });
    },

    // Broadcast copies are live fan-out, counted by their subscriber (notifications_received_total).
    broadcast: (options) => bus.broadcast(options),
    ping: () => bus.ping(),
    ...(bus.whenConnected ? { whenConnected: (timeoutMs?: number) => bus.whenConnected!(timeoutMs) } : {}),
    close: () => bus.close(),
  };
}

class MessagingMetrics {
  readonly published: Counter<"routing_key">;
  readonly consumed: Counter<"consumer" | "routing_key">;
  readonly acked: Counter<"consumer" | "routing_key">;
  readonly nacked: Counter<"consumer" | "routing_key">;
  readonly deadLettered: Counter<"consumer" | "routing_key" | "reason">;

  constructor(registry: Registry) {
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers: [registry] });
    this.published = counter("amqp_messages_published_total", "Messages published to the exchange and confirmed by the broker, by routing key.", ["routing_key"]);
    this.consumed = counter("amqp_messages_consumed_total", "Deliveries handed to this service's handler (redeliveries included), by consumer and routing key.", ["consumer", "routing_key"]);
    this.acked = counter("amqp_messages_acked_total", "Deliveries handled and acknowledged.", ["consumer", "routing_key"]);
    this.nacked = counter("amqp_messages_nacked_total", "Deliveries whose handler failed, returned to the queue for another attempt.", ["consumer", "routing_key"]);
    this.deadLettered = counter(
      "amqp_messages_dead_lettered_total",
      'Messages sent to the consumer\'s dead-letter queue: reason "delivery_limit" (the handler kept failing) or "malformed" (no id, type or timestamp).',
      ["consumer", "routing_key", "reason"],
    );
  }
}

function messageAttributes(system: string, m: OutgoingMessage) {
  return {
    "messaging.system": system,
    "messaging.destination.name": EXCHANGE,
    "messaging.rabbitmq.destination.routing_key": m.routingKey,
    "messaging.message.id": m.messageId,
  };
}

function endWithError(span: Span, err: unknown): void {
  if (span.isRecording()) span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}
