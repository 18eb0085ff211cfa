import { Admin } from "./pages/Admin.js";
import { EventList } from "./pages/EventList.js";
import { EventPage } from "./pages/EventPage.js";
import { MyBookings } from "./pages/MyBookings.js";
import { SignIn } from "./pages/SignIn.js";
import { Link, useLocation } from "./router.js";
import { signOut } from "./session.js";
import { PageTitle, useSession } from "./ui.js";

export function App() {
  const here = useLocation();
  const url = new URL(here, location.origin);
  const session = useSession();
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          MyEvents
        </Link>
        <nav aria-label="Main">
          <ul>
            <li>
              <NavLink to="/" current={url.pathname === "/"}>
                Events
              </NavLink>
            </li>
            <li>
              <NavLink to="/bookings" current={url.pathname === "/bookings"}>
                My bookings
              </NavLink>
            </li>
            <li>
              <NavLink to="/admin" current={url.pathname === "/admin"}>
                Manage
              </NavLink>
            </li>
          </ul>
        </nav>
        <div className="who">
          {session ? (
            <>
              <span>
                Signed in as <strong data-testid="user">{session.user}</strong>
                {session.admin && " (admin)"}
              </span>
              <button type="button" className="link" onClick={signOut}>
                Sign out
              </button>
            </>
          ) : (
            <NavLink to={`/signin?next=${encodeURIComponent(here)}`} current={url.pathname === "/signin"}>
              Sign in
            </NavLink>
          )}
        </div>
      </header>
      <main id="main">
        <Page url={url} key={url.pathname} />
      </main>
    </>
  );
}

function Page({ url }: { url: URL }) {
  const path = url.pathname;
  if (path === "/") return <EventList query={url.searchParams.get("q") ?? ""} />;
  if (path === "/bookings") return <MyBookings />;
  if (path === "/admin") return <Admin />;
  if (path === "/signin") return <SignIn next={url.searchParams.get("next") ?? "/"} />;
  const event = /^\/events\/([^/]+)$/.exec(path);
  if (event) return <EventPage id={decodeURIComponent(event[1]!)} />;
  return (
    <>
      <PageTitle>Page not found</PageTitle>
      <p>
        Nothing lives at this address. <Link to="/">See all events</Link>.
      </p>
    </>
  );
}

function NavLink({ to, current, children }: { to: string; current: boolean; children: string }) {
  return (
    <Link to={to} aria-current={current ? "page" : undefined}>
      {children}
    </Link>
  );
}
