// Server-Sent Events for the ssehub UI: a parser that follows the WHATWG
// "event stream interpretation" algorithm, a fetch-based stream that can
// send an Authorization header and sees every event type, and a wrapper
// around the browser's native EventSource.

/**
 * Parser turns decoded text, fed in chunks of any size, into events.
 * onEvent receives {type, data, lastEventId}; onRetry a number of ms;
 * onComment the text after the colon (a leading space kept).
 */
export class Parser {
  constructor({ onEvent, onRetry, onComment, lastEventId = "" } = {}) {
    this.onEvent = onEvent || (() => {});
    this.onRetry = onRetry || (() => {});
    this.onComment = onComment || (() => {});
    this.lastEventId = lastEventId; // the stream's last event ID string
    this.reset();
  }

  /** reset starts a new connection: an incomplete event is dropped. */
  reset() {
    this.buf = "";
    this.pendingCR = false;
    this.data = "";
    this.type = "";
    this.idBuffer = this.lastEventId;
  }

  /** feed parses the next chunk of text (already UTF-8 decoded). */
  feed(text) {
    let s = text;
    if (this.pendingCR) {
      // A CR ended the previous chunk: a following LF belongs to it.
      if (s.startsWith("\n")) s = s.slice(1);
      this.pendingCR = false;
    }
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buf + s.slice(start, i));
      this.buf = "";
      if (c === 13) {
        if (i + 1 === s.length) {
          this.pendingCR = true;
        } else if (s.charCodeAt(i + 1) === 10) {
          i++;
        }
      }
      start = i + 1;
    }
    this.buf += s.slice(start);
  }

  line(l) {
    if (l === "") {
      this.dispatch();
      return;
    }
    if (l.charCodeAt(0) === 58) { // ":"
      this.onComment(l.slice(1));
      return;
    }
    let field = l;
    let value = "";
    const colon = l.indexOf(":");
    if (colon >= 0) {
      field = l.slice(0, colon);
      value = l.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data += value + "\n";
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.onRetry(parseInt(value, 10));
        break;
      default: // unknown fields are ignored
    }
  }

  dispatch() {
    this.lastEventId = this.idBuffer;
    if (this.data === "") {
      this.type = "";
      return;
    }
    const data = this.data.endsWith("\n") ? this.data.slice(0, -1) : this.data;
    const type = this.type || "message";
    this.data = "";
    this.type = "";
    this.onEvent({ type, data, lastEventId: this.lastEventId });
  }
}

/**
 * fetchStream subscribes to url with fetch, so that it can send an
 * Authorization header and report every event type and every HTTP status.
 * Like EventSource, it reconnects after a network error or a 5xx answer,
 * waiting the server's retry time, and resends the last event ID in the
 * Last-Event-ID header; a 4xx answer (or a body that is not an event
 * stream) ends it.
 *
 * Callbacks: onOpen(response), onEvent(event), onState(state, detail) with
 * state "connecting" | "open" | "reconnecting" | "closed" | "error".
 * Returns {close(), lastEventId()}.
 */
export function fetchStream(url, { token = "", lastEventId = "", onEvent, onOpen, onState, retryMs = 3000 } = {}) {
  const state = onState || (() => {});
  let retry = retryMs;
  let closed = false;
  let ctrl = null;
  let timer = null;
  const parser = new Parser({
    lastEventId,
    onEvent: (e) => onEvent && onEvent(e),
    onRetry: (ms) => { retry = ms; },
  });

  async function connect(first) {
    if (closed) return;
    state(first ? "connecting" : "reconnecting", "");
    ctrl = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (token) headers.Authorization = "Bearer " + token;
    if (parser.lastEventId) headers["Last-Event-ID"] = parser.lastEventId;
    let res;
    try {
      res = await fetch(url, { headers, cache: "no-store", credentials: "same-origin", signal: ctrl.signal });
    } catch (err) {
      if (!closed) schedule("network error: " + (err && err.message ? err.message : err));
      return;
    }
    const ctype = res.headers.get("Content-Type") || "";
    if (res.status !== 200 || !ctype.startsWith("text/event-stream")) {
      const reason = (await res.text().catch(() => "")).trim().split("\n")[0].slice(0, 300);
      const detail = `HTTP ${res.status}${reason ? ": " + reason : ""}`;
      if (res.status >= 500 || res.status === 429) schedule(detail);
      else if (!closed) { closed = true; state("error", detail); }
      return;
    }
    if (onOpen) onOpen(res);
    state("open", "");
    parser.reset();
    const reader = res.body.getReader();
    const decoder = new TextDecoder("utf-8"); // strips a leading BOM
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      parser.feed(decoder.decode());
    } catch (err) {
      if (closed) return;
    }
    if (!closed) schedule("stream ended");
  }

  function schedule(detail) {
    if (closed) return;
    state("reconnecting", `${detail}; retrying in ${(retry / 1000).toFixed(1)} s`);
    timer = setTimeout(() => connect(false), retry);
  }

  connect(true);
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      state("closed", "");
    },
    lastEventId: () => parser.lastEventId,
  };
}

/**
 * nativeStream subscribes with the browser's EventSource. It listens for
 * "message", "ssehub.gap" and the extra types given (EventSource delivers
 * only the named types a page listens for). The browser reconnects by
 * itself and resends Last-Event-ID; if the browser gives up (an HTTP error
 * such as the 503 of a hub that is shutting down), nativeStream opens a new
 * EventSource after retryMs, resuming from the last ID it saw with the
 * lastEventID query parameter.
 */
export function nativeStream(url, { lastEventId = "", types = [], onEvent, onState, retryMs = 3000 } = {}) {
  const state = onState || (() => {});
  let closed = false;
  let es = null;
  let timer = null;
  let last = lastEventId;
  let reopened = 0;

  function open(first) {
    const u = new URL(url);
    if (last) u.searchParams.set("lastEventID", last);
    state(first ? "connecting" : "reconnecting", first ? "" : "opening a new EventSource");
    es = new EventSource(u.href, { withCredentials: true });
    es.onopen = () => state("open", "");
    const handler = (e) => {
      if (e.lastEventId) last = e.lastEventId;
      onEvent && onEvent({ type: e.type, data: e.data, lastEventId: e.lastEventId });
    };
    for (const t of new Set(["message", "ssehub.gap", ...types])) es.addEventListener(t, handler);
    es.onerror = () => {
      if (closed) return;
      if (es.readyState === EventSource.CLOSED) {
        reopened++;
        state("reconnecting", `the browser closed the EventSource (an HTTP error); reopening in ${(retryMs / 1000).toFixed(1)} s`);
        timer = setTimeout(() => { if (!closed) open(false); }, retryMs);
      } else {
        state("reconnecting", "the browser is reconnecting");
      }
    };
  }

  open(true);
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
      state("closed", "");
    },
    lastEventId: () => last,
    reopened: () => reopened,
  };
}
