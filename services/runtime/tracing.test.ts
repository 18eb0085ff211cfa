import { ROOT_CONTEXT, TraceFlags, context, createTraceState, trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { activeSpanIds, installTracing, tracer } from "./tracing.js";

installTracing();

describe("ids-only spans (no exporter)", () => {
  const parent = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED };

  it("a child keeps its parent's trace id, flags and trace state, with a span id of its own", () => {
    const traceState = createTraceState("vendor=abc");
    const child = tracer().startSpan("child", {}, trace.setSpanContext(ROOT_CONTEXT, { ...parent, traceState })).spanContext();
    expect(child).toMatchObject({ traceId: parent.traceId, traceFlags: TraceFlags.SAMPLED });
    expect(child.traceState?.serialize()).toBe("vendor=abc");
    expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child.spanId).not.toBe(parent.spanId);
  });

  it("a child of a parent without trace state has none", () => {
    const child = tracer().startSpan("child", {}, trace.setSpanContext(ROOT_CONTEXT, parent)).spanContext();
    expect(child.traceId).toBe(parent.traceId);
    expect(child.traceState).toBeUndefined();
  });

  it("a root span (no parent, an invalid one, or root: true) starts a new trace, not sampled", () => {
    const invalid = trace.setSpanContext(ROOT_CONTEXT, { ...parent, traceId: "0".repeat(32), traceState: createTraceState("vendor=abc") });
    const withParent = trace.setSpanContext(ROOT_CONTEXT, parent);
    for (const [options, ctx] of [[{}, ROOT_CONTEXT], [{}, invalid], [{ root: true }, withParent]] as const) {
      const root = tracer().startSpan("root", options, ctx).spanContext();
      expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(root.traceId).not.toBe(parent.traceId);
      expect(root.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(root.traceFlags).toBe(TraceFlags.NONE);
      expect(root.traceState).toBeUndefined();
    }
  });

  it("the active span's ids: those of a span made here, a valid remote parent's, none for an invalid one", () => {
    const root = tracer().startSpan("root", { root: true });
    const child = tracer().startSpan("child", {}, trace.setSpan(ROOT_CONTEXT, root));
    expect(child.spanContext().traceId).toBe(root.spanContext().traceId);
    for (const span of [root, child]) expect(context.with(trace.setSpan(ROOT_CONTEXT, span), activeSpanIds)).toBe(span.spanContext());
    expect(context.with(trace.setSpanContext(ROOT_CONTEXT, parent), activeSpanIds)).toMatchObject(parent);
    for (const invalid of [{ ...parent, traceId: "0".repeat(32) }, { ...parent, spanId: "not hex" }]) {
      expect(context.with(trace.setSpanContext(ROOT_CONTEXT, invalid), activeSpanIds)).toBeUndefined();
    }
    expect(activeSpanIds()).toBeUndefined();
  });

  it("ids stay well-formed and distinct across many refills of the random pool", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const { traceId, spanId } = tracer().startSpan("root", { root: true }).spanContext();
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(spanId).toMatch(/^[0-9a-f]{16}$/);
      seen.add(traceId).add(spanId);
    }
    expect(seen.size).toBe(6000);
  });
});
