// The dashboard: the hub's stats stream drawn as live charts.
import { fetchStream } from "./sse.js";
import { $, el, STATS, clock, num, bytes, setStatus, wireTokenToggle, cleanToken } from "./common.js";
import { Sparkline } from "./chart.js";

const WINDOW = 120; // points per chart: two minutes at one snapshot a second

// Each card shows one figure now, a chart of its last two minutes and a
// line of context. rate: the figure is a per-second rate, which the first
// snapshot of a connection does not have.
const CARDS = [
  { key: "subscribers", title: "Subscribers", value: (s) => s.subscribers, sub: () => "open subscriptions" },
  { key: "published_rate", title: "Published", unit: "/s", rate: true, value: (s) => s.rates.published, sub: (s) => `${num(s.published)} updates stored by this hub` },
  { key: "delivered_rate", title: "Delivered", unit: "/s", rate: true, value: (s) => s.rates.delivered, sub: (s) => `${num(s.delivered)} queued to subscribers` },
  { key: "dispatched_rate", title: "Dispatched", unit: "/s", rate: true, value: (s) => s.rates.dispatched, sub: (s) => `${num(s.dispatched)} fanned out from the store` },
  { key: "replayed_rate", title: "Replayed", unit: "/s", rate: true, value: (s) => s.rates.replayed, sub: (s) => `${num(s.replayed)} served from history on resume` },
  { key: "slow_consumers", title: "Slow consumers", value: (s) => s.slow_consumers, sub: (s) => `disconnected for falling behind; now ${num(s.rates.slow_consumers)}/s` },
  { key: "gaps", title: "Gaps", value: (s) => s.gaps, sub: (s) => gapText(s) },
  { key: "store_retained", title: "Retained updates", store: true, value: (s) => s.store.retained, sub: (s) => storeText(s.store) },
  { key: "store_latency", title: "Store latency", unit: "ms", store: true, value: (s) => s.store.latency_ms, sub: (s) => s.store.error ? `store ${s.store.error}` : "time to answer a bounds query" },
];

const cards = new Map(); // key -> {value, sub, chart, svg, def}
const container = $("#cards");
const status = $("#dash-status");
const totals = $("#totals");
$("#stats-url").textContent = STATS;
wireTokenToggle($("#dash-token-show"), $("#dash-token"));

function card(def) {
  let c = cards.get(def.key);
  if (c) return c;
  const id = "card-" + def.key.replace(/[^a-z0-9_-]/gi, "_");
  const value = el("output", { class: "value", id: id + "-value", dataset: { metric: def.key }, text: "–" });
  const unit = el("span", { class: "unit", text: def.unit ? " " + def.unit : "" });
  const sub = el("p", { class: "sub" });
  const peak = el("p", { class: "peak", "aria-hidden": "true" });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${def.title}: no data yet`);
  const section = el("section", { class: "card", "aria-labelledby": id + "-title", dataset: { card: def.key } },
    el("h3", { id: id + "-title", text: def.title }),
    el("p", { class: "value-line" }, value, unit),
    sub);
  section.append(svg, peak);
  container.append(section);
  c = { value, sub, svg, peak, chart: new Sparkline(svg, WINDOW), def, labelAt: 0 };
  cards.set(def.key, c);
  return c;
}

for (const def of CARDS) if (!def.store) card(def);

const TOTALS = [
  ["subscribers", "Subscribers now", (s) => num(s.subscribers)],
  ["published", "Published", (s) => num(s.published)],
  ["dispatched", "Dispatched", (s) => num(s.dispatched)],
  ["delivered", "Delivered", (s) => num(s.delivered)],
  ["replayed", "Replayed", (s) => num(s.replayed)],
  ["slow_consumers", "Slow consumers", (s) => num(s.slow_consumers)],
  ["gaps", "Gaps", (s) => num(s.gaps)],
  ["uptime_seconds", "Uptime", (s) => duration(s.uptime_seconds)],
];
const totalNodes = new Map();
for (const [key, label] of TOTALS) {
  const dd = el("dd", { id: "total-" + key, dataset: { total: key }, text: "–" });
  totals.append(el("dt", { text: label }), dd);
  totalNodes.set(key, dd);
}

function gapText(s) {
  const by = s.gaps_by_reason || {};
  const parts = Object.entries(by).filter(([, n]) => n > 0).map(([r, n]) => `${num(n)} ${r}`);
  return "resumes that could not replay everything" + (parts.length ? ": " + parts.join(", ") : "");
}

function storeText(st) {
  const parts = [];
  if (st.retained_bytes != null) parts.push(`${bytes(st.retained_bytes)} of updates`);
  if (st.disk_bytes != null) parts.push(`${bytes(st.disk_bytes)} on disk`);
  return parts.length ? parts.join(", ") : "history kept by the store";
}

function duration(sec) {
  const s = Math.floor(sec);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

function update(snap) {
  const defs = CARDS.filter((d) => !d.store || snap.store);
  for (const [k, v] of Object.entries(snap.extra || {})) {
    defs.push({ key: "extra:" + k, title: k.replace(/_/g, " "), value: (s) => s.extra[k], sub: () => "reported by the hub's metrics" });
  }
  const now = Date.now();
  for (const def of defs) {
    const c = card(def);
    const v = def.value(snap);
    c.value.textContent = num(v);
    c.value.dataset.value = String(v);
    c.sub.textContent = def.sub(snap);
    if (def.rate && !(snap.elapsed_seconds > 0)) continue; // no rate yet
    c.chart.push(v);
    c.peak.textContent = `peak ${num(c.chart.max())}${def.unit ? " " + def.unit : ""} · ${c.chart.values.length} s`;
    // The chart's text alternative, refreshed every few seconds.
    if (now - c.labelAt > 5000) {
      c.labelAt = now;
      c.svg.setAttribute("aria-label", `${def.title}${def.unit ? " (" + def.unit + ")" : ""} over the last ${Math.round(c.chart.values.length)} seconds: now ${num(v)}, peak ${num(c.chart.max())}`);
    }
  }
  for (const [key, , fmt] of TOTALS) {
    const dd = totalNodes.get(key);
    dd.textContent = fmt(snap);
    dd.dataset.value = String(snap[key]);
  }
  status.dataset.updated = snap.time;
  setStatus(status, "open", `Live · updated ${clock(new Date(snap.time))}`);
}

let stream = null;

function connect() {
  if (stream) stream.close();
  const token = cleanToken($("#dash-token").value);
  stream = fetchStream(STATS, {
    token,
    onEvent: (e) => {
      if (e.type !== "stats") return;
      try { update(JSON.parse(e.data)); } catch (err) { setStatus(status, "error", "Unreadable stats: " + err.message); }
    },
    onState: (state, detail) => {
      if (state === "open") { setStatus(status, "open", "Live"); return; }
      if (state === "closed") return;
      const text = { connecting: "Connecting…", reconnecting: "Reconnecting", error: "Refused" }[state];
      setStatus(status, state, detail ? `${text}: ${detail}` : text);
      if (state === "error") {
        $("#dash-auth").open = true;
        $("#dash-token").focus();
      }
    },
  });
}

$("#dash-form").addEventListener("submit", (e) => { e.preventDefault(); connect(); });
connect();
