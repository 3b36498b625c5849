// Resuming from the moment of connecting: the page subscribes with the
// browser's native EventSource and receives nothing but the stream's
// cursor (a lone id field). The test restarts the hub and publishes an
// update while the page's reconnection is held; once it goes through,
// EventSource sends the cursor as Last-Event-ID (the test reads it in the
// hub's log: the browser adds the header below what Playwright shows) and
// receives the update.
import { run, step, log, newPage, assert, assertClean, base } from "./lib.mjs";

const TOPIC = "https://example.com/e2e/cursor";

run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(base + "/readyz"); // same origin, no UI
  const url = base + "/.well-known/mercure?topic=" + encodeURIComponent(TOPIC);
  await page.evaluate((url) => {
    window.got = [];
    window.opens = 0;
    const es = new EventSource(url);
    es.onopen = () => { window.opens++; };
    es.onmessage = (e) => { window.got.push({ id: e.lastEventId, data: e.data }); };
  }, url);
  await page.waitForFunction(() => window.opens === 1);

  // Hold every new request of this stream until the update is published.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const ours = (u) => new URL(u).searchParams.get("topic") === TOPIC;
  await page.route((u) => ours(u.href), async (route) => {
    await held;
    await route.continue();
  });

  const { id } = await step("restart-and-publish");
  release();
  await page.waitForFunction(() => window.got.length > 0, null, { timeout: 30000 });
  const got = await page.evaluate(() => window.got);
  assert(got.length === 1 && got[0].id === id && got[0].data === "published while away",
    `events ${JSON.stringify(got)}; want only ${id}`);
  log(`received ${id} after the restart`);
  // The plain-text page has no favicon: its 404 is expected.
  assertClean(page, [/ERR_CONNECTION_REFUSED/, /net::ERR_/, /status of 503/, /status of 404/]);
});
