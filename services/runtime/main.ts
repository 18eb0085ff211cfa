import { ConfigError, EnvReader } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { exitOnSignals, type RunningService } from "./server.js";

/**
 * Process entry: read and validate configuration (exit 78, EX_CONFIG, with
 * every bad variable named), start the services, stop them gracefully on
 * SIGTERM/SIGINT.
 */
export function runMain(setup: (env: EnvReader) => Array<() => Promise<RunningService>>, onStarted?: (logger: Logger) => void): void {
  const logger = createLogger("info", { service: "main" });
  let starters: Array<() => Promise<RunningService>>;
  try {
    starters = setup(new EnvReader());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  (async () => {
    const running: RunningService[] = [];
    for (const start of starters) running.push(await start());
    exitOnSignals(running, logger);
    onStarted?.(logger);
  })().catch((err: unknown) => {
    logger.error("failed to start", { error: err });
    process.exit(1);
  });
}
