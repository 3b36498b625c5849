// Rolling restart: one page holds 200 native EventSource objects on one
// topic, through nginx (HTTP/2, so that they share one connection instead
// of Chromium's six per host) in front of three hubs sharing Redis, each
// with --max-streams 80. The test publishes numbered events (data 1, 2,
// 3, ...) throughout and restarts the hubs one after the other with
// SIGTERM; while one is down the other two cannot hold every stream, so
// some reconnections are refused for the stream limit. Every EventSource
// must keep receiving: each must end with every event exactly once, in
// order, and none may be CLOSED.
import { run, step, log, newPage, assert, assertClean, base } from "./lib.mjs";

const TOPIC = "https://example.com/e2e/rolling";
const CLIENTS = Number(process.env.SSEHUB_CLIENTS || 200);

// summary is evaluated in the page.
function summary() {
  const cs = window.clients;
  const s = { clients: cs.length, opened: 0, closed: 0, minLast: Infinity, maxLast: 0, dup: 0, lost: 0, gaps: 0, opens: 0, errors: 0, bad: [] };
  for (const c of cs) {
    if (c.opens > 0) s.opened++;
    if (c.es.readyState === EventSource.CLOSED) s.closed++;
    s.minLast = Math.min(s.minLast, c.last);
    s.maxLast = Math.max(s.maxLast, c.last);
    s.dup += c.dup;
    s.lost += c.lost;
    s.gaps += c.gaps;
    s.opens += c.opens;
    s.errors += c.errors;
    if (c.bad && s.bad.length < 5) s.bad.push(`client ${c.i}: ${c.bad}`);
  }
  return s;
}

run(async (browser) => {
  const page = await newPage(browser);
  // Any page of the origin will do; the hubs have no favicon to give it.
  await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  await page.goto(base + "/readyz");
  // last_event_id=earliest: a client refused before its first event
  // reconnects without a Last-Event-ID header, and then replays from the
  // start instead of missing what was published meanwhile. Once it has an
  // event, the header wins over the parameter.
  const url = base + "/.well-known/mercure?topic=" + encodeURIComponent(TOPIC) + "&last_event_id=earliest";
  await page.evaluate(({ url, n }) => {
    window.clients = [];
    for (let i = 0; i < n; i++) {
      const c = { i, last: 0, count: 0, dup: 0, lost: 0, gaps: 0, opens: 0, errors: 0, bad: null };
      const es = new EventSource(url);
      es.onopen = () => { c.opens++; };
      es.onerror = () => { c.errors++; };
      es.onmessage = (e) => {
        const seq = Number(e.data);
        c.count++;
        if (seq !== c.last + 1) {
          if (seq <= c.last) c.dup++; else c.lost += seq - c.last - 1;
          if (!c.bad) c.bad = `event ${seq} after ${c.last}`;
        }
        c.last = Math.max(c.last, seq);
      };
      es.addEventListener("ssehub.gap", (e) => { c.gaps++; if (!c.bad) c.bad = "gap " + e.data; });
      c.es = es;
      window.clients.push(c);
    }
  }, { url, n: CLIENTS });
  await page.waitForFunction((n) => window.clients.filter((c) => c.opens > 0).length === n, CLIENTS, { timeout: 60000, polling: 250 });
  log(`${CLIENTS} EventSource objects open`);

  await step("start-publishing");
  const caughtUp = async (n, what) => {
    try {
      // An EventSource that gave up never catches up: fail at once.
      await page.waitForFunction((n) => window.clients.every((c) => c.last >= n) || window.clients.some((c) => c.es.readyState === EventSource.CLOSED), n, { timeout: 90000, polling: 250 });
      const closed = await page.evaluate(() => window.clients.filter((c) => c.es.readyState === EventSource.CLOSED).length);
      assert(closed === 0, `${what}: ${closed} EventSource objects gave up (CLOSED): ${JSON.stringify(await page.evaluate(summary))}`);
    } catch (err) {
      if ((err.message || "").includes("gave up (CLOSED)")) throw err;
      const behind = await page.evaluate((n) => window.clients.filter((c) => c.last < n).slice(0, 10).map((c) => ({ i: c.i, state: c.es.readyState, last: c.last, opens: c.opens, errors: c.errors })), n);
      throw new Error(`${what}: not every client reached event ${n}: ${JSON.stringify(await page.evaluate(summary))}; behind: ${JSON.stringify(behind)}`);
    }
  };
  for (const hub of [0, 1, 2]) {
    const { published } = await step("published");
    await caughtUp(published, `before restarting hub ${hub}`);
    const r = await step("restart", { hub });
    log(`hub ${hub} restarted; stream-limit refusals so far: ${r.refusals}; ${JSON.stringify(await page.evaluate(summary))}`);
  }
  const { total } = await step("stop-publishing");
  await caughtUp(total, "after the last restart");
  const s = await page.evaluate(summary);
  log(`final: ${JSON.stringify(s)}`);
  assert(s.closed === 0, `${s.closed} EventSource objects gave up (CLOSED)`);
  assert(s.dup === 0 && s.lost === 0 && s.gaps === 0, `duplicated ${s.dup}, lost ${s.lost}, gap notices ${s.gaps}: ${s.bad.join("; ")}`);
  const exact = await page.evaluate((n) => window.clients.filter((c) => c.count === n && c.last === n && !c.bad).length, total);
  assert(exact === CLIENTS, `${CLIENTS - exact} clients did not get each of the ${total} events exactly once`);
  log(`every one of ${CLIENTS} clients got all ${total} events exactly once, in order; reconnections: ${s.opens - CLIENTS}`);
  // Chromium logs nothing for a reconnection; network errors while a hub
  // restarts are expected noise.
  assertClean(page, [/net::ERR_/]);
}, { args: ["--ignore-certificate-errors"] });
