// A bare @grpc/grpc-js server answering the same .proto from memory: GetEvent
// returns one fixed event, whatever the id. The floor to compare against.
import * as grpc from "@grpc/grpc-js";
import { loadEventService } from "../lib.js";
import { answerStats } from "./ipc.js";

const now = Math.floor(Date.now() / 1000);
const EVENT = {
  id: "00000000-0000-4000-8000-000000000000",
  name: "Concert",
  locationId: "11111111-1111-4111-8111-111111111111",
  hall: "A",
  startTime: { seconds: String(now + 86_400), nanos: 0 },
  endTime: { seconds: String(now + 93_600), nanos: 0 },
  capacity: 100,
  seatsAvailable: 100,
  state: "EVENT_STATE_SCHEDULED",
};

const server = new grpc.Server();
server.addService(loadEventService().service, {
  getEvent: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { event: EVENT }),
});
server.bindAsync(`127.0.0.1:${process.env.PORT ?? "0"}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  answerStats();
  process.send!({ type: "ready", port });
});
