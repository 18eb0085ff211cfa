import { useEffect, useState, type FormEvent } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Event } from "../../../gen/myevents/v1/event_pb.js";
import type { Location } from "../../../gen/myevents/v1/location_pb.js";
import { events } from "../api.js";
import { Link } from "../router.js";
import { ErrorMessage, Field, PageTitle, SelectField, SubmitButton, useRequest, useSession } from "../ui.js";

/** Administrators create locations (with their halls) and events in them. */
export function Admin() {
  const session = useSession();
  const [locations, setLocations] = useState<Location[]>([]);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    events.listLocations({ pageSize: 100 }, { signal: abort.signal }).then((r) => setLocations(r.locations), () => undefined);
    return () => abort.abort();
  }, [reload]);

  return (
    <>
      <PageTitle>Manage events</PageTitle>
      {!session?.admin && (
        <p className="notice">
          Creating locations and events needs an administrator's token (<code>npm run --silent token -- --user NAME --admin</code>).{" "}
          <Link to="/signin?next=%2Fadmin">Sign in</Link>
        </p>
      )}
      <LocationForm onCreated={() => setReload((n) => n + 1)} />
      <EventForm locations={locations} />
    </>
  );
}

interface HallDraft {
  key: number;
  name: string;
  capacity: string;
}

function LocationForm({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState("");
  const [address, setAddress] = useState("");
  const [country, setCountry] = useState("");
  const [halls, setHalls] = useState<HallDraft[]>([{ key: 0, name: "", capacity: "" }]);
  const { pending, problem, run } = useRequest();
  const [created, setCreated] = useState<Location | undefined>();
  const field = (path: string) => problem?.fields[`location.${path}`];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setCreated(undefined);
    const res = await run(() =>
      events.createLocation({
        location: {
          name,
          address,
          country: country.trim().toUpperCase(),
          halls: halls.map((h) => ({ name: h.name.trim(), capacity: Number(h.capacity) || 0 })),
        },
      }),
    );
    if (!res) return;
    setCreated(res.location);
    setName("");
    setAddress("");
    setCountry("");
    setHalls([{ key: Date.now(), name: "", capacity: "" }]);
    onCreated();
  };

  const update = (key: number, change: Partial<HallDraft>) => setHalls(halls.map((h) => (h.key === key ? { ...h, ...change } : h)));

  return (
    <section aria-labelledby="new-location">
      <h2 id="new-location">New location</h2>
      <form onSubmit={submit} noValidate className="stack">
        <Field label="Name" required value={name} maxLength={200} error={field("name")} onChange={(e) => setName(e.target.value)} />
        <Field label="Address" value={address} error={field("address")} onChange={(e) => setAddress(e.target.value)} />
        <Field
          label="Country"
          hint="Two-letter code, such as DE or US."
          required
          value={country}
          maxLength={2}
          autoComplete="country"
          error={field("country")}
          onChange={(e) => setCountry(e.target.value)}
        />
        <fieldset>
          <legend>Halls</legend>
          {problem?.fields["location.halls"] && <p className="field-error">{problem.fields["location.halls"]}</p>}
          {halls.map((hall, i) => (
            <div className="hall" key={hall.key}>
              <Field label={`Hall ${i + 1} name`} required value={hall.name} error={field(`halls[${i}].name`)} onChange={(e) => update(hall.key, { name: e.target.value })} />
              <Field
                label={`Hall ${i + 1} capacity`}
                type="number"
                inputMode="numeric"
                min={1}
                required
                value={hall.capacity}
                error={field(`halls[${i}].capacity`)}
                onChange={(e) => update(hall.key, { capacity: e.target.value })}
              />
              {halls.length > 1 && (
                <button type="button" className="secondary" onClick={() => setHalls(halls.filter((h) => h.key !== hall.key))}>
                  Remove hall {i + 1}
                </button>
              )}
            </div>
          ))}
          <button type="button" className="secondary" onClick={() => setHalls([...halls, { key: Date.now(), name: "", capacity: "" }])}>
            Add a hall
          </button>
        </fieldset>
        <SubmitButton pending={pending} label="Create location" busyLabel="Creating…" />
        <ErrorMessage problem={problem} />
        {created && (
          <p role="status" className="success">
            Created location {created.name} with {created.halls.length} {created.halls.length === 1 ? "hall" : "halls"}.
          </p>
        )}
      </form>
    </section>
  );
}

function EventForm({ locations }: { locations: Location[] }) {
  const [name, setName] = useState("");
  const [locationId, setLocationId] = useState("");
  const [hall, setHall] = useState("");
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [capacity, setCapacity] = useState("");
  const { pending, problem, run } = useRequest();
  const [created, setCreated] = useState<Event | undefined>();
  const location = locations.find((l) => l.id === locationId);
  const field = (path: string) => problem?.fields[`event.${path}`];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setCreated(undefined);
    // datetime-local is the visitor's local time; the contract wants an instant.
    const instant = (value: string) => (value ? timestampFromDate(new Date(value)) : undefined);
    const res = await run(() =>
      events.createEvent({ event: { name, locationId, hall, startTime: instant(start), endTime: instant(end), capacity: Number(capacity) || 0 } }),
    );
    if (!res) return;
    setCreated(res.event);
    setName("");
  };

  return (
    <section aria-labelledby="new-event">
      <h2 id="new-event">New event</h2>
      <form onSubmit={submit} noValidate className="stack">
        <Field label="Name" required value={name} maxLength={200} error={field("name")} onChange={(e) => setName(e.target.value)} />
        <SelectField
          label="Location"
          required
          value={locationId}
          error={field("location_id")}
          onChange={(e) => {
            setLocationId(e.target.value);
            setHall(locations.find((l) => l.id === e.target.value)?.halls[0]?.name ?? "");
          }}
        >
          <option value="">Choose a location</option>
          {locations.map((l) => (
            <option key={l.id} value={l.id}>
              {l.name}
            </option>
          ))}
        </SelectField>
        <SelectField label="Hall" required value={hall} disabled={!location} error={field("hall")} onChange={(e) => setHall(e.target.value)}>
          {!location && <option value="">Choose a location first</option>}
          {location?.halls.map((h) => (
            <option key={h.name} value={h.name}>
              {h.name} ({h.capacity} seats)
            </option>
          ))}
        </SelectField>
        <Field label="Starts" type="datetime-local" required value={start} error={field("start_time")} onChange={(e) => setStart(e.target.value)} />
        <Field label="Ends" type="datetime-local" required value={end} error={field("end_time")} onChange={(e) => setEnd(e.target.value)} />
        <Field
          label="Seats on sale"
          hint="Leave empty to sell every seat of the hall."
          type="number"
          inputMode="numeric"
          min={1}
          value={capacity}
          error={field("capacity")}
          onChange={(e) => setCapacity(e.target.value)}
        />
        <SubmitButton pending={pending} label="Create event" busyLabel="Creating…" />
        <ErrorMessage problem={problem} />
        {created && (
          <p role="status" className="success">
            Created <Link to={`/events/${encodeURIComponent(created.id)}`}>{created.name}</Link>.
          </p>
        )}
      </form>
    </section>
  );
}
