// The web app in a real Chromium against the real mesh (gateway serving
// web/dist, EventService, BookingService over FerretDB and RabbitMQ): what a
// person does, step by step, with a screenshot of each step in
// test-results/browser/.
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWeb } from "../../scripts/build-web.js";
import { eventually } from "../support/eventually.js";
import { ARTIFACTS, launchChromium, newPerson, screenshot, signIn } from "./browser.js";
import { startMesh, tokenFor } from "./mesh.js";

const HOUR = 3_600_000;
const PHONE = { width: 390, height: 844 };

describe("web app in Chromium", () => {
  let mesh: Awaited<ReturnType<typeof startMesh>>;
  let browser: Browser;
  let alice: BrowserContext;
  let bob: BrowserContext;
  const tag = Math.random().toString(36).slice(2, 8);
  let concert: { id: string; name: string };
  let soldOut: { id: string; name: string };

  beforeAll(async () => {
    await buildWeb({ log: () => {} }); // no-op when web/dist matches the sources
    [mesh, browser] = await Promise.all([startMesh(), launchChromium()]);
    const { location } = await mesh.admin.createLocation({ location: { name: "Town Hall", address: "Market 1", country: "DE", halls: [{ name: "Main", capacity: 10 }] } });
    const event = (name: string, capacity: number, inHours: number) =>
      mesh.admin.createEvent({
        event: {
          name,
          locationId: location!.id,
          hall: "Main",
          capacity,
          startTime: timestampFromDate(new Date(Date.now() + inHours * HOUR)),
          endTime: timestampFromDate(new Date(Date.now() + (inHours + 2) * HOUR)),
        },
      });
    concert = (await event(`Jazz night ${tag}`, 10, 48)).event!;
    soldOut = (await event(`Tiny gig ${tag}`, 2, 72)).event!;
    for (let i = 1; i <= 12; i++) await event(`Matinee ${tag} ${String(i).padStart(2, "0")}`, 5, 100 + i);
    await mesh.bookingsAs("carol").createBooking({ eventId: soldOut.id, seats: 2, requestId: `fill-${tag}` });
    // The EventService learns of bookings through RabbitMQ.
    await eventually(async () => expect((await mesh.admin.getEvent({ id: soldOut.id })).event?.seatsAvailable).toBe(0));
    alice = await newPerson(browser, { viewport: PHONE });
    bob = await newPerson(browser, { viewport: { width: 1100, height: 800 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await mesh?.stop();
  });

  let alicePage: Page;
  let bobPage: Page;

  it("lists events, finds one by name and opens it", async () => {
    alicePage = await alice.newPage();
    await signIn(alicePage, mesh.url, await tokenFor("alice"));
    await alicePage.getByRole("link", { name: "Events", exact: true }).click();
    await alicePage.getByRole("searchbox", { name: "Search events by name" }).fill(`Jazz night ${tag}`);
    await alicePage.getByRole("button", { name: "Search" }).click();
    const results = alicePage.getByRole("list", { name: "Events" });
    await results.getByRole("link", { name: concert.name }).waitFor();
    expect(await results.getByRole("listitem").count()).toBe(1);
    expect(await results.getByRole("listitem").textContent()).toContain("10 of 10 seats left");
    await screenshot(alicePage, "01-event-list-search");

    await results.getByRole("link", { name: concert.name }).click();
    await alicePage.getByRole("heading", { level: 1, name: concert.name }).waitFor();
    expect(alicePage.url()).toBe(`${mesh.url}/events/${concert.id}`);
    expect(await alicePage.locator("#seats").textContent()).toBe("10 of 10 seats left");
    await screenshot(alicePage, "02-event-page");
  });

  it("pages through search results", async () => {
    const page = await bob.newPage();
    await page.goto(`${mesh.url}/?q=${encodeURIComponent(`Matinee ${tag}`)}`);
    const results = page.getByRole("list", { name: "Events" });
    const names = async () => (await results.getByRole("heading").allTextContents()).map((n) => n.slice(-2));
    await page.getByText("Page 1: 10 events").waitFor();
    expect(await names()).toEqual(["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]); // soonest first
    await page.getByRole("button", { name: "Next page" }).click();
    await page.getByText("Page 2: 2 events").waitFor();
    expect(await names()).toEqual(["11", "12"]);
    expect(await page.getByRole("button", { name: "Next page" }).isDisabled()).toBe(true);
    await screenshot(page, "03-paging");
    await page.getByRole("button", { name: "Previous page" }).click();
    await page.getByText("Page 1: 10 events").waitFor();
    expect(await page.getByRole("button", { name: "Previous page" }).isDisabled()).toBe(true);
    await page.close();
  });

  it("rejects invalid input with a message tied to the field", async () => {
    const seats = alicePage.getByLabel("Seats", { exact: true });
    await seats.fill("0");
    await alicePage.getByRole("button", { name: "Book" }).click();
    const error = alicePage.getByText("Enter a whole number of seats from 1 to 10.");
    await error.waitFor();
    expect(await seats.getAttribute("aria-invalid")).toBe("true");
    expect(await seats.getAttribute("aria-describedby")).toContain(await error.getAttribute("id"));
    await screenshot(alicePage, "04-invalid-input");
  });

  it("books two seats with a double click, once, and a second viewer sees seats drop live", async () => {
    bobPage = await bob.newPage();
    await signIn(bobPage, mesh.url, await tokenFor("bob"));
    await bobPage.goto(`${mesh.url}/events/${concert.id}`);
    await bobPage.locator('[data-live="live"]').waitFor();
    expect(await bobPage.locator("#seats").textContent()).toBe("10 of 10 seats left");

    await alicePage.getByLabel("Seats", { exact: true }).fill("2");
    await alicePage.getByRole("button", { name: "Book" }).dblclick();
    const confirmation = alicePage.getByRole("status").filter({ hasText: "Booked 2 seats" });
    await confirmation.waitFor();
    const confirmedAt = Date.now();
    await alicePage.evaluate("getSelection().removeAllRanges()"); // the double click's text selection
    await screenshot(alicePage, "05-booking-confirmed");

    // The issue's promise: the other viewer sees it within a second, without reloading.
    await bobPage.locator("#seats", { hasText: "8 of 10 seats left" }).waitFor({ timeout: 1_000 });
    console.log(`browser: second viewer saw the seats drop ${Date.now() - confirmedAt} ms after the confirmation`);
    await screenshot(bobPage, "06-second-viewer-live-update");

    // The double click booked once: one booking, two seats.
    const { bookings } = await mesh.bookingsAs("alice").listBookings({});
    expect(bookings.map((b) => b.seats)).toEqual([2]);
  });

  it("cancels the booking from My bookings and the seats come back", async () => {
    await alicePage.getByRole("link", { name: "My bookings" }).first().click();
    const list = alicePage.getByRole("list", { name: "My bookings" });
    await list.getByRole("link", { name: concert.name }).waitFor();
    expect(await list.getByRole("listitem").count()).toBe(1);
    await screenshot(alicePage, "07-my-bookings");

    await list.getByRole("button", { name: `Cancel booking for ${concert.name}` }).click();
    await alicePage.getByRole("status").filter({ hasText: "is cancelled" }).waitFor();
    expect(await list.getByRole("listitem").textContent()).toContain("Cancelled");
    await screenshot(alicePage, "08-booking-cancelled");

    await bobPage.locator("#seats", { hasText: "10 of 10 seats left" }).waitFor({ timeout: 1_000 });
    await screenshot(bobPage, "09-second-viewer-seats-returned");
  });

  it("shows a sold-out event as sold out, with no booking form", async () => {
    await bobPage.goto(`${mesh.url}/events/${soldOut.id}`);
    await bobPage.getByRole("heading", { level: 1, name: soldOut.name }).waitFor();
    await bobPage.getByText("Sold out: every seat is taken.").waitFor();
    expect(await bobPage.locator("#seats").textContent()).toBe("Sold out");
    expect(await bobPage.getByRole("button", { name: "Book" }).count()).toBe(0);
    await screenshot(bobPage, "10-sold-out");
    if (process.env.UPDATE_DOCS_SCREENSHOT) {
      await mkdir("docs", { recursive: true });
      await copyFile(path.join(ARTIFACTS, "05-booking-confirmed.png"), "docs/screenshot.png");
    }
  });

  it("lets an administrator create a location with halls and an event in it; others are told they need admin", async () => {
    // The Manage page as `token`'s holder, with the new location's first hall filled in.
    const manage = async (token: string) => {
      const context = await newPerson(browser, { viewport: PHONE });
      const page = await context.newPage();
      await signIn(page, mesh.url, token);
      await page.goto(`${mesh.url}/admin`);
      const form = page.getByRole("region", { name: "New location" });
      await form.getByLabel("Name", { exact: true }).fill(`Club ${tag}`);
      await form.getByLabel("Country").fill("fr");
      await form.getByLabel("Hall 1 name").fill("Cellar");
      await form.getByLabel("Hall 1 capacity").fill("40");
      return { context, page, form };
    };

    const visitor = await manage(await tokenFor("dave"));
    await visitor.form.getByRole("button", { name: "Create location" }).click();
    await visitor.form.getByRole("alert").filter({ hasText: "needs an administrator" }).waitFor();
    await visitor.context.close();

    const { context: admin, page: adminPage, form: newLocation } = await manage(await tokenFor("ada", { admin: true }));
    await newLocation.getByRole("button", { name: "Add a hall" }).click();
    await newLocation.getByLabel("Hall 2 name").fill("Roof");
    await newLocation.getByLabel("Hall 2 capacity").fill("0");
    await newLocation.getByRole("button", { name: "Create location" }).click();
    // The service's field violation lands on the field it names.
    const capacity = newLocation.getByLabel("Hall 2 capacity");
    await newLocation.getByText("must be greater than or equal to 1", { exact: false }).waitFor(); // the contract's rule (protovalidate)
    expect(await capacity.getAttribute("aria-invalid")).toBe("true");
    await capacity.fill("25");
    await newLocation.getByRole("button", { name: "Create location" }).click();
    await newLocation.getByRole("status").filter({ hasText: `Created location Club ${tag} with 2 halls` }).waitFor();

    const newEvent = adminPage.getByRole("region", { name: "New event" });
    await newEvent.getByLabel("Name", { exact: true }).fill(`Chanson ${tag}`);
    await newEvent.getByLabel("Location").selectOption({ label: `Club ${tag}` });
    await newEvent.getByLabel("Hall", { exact: true }).selectOption({ label: "Roof (25 seats)" });
    const local = (inHours: number) => new Date(Date.now() + inHours * HOUR - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await newEvent.getByLabel("Starts").fill(local(24));
    await newEvent.getByLabel("Ends").fill(local(26));
    await newEvent.getByRole("button", { name: "Create event" }).click();
    await newEvent.getByRole("status").filter({ hasText: `Created Chanson ${tag}` }).waitFor();
    await screenshot(adminPage, "11-admin-created");

    await newEvent.getByRole("link", { name: `Chanson ${tag}` }).click();
    await adminPage.getByRole("heading", { level: 1, name: `Chanson ${tag}` }).waitFor();
    expect(await adminPage.locator("#seats").textContent()).toBe("25 of 25 seats left");
    await adminPage.getByText(`Roof, Club ${tag} (FR)`).waitFor(); // the location, loaded after the event
    await admin.close();
  }, 90_000);
});
