// How the fault and soak suites call the mesh through the edge. Every
// mutating call takes its headers from callerHeaders()/adminHeaders() here:
// bearer tokens signed with the test secret that the suite's mesh verifies.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { authHeader } from "../../services/runtime/auth/testing.js";

/** Headers that make a call come from `user` (a bearer token for that subject). */
export function callerHeaders(user: string): Promise<Record<string, string>> {
  return authHeader(user);
}

/** Headers of an administrator (creating locations and events). */
export function adminHeaders(): Promise<Record<string, string>> {
  return authHeader("faults-admin", { admin: true });
}

export interface EdgeClients {
  events: Client<typeof EventService>;
  bookings: Client<typeof BookingService>;
}

/** Clients of the edge (gRPC over HTTP/2, one connection per client, reconnecting). */
export function edgeClients(edgeUrl: string): EdgeClients {
  const transport = createGrpcTransport({ baseUrl: edgeUrl });
  return { events: createClient(EventService, transport), bookings: createClient(BookingService, transport) };
}

export interface TestEvent {
  id: string;
  capacity: number;
}

/** One location and an event per requested capacity (all in the future), through the edge. */
export async function createEvents(clients: EdgeClients, capacities: number[]): Promise<TestEvent[]> {
  const hall = Math.max(...capacities);
  const { location } = await clients.events.createLocation(
    { location: { name: "Fault Arena", address: "Chaos St 1", country: "DE", halls: [{ name: "Main", capacity: hall }] } },
    { headers: await adminHeaders(), timeoutMs: 10_000 },
  );
  const start = Date.now() + 30 * 24 * 3_600_000;
  const events: TestEvent[] = [];
  for (const [i, capacity] of capacities.entries()) {
    const { event } = await clients.events.createEvent(
      {
        event: {
          name: `Fault show ${i + 1}`,
          locationId: location!.id,
          hall: "Main",
          capacity,
          startTime: timestampFromDate(new Date(start + i * 3_600_000)),
          endTime: timestampFromDate(new Date(start + i * 3_600_000 + 1_800_000)),
        },
      },
      { headers: await adminHeaders(), timeoutMs: 10_000 },
    );
    events.push({ id: event!.id, capacity });
  }
  return events;
}
