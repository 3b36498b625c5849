// Reconnection: the page subscribes with the browser's native EventSource;
// the test stops the hub with SIGTERM and starts it again on the same port
// and data directory. EventSource reconnects with Last-Event-ID, and the
// page must hold every event exactly once, in order.
import { run, step, log, newPage, assert, assertClean, base } from "./lib.mjs";

const TOPIC = "https://example.com/e2e/reconnect";

run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(base + "/");
  await page.getByLabel("Selectors", { exact: true }).fill(TOPIC);
  await page.getByRole("radio", { name: "EventSource" }).check();
  await page.getByRole("button", { name: "Subscribe", exact: true }).click();
  await page.locator('#sub-status[data-state="open"]').waitFor();

  const ids = [];
  const before = await step("publish", { n: 10 });
  ids.push(...before.ids);
  await page.locator(`#events li[data-id="${ids.at(-1)}"]`).waitFor();

  await step("restart");
  const after = await step("publish", { n: 10 });
  ids.push(...after.ids);
  await page.locator(`#events li[data-id="${ids.at(-1)}"]`).waitFor({ timeout: 30000 });

  // The list shows the newest first.
  const got = (await page.locator("#events li").evaluateAll((rows) => rows.map((r) => r.dataset.id))).reverse();
  assert(JSON.stringify(got) === JSON.stringify(ids), `events ${JSON.stringify(got)}; want ${JSON.stringify(ids)}`);
  const reopened = Number((await page.locator("#sub-status").getAttribute("data-reopened")) || 0);
  log(`all ${ids.length} events exactly once, in order; new EventSource objects the page had to open: ${reopened}`);
  // Requests refused while the hub was down are expected console noise.
  assertClean(page, [/ERR_CONNECTION_REFUSED/, /net::ERR_/, /status of 503/]);
});
