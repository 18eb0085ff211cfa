// log-exit.test.ts's child: logs many lines, then stops as a service does
// on SIGTERM (exitOnSignals → process.exit), while its stdout is a pipe
// the parent is slow to read.
import { createLogger } from "./logger.js";
import { exitOnSignals } from "./server.js";

const lines = Number(process.argv[2]);
const logger = createLogger("info", { service: "log-exit" });
exitOnSignals([], logger);
for (let i = 0; i < lines; i++) logger.info("line", { i, padding: "x".repeat(200) });
// Half of them reach process.stdout before the signal, half are still buffered when it comes.
setImmediate(() => {
  for (let i = lines; i < 2 * lines; i++) logger.info("line", { i, padding: "x".repeat(200) });
  process.kill(process.pid, "SIGTERM");
});
