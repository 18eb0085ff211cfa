import type { ServiceImpl } from "@connectrpc/connect";
import { NotificationService } from "../../gen/myevents/v1/notification_service_pb.js";
import { Violations } from "../runtime/errors.js";
import type { NotificationHub } from "./hub.js";

/** Most event ids one subscription may filter by. */
export const MAX_FILTER_EVENTS = 100;
const MAX_ID_LENGTH = 128;

/** NotificationService.Subscribe over the hub: a plain function over the generated types. */
export function notificationService(hub: NotificationHub): Partial<ServiceImpl<typeof NotificationService>> {
  return {
    subscribe(req, ctx) {
      const violations = new Violations();
      if (req.eventIds.length > MAX_FILTER_EVENTS) {
        violations.add("event_ids", `at most ${MAX_FILTER_EVENTS} event ids, got ${req.eventIds.length}`);
      }
      req.eventIds.slice(0, MAX_FILTER_EVENTS).forEach((id, i) => {
        if (id.trim() === "") violations.add(`event_ids[${i}]`, "must not be empty");
        else if (id.length > MAX_ID_LENGTH) violations.add(`event_ids[${i}]`, `must be at most ${MAX_ID_LENGTH} characters`);
      });
      violations.throwIfAny();
      return hub.subscribe(req.eventIds, ctx.signal);
    },
  };
}
