package ssehttp

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// Labels of the transient refusals of a stream, the first word of their
// reason comment (": refused: <label>: <reason>").
const (
	// RefusalDraining is a stream refused because the hub is shutting
	// down (Handler.Drain).
	RefusalDraining = "draining"
	// RefusalStreamLimit is a stream refused by a Limits stream cap.
	RefusalStreamLimit = "stream-limit"
	// RefusalUnavailable is a stream refused because the hub could not
	// subscribe it (its store is unreachable).
	RefusalUnavailable = "unavailable"
)

// refuseStream answers a subscribe request that the hub cannot serve now
// but may serve later: it is draining, a stream limit is reached, or the
// store is down. retry is how long the client should wait.
//
// A browser's EventSource treats every status but 200 as fatal and never
// reconnects, so a client that accepts text/event-stream (EventSource, the
// eventsource package, most SSE libraries) gets a 200 event stream that
// holds only a reason comment and a retry field, and ends at once: every
// conforming client reconnects after the retry time, with its
// Last-Event-ID. Other clients (curl, health checks, proxies probing) get
// status, which a client that knows HTTP can act on. Both carry a
// Retry-After header, so that access logs and curl users see the refusal
// and the back-off the hub asks for.
func (h *Handler) refuseStream(w http.ResponseWriter, r *http.Request, status int, label, reason string, retry time.Duration) {
	setRetryAfter(w.Header(), retry)
	if !acceptsEventStream(r) {
		h.fail(w, r, status, reason)
		return
	}
	h.log.Debug("request refused", "method", r.Method, "status", status, "answer", "200 event stream with retry", "reason", reason, "remote", r.RemoteAddr)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	body := refusalBody(label, reason, h.refusalRetry(retry))
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// refusalBody is the event stream of a refusal: the reason comment, then
// the retry field (none when retry is not positive).
func refusalBody(label, reason string, retry time.Duration) []byte {
	b := sse.AppendComment(nil, " refused: "+label+": "+reason)
	return sse.AppendRetry(b, retry)
}

// refusalRetry is the retry field of a refusal asking for a wait of d: d
// itself, or nothing when Config.Retry is negative (the operator leaves
// reconnection times to the clients; a retry field would stay with the
// client for the rest of its life).
func (h *Handler) refusalRetry(d time.Duration) time.Duration {
	if h.cfg.Retry < 0 {
		return 0
	}
	return d
}

// drainRetry is the back-off a refusal asks for when the hub is draining
// or unavailable: Config.Retry spread by ±25%, as every stream's retry,
// or DefaultRetry when Config.Retry is negative (for Retry-After only).
func (h *Handler) drainRetry() time.Duration {
	d := h.cfg.Retry
	if d <= 0 {
		d = DefaultRetry
	}
	return jitter(d)
}

// acceptsEventStream reports whether r's Accept header names
// text/event-stream, as a browser's EventSource and SSE client libraries
// send. A wildcard (*/*, text/*) does not count: curl and HTTP libraries
// send it by default, and they are better served by a status code.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/event-stream" {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// rawDrainRefusal is the answer written on a hijacked connection when the
// hub started draining between subscribe's check and the hijack: the same
// as refuseStream's, as raw HTTP/1.1, with the headers of hd (CORS).
func (h *Handler) rawDrainRefusal(hd http.Header, r *http.Request) []byte {
	const reason = "hub is shutting down"
	retry := h.drainRetry()
	hd = hd.Clone()
	for _, k := range []string{"Mercure-Last-Event-Id", "Last-Event-Id", "Transfer-Encoding", "Content-Encoding"} {
		hd.Del(k)
	}
	setRetryAfter(hd, retry)
	hd.Set("Connection", "close")
	var status string
	var body []byte
	if acceptsEventStream(r) {
		status = "200 OK"
		body = refusalBody(RefusalDraining, reason, h.refusalRetry(retry))
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("Cache-Control", "no-cache")
		hd.Set("X-Accel-Buffering", "no")
	} else {
		status = "503 Service Unavailable"
		body = []byte(reason + "\n")
		hd.Del("Cache-Control")
		hd.Del("X-Accel-Buffering")
		setPlainText(hd)
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + status + "\r\n")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	if r.Method != http.MethodHead {
		b.Write(body)
	}
	return b.Bytes()
}
