import { useEffect, useState, type FormEvent } from "react";
import type { Event } from "../../../gen/myevents/v1/event_pb.js";
import { events } from "../api.js";
import { describe, type Problem } from "../errors.js";
import { availability, when } from "../format.js";
import { Link, navigate } from "../router.js";
import { ErrorMessage, Loading, PageTitle } from "../ui.js";

const PAGE_SIZE = 10;

/** Upcoming events, searchable by name, a page at a time (ListEvents page_token). */
export function EventList({ query }: { query: string }) {
  const [draft, setDraft] = useState(query);
  // The page shown: its token, and the tokens of the pages before it (for "Previous").
  const [paging, setPaging] = useState({ query, token: "", previous: [] as string[] });
  const [page, setPage] = useState<{ events: Event[]; next: string } | undefined>();
  const [problem, setProblem] = useState<Problem | undefined>();

  // A new search starts at its first page (reset while rendering, so no request goes out with a stale token).
  if (paging.query !== query) {
    setPaging({ query, token: "", previous: [] });
    setDraft(query);
  }

  useEffect(() => {
    const abort = new AbortController();
    setProblem(undefined);
    setPage(undefined);
    events
      .listEvents({ query: paging.query, pageSize: PAGE_SIZE, pageToken: paging.token }, { signal: abort.signal })
      .then((res) => setPage({ events: res.events, next: res.nextPageToken }))
      .catch((err) => abort.signal.aborted || setProblem(describe(err)));
    return () => abort.abort();
  }, [paging]);

  const search = (e: FormEvent) => {
    e.preventDefault();
    const q = draft.trim();
    navigate(q ? `/?q=${encodeURIComponent(q)}` : "/");
  };

  const pageNumber = paging.previous.length + 1;
  return (
    <>
      <PageTitle>Events</PageTitle>
      <form className="search" onSubmit={search} role="search">
        <label htmlFor="event-search">Search events by name</label>
        <div className="inline">
          <input id="event-search" type="search" name="q" value={draft} maxLength={200} onChange={(e) => setDraft(e.target.value)} />
          <button type="submit">Search</button>
        </div>
      </form>
      <ErrorMessage problem={problem} />
      {!page && !problem && <Loading what="events" />}
      {page && (
        <>
          <p role="status" className="muted">
            {page.events.length === 0
              ? query
                ? `No events match “${query}”.`
                : "No events yet."
              : `Page ${pageNumber}: ${page.events.length} ${page.events.length === 1 ? "event" : "events"}${query ? ` matching “${query}”` : ""}.`}
          </p>
          <ul className="cards" aria-label="Events">
            {page.events.map((event) => (
              <li key={event.id} className="card">
                <h2>
                  <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.name}</Link>
                </h2>
                <p>
                  {when(event.startTime)} · {event.hall}
                </p>
                <p className="seats">{availability(event)}</p>
              </li>
            ))}
          </ul>
          <nav className="pager" aria-label="Pages of events">
            <button
              type="button"
              disabled={paging.previous.length === 0}
              onClick={() => setPaging({ query, token: paging.previous.at(-1) ?? "", previous: paging.previous.slice(0, -1) })}
            >
              Previous page
            </button>
            <button
              type="button"
              disabled={!page.next}
              onClick={() => setPaging({ query, token: page.next, previous: [...paging.previous, paging.token] })}
            >
              Next page
            </button>
          </nav>
        </>
      )}
    </>
  );
}
