import { ConfigError, EnvReader } from "./config.js";
import { createLogger, flushStdout, type Logger } from "./logger.js";
import { exitOnSignals, type RunningService } from "./server.js";
import { describeTraceExport, readTraceExportConfig, startTraceExport, type TraceExportConfig } from "./tracing-export.js";

/**
 * Process entry: read and validate configuration (exit 78, EX_CONFIG, with
 * every bad variable named), start trace export when configured, start the
 * services, stop them gracefully on SIGTERM/SIGINT (then flush the spans).
 * `name` is the process's service.name in traces (OTEL_SERVICE_NAME wins).
 */
export function runMain(
  setup: (env: EnvReader) => Array<() => Promise<RunningService>>,
  name = "myevents",
  onStarted?: (logger: Logger) => void,
): void {
  const logger = createLogger("info", { service: "main" });
  let starters: Array<() => Promise<RunningService>>;
  let traces: TraceExportConfig | undefined;
  try {
    const env = new EnvReader();
    traces = readTraceExportConfig(env, name);
    starters = setup(env);
    env.done(); // every bad variable of setup's reads, at once (setups need not call it)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  (async () => {
    const exporting = traces ? await startTraceExport(traces) : undefined;
    logger.info("tracing", describeTraceExport(traces));
    const running: RunningService[] = [];
    for (const start of starters) running.push(await start());
    exitOnSignals(running, logger, exporting?.shutdown);
    onStarted?.(logger);
  })().catch((err: unknown) => {
    logger.error("failed to start", { error: err });
    void flushStdout().then(() => process.exit(1));
  });
}
