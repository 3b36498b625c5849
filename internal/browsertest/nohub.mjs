// No hub reachable: native EventSource objects through nginx in front of
// two hubs, the test stops both. nginx must answer the reconnections with
// 200 and a retry (never 502, which would close an EventSource for good):
// each EventSource must stay CONNECTING between attempts, never CLOSED,
// and once the hubs are back must receive the event published while they
// were down, and every other, exactly once. Half the EventSource objects
// are on a page of another origin (nginx under the name localhost, which
// the hubs allow with --cors-origin) and send credentials: nginx's answer
// must pass Chromium's CORS check as the hubs' do.
import { run, step, log, newPage, assert, assertClean, base } from "./lib.mjs";

const TOPIC = "https://example.com/e2e/nohub";
const PER_PAGE = 5;
const APP = base.replace("//127.0.0.1:", "//localhost:");

// clients is evaluated in a page: the state of its EventSource objects.
function clients() {
  return window.clients.map((c) => ({ origin: location.origin, i: c.i, state: c.es.readyState, last: c.last, count: c.count, opens: c.opens, errors: c.errors, everClosed: c.everClosed, bad: c.bad }));
}

// open is evaluated in a page: it opens n EventSource objects on url.
function open({ url, n, withCredentials }) {
  window.clients = [];
  for (let i = 0; i < n; i++) {
    const c = { i, last: 0, count: 0, opens: 0, errors: 0, everClosed: false, bad: null };
    const es = new EventSource(url, { withCredentials });
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
}

run(async (browser) => {
  const same = await newPage(browser);
  await same.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  await same.goto(base + "/readyz");
  const other = await newPage(browser);
  await other.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  await other.goto(APP + "/readyz");
  const pages = [same, other];
  const url = base + "/.well-known/mercure?topic=" + encodeURIComponent(TOPIC);
  await same.evaluate(open, { url, n: PER_PAGE, withCredentials: false });
  await other.evaluate(open, { url, n: PER_PAGE, withCredentials: true });
  const all = async () => (await Promise.all(pages.map((p) => p.evaluate(clients)))).flat();
  // until waits for cond over every client, failing with what after 60 s.
  const until = async (what, cond) => {
    for (const deadline = Date.now() + 60000; ; ) {
      const s = await all();
      if (cond(s)) return s;
      if (Date.now() > deadline) throw new Error(`${what}: not within 60 s: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  await until("every EventSource open", (s) => s.every((c) => c.opens > 0));
  await step("publish");
  let s = await until("every EventSource at event 1", (s) => s.every((c) => c.last >= 1));
  log(`${s.length} EventSource objects open and at event 1`);

  const before = s.map((c) => c.opens);
  await step("stop-hubs");
  // Two answers of nginx each with no hub up: each opened the
  // EventSource (a 200) and ended it, and it went on retrying.
  s = await until("two answers with no hub up", (s) => s.every((c, i) => c.opens >= before[i] + 2 || c.everClosed));
  assert(s.every((c) => !c.everClosed), `EventSource objects gave up (CLOSED) while no hub was up: ${JSON.stringify(s)}`);
  log(`no hub up: every EventSource was answered twice and retries; ${JSON.stringify(s[0])} ${JSON.stringify(s[s.length - 1])}`);

  await step("publish"); // event 2, stored while no hub behind nginx is up
  s = await all();
  assert(s.every((c) => c.last === 1 && c.state !== 2), `while no hub was up: ${JSON.stringify(s)}`);
  await step("start-hubs");
  await step("publish");
  s = await until("every EventSource back at event 3", (s) => s.every((c) => c.last >= 3) || s.some((c) => c.everClosed));
  assert(s.every((c) => !c.everClosed && c.state !== 2), `EventSource objects gave up (CLOSED): ${JSON.stringify(s)}`);
  assert(s.every((c) => c.count === 3 && c.last === 3 && !c.bad), `not every EventSource got events 1, 2, 3 exactly once, in order: ${JSON.stringify(s)}`);
  log(`every one of ${s.length} EventSource objects (${PER_PAGE} from ${APP}, with credentials) got events 1, 2 and 3 exactly once, in order`);
  // Connection errors while the hubs are down are expected noise; the
  // page of the other origin is the test's own.
  for (const p of pages) assertClean(p, [/net::ERR_/, /^request to another origin: https:\/\/localhost:/]);
}, { args: ["--ignore-certificate-errors"] });
