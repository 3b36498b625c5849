// No hub reachable: a page holds native EventSource objects through nginx
// in front of two hubs; the test stops both. nginx must answer the
// reconnections with 200 and a retry (never 502, which would close an
// EventSource for good): each EventSource must stay CONNECTING between
// attempts, never CLOSED, and once the hubs are back must receive the
// event published while they were down, and every other, exactly once.
import { run, step, log, newPage, assert, assertClean, base } from "./lib.mjs";

const TOPIC = "https://example.com/e2e/nohub";
const CLIENTS = 10;

function summary() {
  return window.clients.map((c) => ({ i: c.i, state: c.es.readyState, last: c.last, count: c.count, opens: c.opens, errors: c.errors, everClosed: c.everClosed, bad: c.bad }));
}

run(async (browser) => {
  const page = await newPage(browser);
  await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  await page.goto(base + "/readyz");
  const url = base + "/.well-known/mercure?topic=" + encodeURIComponent(TOPIC);
  await page.evaluate(({ url, n }) => {
    window.clients = [];
    for (let i = 0; i < n; i++) {
      const c = { i, last: 0, count: 0, opens: 0, errors: 0, everClosed: false, bad: null };
      const es = new EventSource(url);
      es.onopen = () => { c.opens++; };
      // An error leaves an EventSource CONNECTING (it retries) or CLOSED
      // (it gave up): the state is final when the handler runs.
      es.onerror = () => { c.errors++; if (es.readyState === EventSource.CLOSED) c.everClosed = true; };
      es.onmessage = (e) => {
        const seq = Number(e.data);
        c.count++;
        if (seq !== c.last + 1 && !c.bad) c.bad = `event ${seq} after ${c.last}`;
        c.last = Math.max(c.last, seq);
      };
      c.es = es;
      window.clients.push(c);
    }
  }, { url, n: CLIENTS });
  await page.waitForFunction(() => window.clients.every((c) => c.opens > 0), null, { timeout: 60000, polling: 100 });
  await step("publish");
  await page.waitForFunction(() => window.clients.every((c) => c.last >= 1), null, { timeout: 60000, polling: 100 });
  log(`${CLIENTS} EventSource objects open and at event 1`);

  const before = await page.evaluate(() => window.clients.map((c) => c.opens));
  await step("stop-hubs");
  // Two answers of nginx each with no hub up: each opened the
  // EventSource (a 200) and ended it, and it went on retrying.
  await page.waitForFunction((before) => window.clients.every((c, i) => c.opens >= before[i] + 2 || c.everClosed), before, { timeout: 60000, polling: 100 });
  let s = await page.evaluate(summary);
  assert(s.every((c) => !c.everClosed), `EventSource objects gave up (CLOSED) while no hub was up: ${JSON.stringify(s)}`);
  log(`no hub up: every EventSource was answered twice and retries; ${JSON.stringify(s[0])}`);

  await step("publish"); // event 2, stored while no hub behind nginx is up
  s = await page.evaluate(summary);
  assert(s.every((c) => c.last === 1 && c.state !== 2), `while no hub was up: ${JSON.stringify(s)}`);
  await step("start-hubs");
  await step("publish");
  try {
    await page.waitForFunction(() => window.clients.every((c) => c.last >= 3) || window.clients.some((c) => c.everClosed), null, { timeout: 60000, polling: 100 });
  } catch (err) {
    throw new Error(`not every EventSource came back to event 3: ${JSON.stringify(await page.evaluate(summary))}`);
  }
  s = await page.evaluate(summary);
  assert(s.every((c) => !c.everClosed && c.state !== 2), `EventSource objects gave up (CLOSED): ${JSON.stringify(s)}`);
  assert(s.every((c) => c.count === 3 && c.last === 3 && !c.bad), `not every EventSource got events 1, 2, 3 exactly once, in order: ${JSON.stringify(s)}`);
  log(`every one of ${CLIENTS} EventSource objects got events 1, 2 and 3 exactly once, in order`);
  // Connection errors while the hubs are down are expected noise.
  assertClean(page, [/net::ERR_/]);
}, { args: ["--ignore-certificate-errors"] });
