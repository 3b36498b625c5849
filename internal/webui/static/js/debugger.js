// The debugger page: subscribe, watch events, publish, browse history.
import { fetchStream, nativeStream } from "./sse.js";
import { $, el, HUB, HISTORY, clock, setStatus, wireTokenToggle, cleanToken, setAuthCookie, readError } from "./common.js";

const MAX_ROWS = 1000;

const ui = {
  subForm: $("#sub-form"),
  selectors: $("#sub-selectors"),
  last: $("#sub-last"),
  subToken: $("#sub-token"),
  types: $("#sub-types"),
  start: $("#sub-start"),
  stop: $("#sub-stop"),
  subStatus: $("#sub-status"),
  pubForm: $("#pub-form"),
  pubTopics: $("#pub-topics"),
  pubData: $("#pub-data"),
  pubType: $("#pub-type"),
  pubId: $("#pub-id"),
  pubIdem: $("#pub-idem"),
  pubPrivate: $("#pub-private"),
  pubToken: $("#pub-token"),
  pubSend: $("#pub-send"),
  pubResult: $("#pub-result"),
  events: $("#events"),
  empty: $("#ev-empty"),
  count: $("#ev-count"),
  filter: $("#ev-filter"),
  pause: $("#ev-pause"),
  clear: $("#ev-clear"),
  histForm: $("#hist-form"),
  histTopic: $("#hist-topic"),
  histAfter: $("#hist-after"),
  histLimit: $("#hist-limit"),
  histNext: $("#hist-next"),
  histResume: $("#hist-resume"),
  histResult: $("#hist-result"),
  histTable: $("#hist-table"),
  histRows: $("#hist-rows"),
};

$("#hub-url").textContent = HUB;
wireTokenToggle($("#sub-token-show"), ui.subToken);
wireTokenToggle($("#pub-token-show"), ui.pubToken);

// Prefill from the query string, so a debugging session can be linked:
// /?topic=a&topic=b&last=ID&transport=eventsource&subscribe=1
{
  const q = new URLSearchParams(location.search);
  const topics = q.getAll("topic");
  if (topics.length) ui.selectors.value = topics.join("\n");
  if (q.has("last")) ui.last.value = q.get("last");
  if (q.get("transport") === "eventsource") ui.subForm.elements.transport.value = "eventsource";
  if (q.has("pubtopic")) ui.pubTopics.value = q.getAll("pubtopic").join("\n");
  if (q.get("subscribe") === "1") queueMicrotask(() => ui.subForm.requestSubmit());
}

// ---- Subscribing -------------------------------------------------------

let sub = null; // {stream, resolver, transport}
let received = 0;
let paused = false;
let held = []; // rows received while paused

function selectorParams() {
  const kind = ui.subForm.elements.kind.value;
  const lines = ui.selectors.value.split("\n").map((s) => s.trim()).filter(Boolean);
  const p = new URLSearchParams();
  for (const s of lines) p.append(kind, s);
  return p;
}

function stopSubscription(message) {
  if (!sub) return;
  const s = sub;
  sub = null;
  s.stream.close();
  if (s.cookie) setAuthCookie("");
  ui.start.disabled = false;
  ui.stop.disabled = true;
  ui.start.textContent = "Subscribe";
  if (message) setStatus(ui.subStatus, "idle", message);
}

ui.subForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const params = selectorParams();
  if ([...params.keys()].length === 0) {
    setStatus(ui.subStatus, "error", "Enter at least one selector.");
    ui.selectors.focus();
    return;
  }
  stopSubscription();
  const transport = ui.subForm.elements.transport.value;
  const token = cleanToken(ui.subToken.value);
  const lastEventId = ui.last.value.trim();
  const url = new URL(HUB);
  url.search = params.toString();
  const resolver = new TopicResolver(params, transport === "fetch" ? token : "", lastEventId && lastEventId !== "earliest" ? lastEventId : "");
  const onState = (state, detail) => {
    if (!sub || sub.resolver !== resolver) return;
    const text = {
      connecting: "Connecting…",
      open: `Subscribed (${transport === "fetch" ? "fetch" : "EventSource"}) to ${[...params.values()].join(", ")}.`,
      reconnecting: "Reconnecting",
      closed: "Stopped.",
      error: "Refused",
    }[state];
    setStatus(ui.subStatus, state, detail ? `${text}: ${detail}` : text);
    // How often the page had to open a new EventSource because the
    // browser gave up (tests read it).
    if (sub && sub.stream.reopened) ui.subStatus.dataset.reopened = String(sub.stream.reopened());
    if (state === "error") stopSubscription();
  };
  const onEvent = (ev) => addEvent(ev, resolver);
  let stream;
  let cookie = false;
  if (transport === "eventsource") {
    if (token) { setAuthCookie(token); cookie = true; }
    const types = ui.types.value.split(",").map((s) => s.trim()).filter(Boolean);
    stream = nativeStream(url.href, { lastEventId, types, onEvent, onState });
  } else {
    stream = fetchStream(url.href, { token, lastEventId, onEvent, onState });
  }
  sub = { stream, resolver, cookie };
  ui.start.textContent = "Resubscribe";
  ui.stop.disabled = false;
});

ui.stop.addEventListener("click", () => {
  stopSubscription("Stopped.");
  ui.start.focus();
});

// ---- The event log -----------------------------------------------------

function addEvent(ev, resolver) {
  received++;
  const gap = ev.type === "ssehub.gap";
  const now = new Date();
  const topic = el("b", { class: "ev-topic", text: gap ? "—" : "…" });
  const li = el("li", { class: "new", dataset: { id: gap ? "" : ev.lastEventId, type: ev.type } },
    el("div", { class: "ev-meta" },
      el("span", { class: "ev-type" + (gap ? " gap" : ""), text: ev.type }),
      el("span", {}, "ID ", el("b", { class: "mono ev-id", text: gap ? "—" : (ev.lastEventId || "(none)") })),
      el("span", {}, "Topic ", topic),
      el("time", { datetime: now.toISOString(), text: clock(now) })),
    el("pre", { class: "ev-data", text: ev.data }));
  li.addEventListener("animationend", () => li.classList.remove("new"), { once: true });
  if (!gap && ev.lastEventId) resolver.add(topic, ev.lastEventId, li);
  if (gap) topic.textContent = "— (the hub could not replay everything; see the data)";
  if (paused) held.push(li);
  else show([li]);
  updateCount();
}

function show(rows) {
  const f = ui.filter.value.trim().toLowerCase();
  for (const li of rows) {
    if (f && !li.textContent.toLowerCase().includes(f)) li.hidden = true;
    ui.events.prepend(li);
  }
  while (ui.events.childElementCount > MAX_ROWS) ui.events.lastElementChild.remove();
  ui.empty.hidden = ui.events.childElementCount > 0;
}

function updateCount() {
  let text = `${received} received`;
  if (paused && held.length) text += `, ${held.length} held while paused`;
  if (received > MAX_ROWS) text += `, newest ${MAX_ROWS} shown`;
  ui.count.textContent = text;
}

ui.pause.addEventListener("click", () => {
  paused = !paused;
  ui.pause.setAttribute("aria-pressed", String(paused));
  ui.pause.textContent = paused ? "Resume" : "Pause";
  if (!paused && held.length) {
    const rows = held;
    held = [];
    show(rows);
  }
  updateCount();
});

ui.clear.addEventListener("click", () => {
  ui.events.replaceChildren();
  held = [];
  received = 0;
  ui.empty.hidden = false;
  updateCount();
});

ui.filter.addEventListener("input", () => {
  const f = ui.filter.value.trim().toLowerCase();
  for (const li of ui.events.children) li.hidden = !!f && !li.textContent.toLowerCase().includes(f);
});

/**
 * TopicResolver fills in the topics of received events. The event stream
 * does not carry topics, so it asks the history endpoint, with the same
 * selectors and token, for the events after the last one it resolved, and
 * matches them by ID. The first lookup of a fresh subscription starts at
 * the oldest retained event and reads at most MAX_PAGES pages.
 */
class TopicResolver {
  static MAX_PAGES = 5;

  constructor(params, token, after) {
    this.params = params;
    this.token = token;
    this.after = after; // "" when unknown
    this.queue = [];
    this.busy = false;
  }

  add(node, id, row) {
    this.queue.push({ node, id, row });
    if (!this.busy) {
      this.busy = true;
      setTimeout(() => this.run(), 100);
    }
  }

  async run() {
    while (this.queue.length) {
      const batch = this.queue.splice(0);
      try {
        await this.resolve(batch);
      } catch (err) {
        for (const b of batch) if (b.node.textContent === "…") b.node.textContent = "(lookup failed)";
      }
    }
    this.busy = false;
  }

  async resolve(batch) {
    const pending = batch.slice();
    let cursor = "";
    for (let page = 0; page < TopicResolver.MAX_PAGES && pending.length; page++) {
      const u = new URL(HISTORY);
      u.search = this.params.toString();
      u.searchParams.set("limit", "1000");
      if (cursor) u.searchParams.set("cursor", cursor);
      else if (this.after) u.searchParams.set("after", this.after);
      const headers = this.token ? { Authorization: "Bearer " + this.token } : {};
      const res = await fetch(u, { headers, cache: "no-store", credentials: "same-origin" });
      if (!res.ok) {
        const why = await readError(res);
        for (const b of pending) b.node.textContent = `(history: ${why})`;
        return;
      }
      const body = await res.json();
      for (const ev of body.events) {
        const i = pending.findIndex((b) => b.id === ev.id);
        if (i < 0) continue;
        const [b] = pending.splice(i, 1);
        b.node.textContent = ev.topics[0] + (ev.topics.length > 1 ? ` (+${ev.topics.length - 1})` : "");
        b.node.title = ev.topics.join("\n");
        b.row.dataset.topics = JSON.stringify(ev.topics);
      }
      if (!body.more) break;
      cursor = body.next_cursor;
    }
    for (const b of pending) b.node.textContent = "(not found in retained history)";
    // Later lookups start after this batch: the stream and the history
    // list the same events in the same order.
    this.after = batch[batch.length - 1].id;
  }
}

// ---- Publishing --------------------------------------------------------

ui.pubForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const topics = ui.pubTopics.value.split("\n").map((s) => s.trim()).filter(Boolean);
  const result = (ok, text) => {
    ui.pubResult.className = "result " + (ok ? "ok" : "err");
    ui.pubResult.textContent = text;
  };
  if (topics.length === 0) {
    result(false, "Enter at least one topic.");
    ui.pubTopics.focus();
    return;
  }
  const body = new URLSearchParams();
  for (const t of topics) body.append("topic", t);
  body.set("data", ui.pubData.value);
  if (ui.pubType.value.trim()) body.set("type", ui.pubType.value.trim());
  if (ui.pubId.value.trim()) body.set("id", ui.pubId.value.trim());
  if (ui.pubPrivate.checked) body.set("private", "on");
  const headers = { "Content-Type": "application/x-www-form-urlencoded" };
  const token = cleanToken(ui.pubToken.value);
  if (token) headers.Authorization = "Bearer " + token;
  if (ui.pubIdem.value.trim()) headers["Idempotency-Key"] = ui.pubIdem.value.trim();
  ui.pubSend.disabled = true;
  result(true, "Publishing…");
  try {
    const res = await fetch(HUB, { method: "POST", headers, body, cache: "no-store", credentials: "same-origin" });
    if (res.ok) {
      const id = (await res.text()).trim();
      ui.pubResult.dataset.id = id;
      result(true, `Published ${id} at ${clock(new Date())}.`);
    } else {
      result(false, "Not published: " + (await readError(res)));
    }
  } catch (err) {
    result(false, "Not published: network error: " + err.message);
  } finally {
    ui.pubSend.disabled = false;
  }
});

// ---- History -------------------------------------------------------------

let histQuery = null; // the last query, for "Next page"
let histLastId = "";

async function loadHistory(cursor) {
  const topic = ui.histTopic.value.trim();
  const limit = Number(ui.histLimit.value);
  const result = (ok, text) => {
    ui.histResult.className = "result " + (ok ? "ok" : "err");
    ui.histResult.textContent = text;
  };
  if (!topic) { result(false, "Enter a topic selector."); ui.histTopic.focus(); return; }
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) { result(false, "The page size must be a whole number from 1 to 1000."); ui.histLimit.focus(); return; }
  const u = new URL(HISTORY);
  u.searchParams.set("topic", topic);
  u.searchParams.set("limit", String(limit));
  if (cursor) u.searchParams.set("cursor", cursor);
  else if (ui.histAfter.value.trim()) u.searchParams.set("after", ui.histAfter.value.trim());
  const token = cleanToken(ui.subToken.value);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  result(true, "Loading…");
  let body;
  try {
    const res = await fetch(u, { headers, cache: "no-store", credentials: "same-origin" });
    if (!res.ok) { result(false, await readError(res)); return; }
    body = await res.json();
  } catch (err) {
    result(false, "Network error: " + err.message);
    return;
  }
  if (!cursor) ui.histRows.replaceChildren();
  for (const ev of body.events) {
    const t = new Date(ev.time);
    ui.histRows.append(el("tr", { dataset: { id: ev.id } },
      el("td", { class: "mono", dataset: { label: "ID" }, text: ev.id }),
      el("td", { dataset: { label: "Type" }, text: ev.type }),
      el("td", { class: "mono", dataset: { label: "Topics" }, text: ev.topics.join("\n") }),
      el("td", { dataset: { label: "Time" } }, el("time", { datetime: ev.time, title: ev.time, text: t.toLocaleDateString() + " " + clock(t) })),
      el("td", { class: "data", dataset: { label: "Data" }, text: ev.data })));
  }
  ui.histTable.hidden = ui.histRows.childElementCount === 0;
  histQuery = body.more ? body.next_cursor : null;
  histLastId = body.last_event_id || "";
  ui.histNext.disabled = !histQuery;
  ui.histResume.disabled = !histLastId;
  let text = `${body.events.length} event${body.events.length === 1 ? "" : "s"} loaded (${ui.histRows.childElementCount} shown).`;
  if (body.gap) text += ` Gap: ${body.gap} — the page starts at the oldest retained event.`;
  text += body.more ? " More may follow." : " End of retained history.";
  if (histLastId) text += ` Last ID: ${histLastId}.`;
  result(!body.gap, text);
}

ui.histForm.addEventListener("submit", (e) => { e.preventDefault(); loadHistory(""); });
ui.histNext.addEventListener("click", () => { if (histQuery) loadHistory(histQuery); });
ui.histResume.addEventListener("click", () => {
  ui.selectors.value = ui.histTopic.value.trim();
  ui.subForm.elements.kind.value = "topic";
  ui.last.value = histLastId;
  ui.last.focus();
});
