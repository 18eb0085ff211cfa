import type { EnvReader } from "./config.js";
import { redact } from "./config.js";
import { useTracerProvider } from "./tracing.js";

/**
 * OpenTelemetry trace export, on only when the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
 * set: OTLP over HTTP with protobuf bodies, batched, from the official SDK.
 * The SDK modules are loaded only then; unset, nothing is loaded or started
 * and spans stay ids-only (tracing.ts). The exporter reads the other
 * standard variables itself (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
 * _COMPRESSION, OTEL_BSP_*), and the provider OTEL_TRACES_SAMPLER(_ARG).
 */
export interface TraceExportConfig {
  serviceName: string;
  /** Where spans go, for the log line (the exporter reads the variables itself). */
  endpoint: string;
}

export interface TraceExport {
  /** Sends the spans still buffered. */
  flush(): Promise<void>;
  /** Flushes, stops exporting and goes back to ids-only spans. */
  shutdown(): Promise<void>;
}

const HTTP = ["http:", "https:"];

/** The export settings, or undefined when export is off; problems are recorded in `env`. */
export function readTraceExportConfig(env: EnvReader, serviceName: string): TraceExportConfig | undefined {
  const endpoint = env.optionalUrl("OTEL_EXPORTER_OTLP_ENDPOINT", HTTP);
  const tracesEndpoint = env.optionalUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", HTTP);
  for (const name of ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]) {
    const protocol = env.optionalString(name);
    if (protocol !== undefined && protocol !== "http/protobuf") env.problem(name, `must be "http/protobuf" (the only OTLP protocol built in), got ${JSON.stringify(protocol)}`);
  }
  const disabled = env.oneOf("OTEL_SDK_DISABLED", "false", ["true", "false"]) === "true";
  if (disabled || (endpoint === undefined && tracesEndpoint === undefined)) return undefined;
  return {
    serviceName: env.string("OTEL_SERVICE_NAME", serviceName),
    endpoint: tracesEndpoint ?? `${endpoint!.replace(/\/$/, "")}/v1/traces`,
  };
}

/** Starts the SDK and makes every span of the process recorded and exported. */
export async function startTraceExport(config: TraceExportConfig): Promise<TraceExport> {
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/exporter-trace-otlp-proto"),
    import("@opentelemetry/resources"),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  useTracerProvider(provider);
  return {
    flush: () => provider.forceFlush(),
    async shutdown() {
      useTracerProvider(undefined);
      await provider.shutdown();
    },
  };
}

/** For the start-up log line. */
export function describeTraceExport(config: TraceExportConfig | undefined): Record<string, unknown> {
  return config ? { exporting: true, endpoint: redact(config.endpoint), service_name: config.serviceName } : { exporting: false };
}
