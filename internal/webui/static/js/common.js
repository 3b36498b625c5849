// Helpers shared by the pages.

/** The hub's endpoints, on the page's own origin. */
export const HUB = new URL("/.well-known/mercure", location.href).href;
export const HISTORY = new URL("/.well-known/mercure/history", location.href).href;
export const STATS = new URL("/.well-known/ssehub/stats", location.href).href;
export const COOKIE = "mercureAuthorization";
export const COOKIE_PATH = "/.well-known/mercure";

/** el creates an element: el("li", {class: "x", dataset: {id: 1}}, child, "text"). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** $ is querySelector that fails loudly when the element is missing. */
export function $(sel, root = document) {
  const e = root.querySelector(sel);
  if (!e) throw new Error("missing element " + sel);
  return e;
}

/** setStatus shows a connection state on a .status element. */
export function setStatus(node, state, text) {
  node.dataset.state = state;
  node.textContent = text;
}

/** clock formats a Date as local HH:MM:SS.mmm. */
export function clock(d) {
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

const nfSmall = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 2 });

/** num formats a number for display: 2 significant digits below 1, 1 decimal below 100, none above. */
export function num(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a > 0 && a < 1) return nfSmall.format(n);
  return a < 100 ? nf.format(n) : nf0.format(n);
}

/** bytes formats a size in B, KiB, MiB or GiB. */
export function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** wireTokenToggle makes a "Show" button reveal a password input. */
export function wireTokenToggle(button, input) {
  button.addEventListener("click", () => {
    const show = input.type === "password";
    input.type = show ? "text" : "password";
    button.textContent = show ? "Hide" : "Show";
    button.setAttribute("aria-pressed", String(show));
  });
}

/** cleanToken trims a pasted token and a leading "Bearer ". */
export function cleanToken(s) {
  return s.trim().replace(/^Bearer\s+/i, "");
}

/**
 * setAuthCookie stores token in the mercureAuthorization cookie, scoped to
 * the hub path, for the browser's EventSource (which cannot send headers).
 * A session cookie, SameSite=Strict, Secure on https; an empty token
 * deletes it.
 */
export function setAuthCookie(token) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  if (!token) {
    document.cookie = `${COOKIE}=; Path=${COOKIE_PATH}; Max-Age=0; SameSite=Strict${secure}`;
    return;
  }
  document.cookie = `${COOKIE}=${encodeURIComponent(token)}; Path=${COOKIE_PATH}; SameSite=Strict${secure}`;
}

/** readError returns the one-line reason of a refused request. */
export async function readError(res) {
  const text = (await res.text().catch(() => "")).trim().split("\n")[0].slice(0, 300);
  return `HTTP ${res.status}${text ? ": " + text : ""}`;
}
