import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Code } from "@connectrpc/connect";
import { EventState, type Event } from "../../../gen/myevents/v1/event_pb.js";
import type { Location } from "../../../gen/myevents/v1/location_pb.js";
import type { Booking } from "../../../gen/myevents/v1/booking_pb.js";
import { bookings, events, notifications } from "../api.js";
import { describe, type Problem } from "../errors.js";
import { availability, span } from "../format.js";
import { keepSubscribed, type LiveStatus } from "../live.js";
import { Link } from "../router.js";
import { ErrorMessage, Field, Loading, PageTitle, SubmitButton, useSession } from "../ui.js";

/** Seats one booking may take (the BookingService's MAX_SEATS_PER_BOOKING). */
const MAX_SEATS = 10;

/** One event: details, seats kept current by the notification stream, and the booking form. */
export function EventPage({ id }: { id: string }) {
  const [event, setEvent] = useState<Event | undefined>();
  const [location, setLocation] = useState<Location | undefined>();
  const [problem, setProblem] = useState<Problem | undefined>();
  const [live, setLive] = useState<LiveStatus>({ state: "connecting" });

  const load = useCallback(
    (signal?: AbortSignal) =>
      events
        .getEvent({ id }, { signal })
        .then((res) => {
          setEvent(res.event);
          setProblem(undefined);
          return res.event;
        })
        .catch((err) => {
          if (!signal?.aborted) setProblem(describe(err));
          return undefined;
        }),
    [id],
  );

  useEffect(() => {
    const abort = new AbortController();
    setEvent(undefined);
    void load(abort.signal).then((loaded) => {
      if (loaded?.locationId) {
        events.getLocation({ id: loaded.locationId }, { signal: abort.signal }).then((r) => setLocation(r.location), () => undefined);
      }
    });
    // A reload answered after a newer change arrived on the stream would
    // show stale seats (the EventService learns of bookings a moment later).
    let changes = 0;
    const resync = () => {
      const seen = changes;
      void events.getEvent({ id }, { signal: abort.signal }).then(
        (res) => changes === seen && res.event && setEvent(res.event),
        () => undefined,
      );
    };
    void keepSubscribed({
      signal: abort.signal,
      subscribe: (signal) => notifications.subscribe({ eventIds: [id] }, { signal }),
      onStatus: setLive,
      onResync: resync,
      onMessage: (message) => {
        const change = message.change;
        if (change.case === "eventChange" || change.case === "bookingChange") {
          if (change.value.eventId !== id) return;
          changes++;
          const seats = change.value.seatsAvailable;
          const state = change.case === "eventChange" ? change.value.state : undefined;
          setEvent((current) => current && { ...current, seatsAvailable: seats, state: state || current.state });
        }
      },
    });
    return () => abort.abort();
  }, [id, load]);

  if (!event) {
    return (
      <>
        <PageTitle>Event</PageTitle>
        {problem ? <ErrorMessage problem={problem} /> : <Loading what="the event" />}
        <p>
          <Link to="/">Back to all events</Link>
        </p>
      </>
    );
  }

  const cancelled = event.state === EventState.CANCELLED;
  const soldOut = !cancelled && event.seatsAvailable <= 0;
  return (
    <>
      <PageTitle>{event.name}</PageTitle>
      <dl className="facts">
        <dt>When</dt>
        <dd>{span(event.startTime, event.endTime)}</dd>
        <dt>Where</dt>
        <dd>
          {[event.hall, location?.name, location?.address].filter(Boolean).join(", ")}
          {location && ` (${location.country})`}
        </dd>
        <dt>Seats</dt>
        <dd>
          {/* Announced whenever the stream changes it: people hear seats go. */}
          <span id="seats" className="seats" aria-live="polite" aria-atomic="true">
            {availability(event)}
          </span>
        </dd>
      </dl>
      <LiveIndicator status={live} />
      <ErrorMessage problem={problem} />
      <section aria-labelledby="book-heading">
        <h2 id="book-heading">Book seats</h2>
        {cancelled ? (
          <p role="status">This event was cancelled; it takes no bookings.</p>
        ) : soldOut ? (
          <p role="status" className="sold-out">
            Sold out: every seat is taken. Seats that are cancelled show up here at once.
          </p>
        ) : (
          <BookingForm event={event} onRefused={() => void load()} />
        )}
      </section>
      <p>
        <Link to="/">Back to all events</Link>
      </p>
    </>
  );
}

function LiveIndicator({ status }: { status: LiveStatus }) {
  const text =
    status.state === "live"
      ? "Live: seats update as people book."
      : status.state === "connecting"
        ? "Connecting to live updates…"
        : `Live updates interrupted; reconnecting in ${Math.ceil(status.inMs / 1000)} s.`;
  return (
    <p className={`live live-${status.state}`} data-live={status.state}>
      <span aria-hidden="true" className="dot" /> {text}
    </p>
  );
}

/**
 * The booking form. One request_id per intent: made on the first submit
 * and reused by retries of the same booking (a double click, a retry after
 * a network error), so the BookingService books it once; a changed seat
 * count or a finished booking starts a new intent.
 */
function BookingForm({ event, onRefused }: { event: Event; onRefused: () => Promise<unknown> | void }) {
  const session = useSession();
  const [seats, setSeats] = useState("1");
  const [pending, setPending] = useState(false);
  const [problem, setProblem] = useState<Problem | undefined>();
  const [seatsError, setSeatsError] = useState<string | undefined>();
  const [booked, setBooked] = useState<Booking | undefined>();
  const intent = useRef<string | undefined>(undefined);
  const inFlight = useRef(false);

  if (!session) {
    return (
      <p>
        <Link to={`/signin?next=${encodeURIComponent(`/events/${event.id}`)}`}>Sign in</Link> to book seats.
      </p>
    );
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (inFlight.current) return; // the button is disabled too; this covers a second click in the same tick
    setProblem(undefined);
    setBooked(undefined);
    const count = Number(seats);
    if (!Number.isInteger(count) || count < 1 || count > MAX_SEATS) {
      setSeatsError(`Enter a whole number of seats from 1 to ${MAX_SEATS}.`);
      return;
    }
    if (count > event.seatsAvailable) {
      setSeatsError(`Only ${event.seatsAvailable} ${event.seatsAvailable === 1 ? "seat is" : "seats are"} left.`);
      return;
    }
    setSeatsError(undefined);
    intent.current ??= crypto.randomUUID();
    inFlight.current = true;
    setPending(true);
    try {
      const res = await bookings.createBooking({ eventId: event.id, seats: count, requestId: intent.current });
      intent.current = undefined;
      setBooked(res.booking);
    } catch (err) {
      const described = describe(err);
      // Worth retrying as the same booking: the service may have booked it already.
      const retryable = [Code.Unavailable, Code.Unknown, Code.DeadlineExceeded, Code.Aborted].includes(described.code);
      if (!retryable) intent.current = undefined;
      if (described.fields.seats) setSeatsError(`Seats ${described.fields.seats}.`);
      if (described.code === Code.FailedPrecondition) {
        // Sold out, too few seats left or cancelled: the refreshed event says which.
        const fresh = (await onRefused()) as Event | undefined;
        if (fresh && fresh.state !== EventState.CANCELLED && fresh.seatsAvailable > 0) {
          setProblem({ ...described, message: `Not enough seats: only ${fresh.seatsAvailable} left. Choose fewer seats.` });
        } else if (fresh && fresh.seatsAvailable <= 0) {
          setProblem({ ...described, message: "Sorry, this event is sold out." });
        } else setProblem(described);
      } else setProblem(described);
    } finally {
      inFlight.current = false;
      setPending(false);
    }
  };

  return (
    <form className="booking" onSubmit={submit} noValidate aria-describedby="booking-who">
      <p id="booking-who" className="muted">
        Booking as <strong>{session.user}</strong>.
      </p>
      <Field
        label="Seats"
        type="number"
        inputMode="numeric"
        min={1}
        max={Math.min(MAX_SEATS, event.seatsAvailable)}
        step={1}
        required
        value={seats}
        error={seatsError}
        hint={`Up to ${MAX_SEATS} per booking.`}
        onChange={(e) => {
          setSeats(e.target.value);
          intent.current = undefined; // a different booking now
        }}
      />
      <SubmitButton pending={pending} label="Book" busyLabel="Booking…" />
      <ErrorMessage problem={problem} />
      {booked && (
        <p role="status" className="success">
          Booked {booked.seats} {booked.seats === 1 ? "seat" : "seats"}. Your booking number is <code>{booked.id}</code>. See{" "}
          <Link to="/bookings">my bookings</Link>.
        </p>
      )}
    </form>
  );
}
