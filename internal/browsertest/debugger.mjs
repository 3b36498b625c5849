// The debugger: subscribe with a token, publish with the form, see the
// event within a second; a private event published over HTTP arrives too;
// history lists both; resuming from the first ID replays the second.
import { run, step, log, newPage, shot, assert, assertClean, base, token, PHONE } from "./lib.mjs";

const TOPIC = "https://example.com/e2e/books/{id}";

run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(base + "/");
  assert((await page.title()) === "Debugger · ssehub", "title " + (await page.title()));

  // Subscribe through the form (fetch transport, token in a header).
  await page.getByLabel("Selectors", { exact: true }).fill(TOPIC);
  await page.getByLabel("Subscriber token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Subscribe", exact: true }).click();
  await page.locator('#sub-status[data-state="open"]').waitFor();

  // Publish with the form; the event must appear within a second of the
  // hub acknowledging the publish.
  await page.getByLabel("Topics", { exact: true }).fill("https://example.com/e2e/books/1");
  await page.getByLabel("Data", { exact: true }).fill('{"title":"Dune"}');
  await page.getByLabel("Type", { exact: true }).fill("book-updated");
  await page.getByLabel("Publisher token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Publish" }).click();
  await page.locator("#pub-result[data-id]").waitFor();
  const id1 = await page.locator("#pub-result").getAttribute("data-id");
  assert(id1.startsWith("urn:uuid:"), "published ID " + id1);
  const row1 = page.locator(`#events li[data-id="${id1}"]`);
  await row1.waitFor({ timeout: 1000 });
  log("form publish", id1, "shown");
  assert((await row1.locator(".ev-type").textContent()) === "book-updated", "type");
  assert((await row1.locator(".ev-data").textContent()) === '{"title":"Dune"}', "data");
  // The topic is filled in from the history endpoint.
  await row1.locator(".ev-topic", { hasText: "https://example.com/e2e/books/1" }).waitFor();

  // A private event published by the test over HTTP: the token may read it.
  const { id: id2 } = await step("publish-private", { topic: "https://example.com/e2e/books/2", data: "secret" });
  const row2 = page.locator(`#events li[data-id="${id2}"]`);
  await row2.waitFor({ timeout: 1000 });
  log("http publish", id2, "shown");
  await row2.locator(".ev-topic", { hasText: "https://example.com/e2e/books/2" }).waitFor();
  assert((await page.locator("#ev-count").textContent()).startsWith("2 received"), "counter");

  // History lists both, oldest first.
  await page.getByLabel("Topic selector", { exact: true }).fill(TOPIC);
  await page.getByRole("button", { name: "Load" }).click();
  await page.locator("#hist-rows tr").nth(1).waitFor();
  const hist = await page.locator("#hist-rows tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
  assert(JSON.stringify(hist) === JSON.stringify([id1, id2]), "history " + JSON.stringify(hist));

  // Desktop and phone screenshots of a debugging session.
  await shot(page, "debugger-desktop");
  await page.setViewportSize(PHONE);
  await shot(page, "debugger-phone");
  // On a phone the page must not scroll sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert(overflow <= 0, `the phone layout is ${overflow}px wider than the screen`);

  // Resume after the first ID: the second is replayed.
  await page.getByRole("button", { name: "Stop" }).click();
  await page.getByLabel("Resume after ID", { exact: true }).fill(id1);
  await page.getByRole("button", { name: "Subscribe", exact: true }).click();
  await page.locator(`#events li[data-id="${id2}"]`).nth(1).waitFor();
  assert((await page.locator(`#events li[data-id="${id1}"]`).count()) === 1, "the resume replayed the event it resumed after");

  // EventSource with a token: the page puts it in the mercureAuthorization
  // cookie for the hub path, so the browser's own client reads a private
  // event, published here with the form's ID and Private fields.
  await page.getByRole("button", { name: "Stop" }).click();
  await page.getByLabel("Resume after ID", { exact: true }).fill("");
  await page.getByRole("radio", { name: "EventSource" }).check();
  // The form still publishes with type book-updated, which EventSource
  // delivers only to a page that listens for it by name.
  await page.getByLabel("Other event types for EventSource", { exact: true }).fill("book-updated");
  await page.getByRole("button", { name: "Subscribe", exact: true }).click();
  await page.locator('#sub-status[data-state="open"]').waitFor();
  const cookies = await page.context().cookies(base + "/.well-known/mercure");
  assert(cookies.some((c) => c.name === "mercureAuthorization" && c.value === token && c.path === "/.well-known/mercure" && c.sameSite === "Strict"), "no mercureAuthorization cookie for the hub path");
  await page.getByLabel("Topics", { exact: true }).fill("https://example.com/e2e/books/3");
  await page.getByLabel("ID", { exact: true }).fill("e2e-private-3");
  await page.getByRole("checkbox", { name: /Private/ }).check();
  await page.getByRole("button", { name: "Publish" }).click();
  await page.locator('#pub-result[data-id="e2e-private-3"]').waitFor();
  await page.locator('#events li[data-id="e2e-private-3"]').waitFor({ timeout: 1000 });
  await page.getByRole("button", { name: "Stop" }).click();
  const left = await page.context().cookies(base + "/.well-known/mercure");
  assert(!left.some((c) => c.name === "mercureAuthorization"), "the cookie outlived the subscription");
  await page.getByRole("radio", { name: "fetch stream" }).check();

  // Refusals are shown, not swallowed: a bad token.
  await page.getByLabel("Subscriber token", { exact: true }).fill("not-a-token");
  await page.getByRole("button", { name: "Subscribe", exact: true }).click();
  await page.locator('#sub-status[data-state="error"]', { hasText: "HTTP 401" }).waitFor();

  assertClean(page, [/status of 401/]);
});
