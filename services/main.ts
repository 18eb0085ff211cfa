// The whole mesh in one process on embedded defaults: `npm start`.
// Each service keeps its own ports (see README); with MONGODB_URL set they
// use MongoDB instead of the in-memory stores.
import { readEventsConfig, startEventsService } from "./events/app.js";
import { runMain } from "./runtime/main.js";

runMain((env) => {
  const events = readEventsConfig(env);
  env.done();
  return [() => startEventsService(events)];
});
