import { useCallback, useEffect, useState } from "react";
import { BookingState, type Booking } from "../../../gen/myevents/v1/booking_pb.js";
import { bookings, events } from "../api.js";
import { describe, type Problem } from "../errors.js";
import { when } from "../format.js";
import { Link } from "../router.js";
import { ErrorMessage, Loading, PageTitle, useSession } from "../ui.js";

const PAGE_SIZE = 20;

/** The signed-in user's bookings (ListBookings, newest first) with cancel. */
export function MyBookings() {
  const session = useSession();
  const [list, setList] = useState<Booking[] | undefined>();
  const [next, setNext] = useState("");
  const [names, setNames] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<Problem | undefined>();
  const [notice, setNotice] = useState("");
  const [cancelling, setCancelling] = useState<string | undefined>();

  const loadPage = useCallback(async (token: string, signal?: AbortSignal) => {
    try {
      const res = await bookings.listBookings({ pageSize: PAGE_SIZE, pageToken: token }, { signal });
      setList((current) => (token ? [...(current ?? []), ...res.bookings] : res.bookings));
      setNext(res.nextPageToken);
      setProblem(undefined);
      // Event names for the list; a missing event just shows its id.
      for (const eventId of new Set(res.bookings.map((b) => b.eventId))) {
        events.getEvent({ id: eventId }, { signal }).then(
          (r) => setNames((n) => ({ ...n, [eventId]: r.event?.name ?? eventId })),
          () => undefined,
        );
      }
    } catch (err) {
      if (!signal?.aborted) setProblem(describe(err));
    }
  }, []);

  useEffect(() => {
    if (!session) return;
    const abort = new AbortController();
    setList(undefined);
    void loadPage("", abort.signal);
    return () => abort.abort();
  }, [session, loadPage]);

  if (!session) {
    return (
      <>
        <PageTitle>My bookings</PageTitle>
        <p>
          <Link to="/signin?next=%2Fbookings">Sign in</Link> to see your bookings.
        </p>
      </>
    );
  }

  const cancel = async (booking: Booking) => {
    setCancelling(booking.id);
    setNotice("");
    setProblem(undefined);
    try {
      const res = await bookings.cancelBooking({ id: booking.id });
      const updated = res.booking ?? booking;
      setList((current) => current?.map((b) => (b.id === updated.id ? updated : b)));
      setNotice(`Booking ${booking.id} is cancelled; its ${booking.seats} ${booking.seats === 1 ? "seat is" : "seats are"} free again.`);
    } catch (err) {
      setProblem(describe(err));
    } finally {
      setCancelling(undefined);
    }
  };

  return (
    <>
      <PageTitle>My bookings</PageTitle>
      <p role="status" className="success" hidden={!notice}>
        {notice}
      </p>
      <ErrorMessage problem={problem} />
      {!list && !problem && <Loading what="your bookings" />}
      {list && list.length === 0 && <p>No bookings yet. <Link to="/">Find an event</Link>.</p>}
      {list && list.length > 0 && (
        <ul className="cards" aria-label="My bookings">
          {list.map((b) => {
            const name = names[b.eventId] ?? b.eventId;
            const cancelled = b.state === BookingState.CANCELLED;
            return (
              <li key={b.id} className={`card${cancelled ? " cancelled" : ""}`}>
                <h2>
                  <Link to={`/events/${encodeURIComponent(b.eventId)}`}>{name}</Link>
                </h2>
                <p>
                  {b.seats} {b.seats === 1 ? "seat" : "seats"} · booked {when(b.createTime)} · <code>{b.id}</code>
                </p>
                <p className="state">{cancelled ? "Cancelled" : "Confirmed"}</p>
                {!cancelled && (
                  <button type="button" className="secondary" disabled={cancelling === b.id} aria-busy={cancelling === b.id} onClick={() => void cancel(b)}>
                    {cancelling === b.id ? "Cancelling…" : `Cancel booking for ${name}`}
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {next && (
        <button type="button" onClick={() => void loadPage(next)}>
          Show more bookings
        </button>
      )}
    </>
  );
}
