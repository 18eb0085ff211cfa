import { Counter, type Registry } from "prom-client";
import type { ShedReason } from "./admission.js";

/**
 * Business counters of the BookingService, counted once per state change
 * (by the call or the recovery that made it), never per request: retries
 * and duplicate requests count nothing.
 */
export class BookingMetrics {
  private readonly confirmedTotal: Counter;
  private readonly cancelledTotal: Counter<"reason">;
  private readonly seatsBooked: Counter;
  private readonly seatsReleased: Counter;
  private readonly shedTotal: Counter<"reason">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.confirmedTotal = new Counter({ name: "bookings_confirmed_total", help: "Bookings confirmed (seats reserved).", registers });
    this.cancelledTotal = new Counter({
      name: "bookings_cancelled_total",
      help: 'Bookings cancelled: reason "user" (CancelBooking) or "event_cancelled" (the event was cancelled).',
      labelNames: ["reason"],
      registers,
    });
    this.seatsBooked = new Counter({ name: "bookings_seats_booked_total", help: "Seats reserved by confirmed bookings.", registers });
    this.seatsReleased = new Counter({
      name: "bookings_seats_released_total",
      help: "Seats given back to sale by cancelled bookings (a cancelled event's seats are not: it sells nothing).",
      registers,
    });
    for (const reason of ["user", "event_cancelled"]) this.cancelledTotal.inc({ reason }, 0);
    this.shedTotal = new Counter({
      name: "bookings_shed_total",
      help: "CreateBooking calls refused with Unavailable before any write, by reason (event_queue_full, process_full, deadline_too_short).",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of ["event_queue_full", "process_full", "deadline_too_short"]) this.shedTotal.inc({ reason }, 0);
  }

  confirmed(seats: number): void {
    this.confirmedTotal.inc();
    this.seatsBooked.inc(seats);
  }

  cancelled(reason: "user" | "event_cancelled", seats: number): void {
    this.cancelledTotal.inc({ reason });
    if (reason === "user") this.seatsReleased.inc(seats);
  }

  shed(reason: ShedReason): void {
    this.shedTotal.inc({ reason });
  }
}
