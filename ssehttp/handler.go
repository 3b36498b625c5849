package ssehttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/sse"
)

// DefaultPath is where the Mercure protocol puts the hub.
const DefaultPath = "/.well-known/mercure"

// Defaults of Config.
const (
	DefaultHeartbeat    = 25 * time.Second
	DefaultRetry        = 3 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxTopics    = 100
	DefaultMaxTopicLen  = 2048
	DefaultMaxIDLen     = 1024
)

// Config configures a Handler. Hub and Compiler are required; every other
// zero field means its documented default.
type Config struct {
	// Hub is the hub to publish to and subscribe from.
	Hub *hub.Hub
	// Compiler compiles topic selectors; its hub URL is also the base
	// against which topics are checked for the reserved namespace.
	Compiler *selector.Compiler
	// Auth authenticates publishers and subscribers. Nil refuses every
	// publish and allows only anonymous subscribers (when Anonymous).
	Auth auth.Authenticator
	// Anonymous lets subscribers without credentials subscribe; they
	// receive public updates only.
	Anonymous bool
	// Heartbeat is the interval of keep-alive comments on idle streams.
	// Zero means DefaultHeartbeat (25 s); negative disables them.
	Heartbeat time.Duration
	// Retry is the reconnection delay advertised to each new stream with
	// the SSE retry field, spread by up to ±25% per connection so that
	// clients of a restarted hub do not return all at once. Zero means
	// DefaultRetry (3 s); negative sends none.
	Retry time.Duration
	// WriteTimeout bounds each write to a stream; a subscriber that cannot
	// take a write in time is disconnected. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxBodyBytes caps a publish request body; larger ones get 413.
	// Zero means DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// MaxTopics caps the topics of one publish; more get 400. Zero means
	// DefaultMaxTopics (100).
	MaxTopics int
	// MaxTopicLen caps the length of one topic, in bytes; longer ones get
	// 400. Zero means DefaultMaxTopicLen (2048).
	MaxTopicLen int
	// MaxIDLen caps the length of a publisher's event ID, in bytes; longer
	// ones get 400. Zero means DefaultMaxIDLen (1024). A browser sends the
	// ID of the last event back in the Last-Event-ID header of every
	// reconnection: an ID too long for the request headers a proxy or the
	// server accepts (nginx: 8 KiB per header line by default; ssehub
	// serve: 64 KiB in all) would be refused with 400 or 431 at every
	// reconnection, and a status other than 200 ends an EventSource for
	// good.
	MaxIDLen int
	// CORSOrigins lists the origins allowed to subscribe and publish
	// cross-origin, with credentials. Origins are compared exactly; "null"
	// is never allowed. The single value "*" allows every origin without
	// credentials.
	CORSOrigins []string
	// Logger receives one line per refused request and stream end at debug
	// level. Nil discards.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Observer is told of publishes, writes to subscribers, refusals and
	// stream ends, for metrics (see Observer). Nil observes nothing.
	Observer Observer
	// Limits bounds the streams of each client IP, each token subject and
	// the whole hub, and each publisher's rate (see Limits for the
	// answers).
	// The zero Limits limits nothing.
	Limits Limits
	// MaxLifetime ends every stream after this long, less up to 10% at
	// random so that streams opened together end apart, at an event
	// boundary; the client reconnects with its Last-Event-ID. Periodic
	// rotation spreads clients over restarted or added hubs and bounds
	// what a stream that outlives its purpose holds. Zero means no limit.
	MaxLifetime time.Duration
	// GoroutinePerStream serves every stream from its request's goroutine,
	// as net/http does, instead of serving idle HTTP/1.x streams from
	// their hijacked connections with no goroutine (see Handler). It costs
	// several times the memory per idle subscriber; it exists to compare
	// the two models and to run behind wrappers that cannot hijack.
	GoroutinePerStream bool
	// Presence, when set, turns on Mercure's active subscriptions: every
	// stream's subscriptions are registered in it and announced as
	// private subscription events (type "mercure") when the stream starts
	// and ends, and Subscriptions serves the registry. Keep it alive with
	// StartPresence. Nil turns the feature off.
	Presence hub.Presence
	// ResourceMetadata is the URL of the hub's OAuth 2.0 Protected
	// Resource Metadata (RFC 9728). When set, a 401 for a missing token
	// points to it with the resource_metadata parameter of its
	// WWW-Authenticate challenge, as the Mercure spec recommends.
	ResourceMetadata string
}

// Handler serves the Mercure protocol. It is safe for concurrent use.
//
// An HTTP/1.x stream is served from its hijacked connection once the
// response head is written: while it is idle no goroutine is kept for it,
// so that an idle subscriber costs a few KiB instead of the ~30 KiB of a
// goroutine-per-stream server. Updates, heartbeats, expiry and drain each
// start a short-lived writer that coalesces everything queued into one
// write; a peer's hang-up is noticed at once on Linux (epoll) and at the
// next write elsewhere. HTTP/2 streams, which share their connection, and
// every stream under Config.GoroutinePerStream are served by their
// request's goroutine.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	hubURL   *url.URL
	hubPath  string
	hubLeaf  string // the last segment of hubPath; empty if hubPath is "/"
	anyCORS  bool
	draining chan struct{}
	obs      Observer
	hijacks  streams
	watcher  watcher
	lim      *limiter
	pres     *presence // nil without Config.Presence
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Hub == nil || cfg.Compiler == nil {
		return nil, errors.New("ssehttp: Config.Hub and Config.Compiler are required")
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxTopics <= 0 {
		cfg.MaxTopics = DefaultMaxTopics
	}
	if cfg.MaxTopicLen <= 0 {
		cfg.MaxTopicLen = DefaultMaxTopicLen
	}
	if cfg.MaxIDLen <= 0 {
		cfg.MaxIDLen = DefaultMaxIDLen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxLifetime < 0 {
		return nil, errors.New("ssehttp: MaxLifetime must not be negative")
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, draining: make(chan struct{}), obs: cfg.Observer}
	h.hijacks.replayers.replay = true
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range cfg.CORSOrigins {
		switch o {
		case "null", "":
			return nil, fmt.Errorf("ssehttp: CORS origin %q is never allowed", o)
		case "*":
			h.anyCORS = true
		}
	}
	base, err := url.Parse(cfg.Compiler.HubURL())
	if err != nil {
		return nil, fmt.Errorf("ssehttp: hub URL: %w", err)
	}
	h.setHubURL(base)
	h.lim = newLimiter(cfg.Limits, cfg.Now)
	if cfg.Presence != nil {
		h.pres = &presence{reg: cfg.Presence}
	}
	return h, nil
}

// Drain makes every open stream end at its next event boundary: each
// handler finishes the write under way and returns, and clients reconnect
// (to another hub, or to this one after a restart) with their
// Last-Event-ID. New streams are refused (see refuseStream: a 200 event
// stream holding only a retry field for clients that accept
// text/event-stream, 503 for others). Drain is idempotent.
func (h *Handler) Drain() {
	select {
	case <-h.draining:
	default:
		close(h.draining)
	}
	h.drainHijacked()
}

// ServeHTTP routes GET to subscribe, POST to publish and OPTIONS to the
// CORS preflight.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.subscribe(w, r)
	case http.MethodPost:
		h.publish(w, r)
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		h.fail(w, r, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// cors sets the CORS response headers for an allowed Origin.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if len(h.cfg.CORSOrigins) == 0 {
		return
	}
	hd := w.Header()
	hd.Add("Vary", "Origin")
	if origin == "" || origin == "null" {
		return
	}
	switch {
	case slices.Contains(h.cfg.CORSOrigins, origin):
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
	case h.anyCORS:
		hd.Set("Access-Control-Allow-Origin", "*")
	default:
		return
	}
	if r.Method == http.MethodOptions {
		hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		hd.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID, Cache-Control, Content-Type, Idempotency-Key")
		hd.Set("Access-Control-Max-Age", "600")
	} else {
		hd.Set("Access-Control-Expose-Headers", "Mercure-Last-Event-ID, Last-Event-ID, Link")
	}
}

// fail answers with status and a one-line text reason.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, reason string) {
	h.log.Debug("request refused", "method", r.Method, "status", status, "reason", reason, "remote", r.RemoteAddr)
	setPlainText(w.Header())
	w.WriteHeader(status)
	fmt.Fprintln(w, reason)
}

// authenticate returns the grant for r, or answers the refusal and returns
// ok false. A missing credential yields a nil grant.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, role auth.Role) (g *auth.Grant, ok bool) {
	if h.cfg.Auth == nil {
		return nil, true
	}
	g, err := h.cfg.Auth.Authenticate(r, role)
	if err == nil {
		return g, true
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		h.obs.Refused(ae.Code)
		w.Header().Set("WWW-Authenticate", ae.Challenge())
		h.fail(w, r, ae.Status, ae.Description)
		return nil, false
	}
	h.log.Error("authentication failed", "err", err)
	h.fail(w, r, http.StatusInternalServerError, "authentication failed")
	return nil, false
}

func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, reason string) {
	h.obs.Refused(RefusedMissingToken)
	challenge := "Bearer"
	if h.cfg.ResourceMetadata != "" {
		challenge += ` resource_metadata="` + h.cfg.ResourceMetadata + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	h.fail(w, r, http.StatusUnauthorized, reason)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, reason string) {
	h.obs.Refused(RefusedForbidden)
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	h.fail(w, r, http.StatusForbidden, reason)
}

// subscribe serves an event stream.
func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.draining:
		h.refuseStream(w, r, http.StatusServiceUnavailable, RefusalDraining, "hub is shutting down", h.drainRetry())
		return
	default:
	}
	q, topics, grant, ok := h.reader(w, r, "subscribing")
	if !ok {
		return
	}
	last, hasLast := lastEventID(r, q)
	if hasLast && !utf8.ValidString(last) {
		h.fail(w, r, http.StatusBadRequest, "last event id is not valid UTF-8")
		return
	}
	req := hub.SubscribeRequest{Topics: topics, LastEventID: last}
	subject := ""
	if grant != nil {
		req.CanRead = grant.CanRead
		subject = grant.Subject
	}
	// release must run exactly once when the stream ends, however it
	// ends: by the hijacked stream's close hooks, or on return here.
	release, wait, reason, ok := h.lim.acquire(clientIP(r), subject, selectorBytes(topics))
	if !ok {
		h.obs.Refused(RefusedStreamLimit)
		h.refuseStream(w, r, http.StatusTooManyRequests, RefusalStreamLimit, reason, wait)
		return
	}
	var hj *hijacked
	var cw *cutWriter
	if h.hijackable(w, r) {
		hj = h.newHijacked()
		req.Notify = hj.notify
		req.OnOverflow = hj.overflow
	} else {
		// Served here, by this goroutine: the overflow cuts a write
		// blocked on a stalled client through a write deadline in the
		// past (see cutWriter).
		cw = newCutWriter(w)
		defer cw.finish()
		w = cw
		req.OnOverflow = cw.overflow
	}
	sub, err := h.cfg.Hub.Subscribe(r.Context(), req)
	if err != nil {
		release()
		h.log.Warn("subscribe failed", "err", err)
		h.refuseStream(w, r, http.StatusServiceUnavailable, RefusalUnavailable, "hub unavailable", h.drainRetry())
		return
	}
	// A new stream (no last event ID, or an empty one) starts with its
	// cursor, so that one lost before its first event resumes from now
	// (see hub.Subscription.Cursor).
	var start []byte
	if last == "" {
		start, _ = sse.AppendID(nil, sub.Cursor())
	}
	if hasLast {
		anchor := sub.Resume().Anchor
		w.Header().Set("Mercure-Last-Event-ID", anchor)
		w.Header().Set("Last-Event-ID", anchor) // the v0.24 name
	}
	if h.pres != nil && r.Method != http.MethodHead {
		leave, unlimit := h.join(presenceEntry(topics, grant)), release
		release = func() { unlimit(); leave() }
	}
	if hj != nil {
		hj.onClose = append(hj.onClose, release)
		hj.start = start
		if !hj.serve(w, r, sub, topics, h.streamEnd(grant), h.lifetimeEnd()) {
			release()
			sub.Close()
			h.log.Error("cannot stream: hijacking the connection failed")
			h.fail(w, r, http.StatusInternalServerError, "cannot stream")
		}
		return
	}
	defer release()
	defer sub.Close()
	// A server-wide ReadTimeout (against slow request bodies) must not
	// end the stream: the request is read; only a hang-up remains to see.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	sw, err := sse.Upgrade(w, r, &sse.WriterOptions{WriteTimeout: h.cfg.WriteTimeout})
	if err != nil {
		h.log.Error("cannot stream", "err", err)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	so := h.openStream(r, topics, sub)
	h.stream(r, sw, sub, grant, so, start, cw.cutOff)
}

// reader parses the topic selectors of a subscribe or history request and
// authenticates the subscriber (what names the action in the refusal). It
// answers refusals itself and then returns ok false. A nil grant is an
// anonymous subscriber, allowed only when Config.Anonymous is set.
func (h *Handler) reader(w http.ResponseWriter, r *http.Request, what string) (q url.Values, topics []hub.Matcher, grant *auth.Grant, ok bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "malformed query: "+err.Error())
		return nil, nil, nil, false
	}
	ms, err := h.cfg.Compiler.ParseQuery(q)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err.Error())
		return nil, nil, nil, false
	}
	if len(ms) == 0 {
		h.fail(w, r, http.StatusBadRequest, `missing topic selector: add a "match" (or "topic") query parameter`)
		return nil, nil, nil, false
	}
	if grant, ok = h.authenticate(w, r, auth.Subscriber); !ok {
		return nil, nil, nil, false
	}
	if grant == nil && !h.cfg.Anonymous {
		h.unauthorized(w, r, what+" requires a token")
		return nil, nil, nil, false
	}
	return q, selector.Matchers(ms), grant, true
}

// selectorBytes is the estimated memory of compiled selectors: the sum of
// their selector.Matcher.Size.
func selectorBytes(ms []hub.Matcher) int {
	n := 0
	for _, m := range ms {
		if sm, ok := m.(*selector.Matcher); ok {
			n += sm.Size()
		}
	}
	return n
}

// lastEventID returns the resume ID: the Last-Event-ID header wins over the
// 1.0 "last_event_id" query parameter, which wins over the v0.24
// "lastEventID".
func lastEventID(r *http.Request, q url.Values) (string, bool) {
	if v, ok := r.Header["Last-Event-Id"]; ok && len(v) > 0 {
		return v[0], true
	}
	for _, name := range []string{"last_event_id", "lastEventID"} {
		if v, ok := q[name]; ok && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// streamEnd returns when a stream must end because its credentials
// expire, or the zero time. It ends a little early, spread over up to 5%
// of the remaining time (at most 30 s), so that equal expiries do not
// reconnect together.
func (h *Handler) streamEnd(grant *auth.Grant) time.Time {
	if grant == nil || grant.Expires.IsZero() {
		return time.Time{}
	}
	now := h.cfg.Now()
	left := grant.Expires.Sub(now)
	if left > 0 {
		left -= rand.N(min(left/20, 30*time.Second) + 1)
	}
	return now.Add(max(left, 0))
}

// stream is the subscriber loop: one select over the client, the hub, the
// heartbeat and the credentials' expiry. Every write is whole events, so
// the stream always ends at an event boundary. start, if any, is written
// first, after the retry field: the stream cursor of a new stream. cut
// reports whether the hub's OnOverflow cut the stream's writes: a write
// that fails, or a request context that ends (an HTTP/2 stream is reset),
// after the cut ends the stream for the overflow.
func (h *Handler) stream(r *http.Request, sw *sse.Writer, sub *hub.Subscription, grant *auth.Grant, so *streamObs, start []byte, cut func() bool) {
	ctx := r.Context()
	cutEnd := func(reason EndReason, err error) {
		if cut() {
			reason, err = EndQueueOverflow, hub.ErrSlowConsumer
		}
		so.end(reason, err)
	}
	if d := h.cfg.Retry; d > 0 {
		if err := sw.Retry(jitter(d)); err != nil {
			cutEnd(writeEnd(err), err)
			return
		}
	}
	if len(start) > 0 {
		if err := sw.WriteFrames(start); err != nil {
			cutEnd(writeEnd(err), err)
			return
		}
	}
	var heartbeat <-chan time.Time
	if h.cfg.Heartbeat > 0 {
		t := time.NewTicker(h.cfg.Heartbeat)
		defer t.Stop()
		heartbeat = t.C
	}
	var expiry <-chan time.Time
	if end := h.streamEnd(grant); !end.IsZero() {
		t := time.NewTimer(max(end.Sub(h.cfg.Now()), 0))
		defer t.Stop()
		expiry = t.C
	}
	var lifetime <-chan time.Time
	if end := h.lifetimeEnd(); !end.IsZero() {
		t := time.NewTimer(max(end.Sub(h.cfg.Now()), 0))
		defer t.Stop()
		lifetime = t.C
	}
	var batch []*hub.Update
	var frames [][]byte
	for {
		select {
		case <-ctx.Done():
			cutEnd(EndClientGone, nil)
			return
		case <-h.draining:
			so.end(EndDrain, nil)
			return
		case <-expiry:
			so.end(EndExpired, nil)
			return
		case <-lifetime:
			so.end(EndMaxLifetime, nil)
			return
		case <-heartbeat:
			if err := sw.Comment(""); err != nil {
				cutEnd(writeEnd(err), err)
				return
			}
		case <-sub.Ready():
			var err error
			batch, err = sub.Drain(ctx, batch[:0])
			frames = frames[:0]
			for _, u := range batch {
				frames = append(frames, u.Frame())
			}
			if len(frames) > 0 {
				if werr := sw.WriteFrames(frames...); werr != nil {
					cutEnd(writeEnd(werr), werr)
					return
				}
				so.wrote(len(batch), so.oldestLive(batch))
			}
			clear(batch)
			if err != nil {
				so.end(drainEnd(err), err)
				return
			}
		}
	}
}

// publish handles a form-encoded publish.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	grant, ok := h.authenticate(w, r, auth.Publisher)
	if !ok {
		return
	}
	if grant == nil {
		h.unauthorized(w, r, "publishing requires a token")
		return
	}
	if grant.Source == auth.SourceCookie && !h.sameOriginOrAllowed(r) {
		h.forbidden(w, r, "publishing with a cookie requires an allowed Origin or Referer")
		return
	}
	if wait, ok := h.lim.allowPublish(publisherKey(r, grant)); !ok {
		h.obs.Refused(RefusedPublishRate)
		h.tooMany(w, r, wait, "publish rate limit exceeded")
		return
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		h.fail(w, r, http.StatusUnsupportedMediaType, "publish body must be application/x-www-form-urlencoded")
		return
	}
	form, err := readForm(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", h.cfg.MaxBodyBytes))
			return
		}
		h.fail(w, r, http.StatusBadRequest, "malformed form body: "+err.Error())
		return
	}
	u, status, reason := h.parseUpdate(form)
	if status != 0 {
		h.fail(w, r, status, reason)
		return
	}
	if key, ok := r.Header["Idempotency-Key"]; ok {
		if len(key) != 1 || !validIdempotencyKey(key[0]) {
			h.fail(w, r, http.StatusBadRequest, "Idempotency-Key must be one value of 1 to 255 printable ASCII characters")
			return
		}
		u.IdempotencyKey = key[0]
		u.Publisher = publisherIdentity(grant)
	}
	if !grant.CanPublish(u.Topics) {
		h.forbidden(w, r, "token does not grant publishing to every topic of the update")
		return
	}
	id, err := h.cfg.Hub.Publish(r.Context(), u)
	if err != nil {
		if errors.Is(err, hub.ErrInvalidUpdate) {
			h.fail(w, r, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "hub: "))
			return
		}
		h.log.Error("publish failed", "err", err)
		w.Header().Set("Retry-After", "1")
		h.fail(w, r, http.StatusServiceUnavailable, "update not acknowledged: "+storeReason(err))
		return
	}
	h.obs.Published(time.Since(start))
	setPlainText(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(id))
}

// storeReason names a store failure without internals. Only a hub that
// is shutting down surely stored nothing; after a timeout or a failure the
// store may still hold the update (a stalled engine can store it after the
// hub gave up waiting), so the answer says how to retry safely.
func storeReason(err error) string {
	switch {
	case errors.Is(err, hub.ErrClosed):
		return "hub is shutting down"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the store did not confirm it in time (it may still be stored: retry with the same Idempotency-Key)"
	case errors.Is(err, syscall.ENOSPC):
		return "the store is out of disk space"
	default:
		return "the store failed (retry with the same Idempotency-Key)"
	}
}

// reservedTypePrefix starts the event types the hub itself emits.
const reservedTypePrefix = "ssehub."

// parseUpdate validates a publish form. It returns a status and reason
// when the form is invalid.
func (h *Handler) parseUpdate(form url.Values) (*hub.Update, int, string) {
	for name, vs := range form {
		for _, v := range vs {
			if !utf8.ValidString(v) || !utf8.ValidString(name) {
				return nil, http.StatusBadRequest, fmt.Sprintf("field %q is not valid UTF-8", name)
			}
		}
	}
	topics := form["topic"]
	switch {
	case len(topics) == 0:
		return nil, http.StatusBadRequest, `missing "topic" field`
	case len(topics) > h.cfg.MaxTopics:
		return nil, http.StatusBadRequest, fmt.Sprintf("more than %d topics", h.cfg.MaxTopics)
	}
	for _, t := range topics {
		if len(t) > h.cfg.MaxTopicLen {
			return nil, http.StatusBadRequest, fmt.Sprintf("topic is longer than %d bytes", h.cfg.MaxTopicLen)
		}
		if err := selector.ValidateTopic(t); err != nil {
			return nil, http.StatusBadRequest, err.Error()
		}
		if h.reserved(t) {
			return nil, http.StatusBadRequest, fmt.Sprintf("topic %q is in the hub's reserved namespace", t)
		}
	}
	u := &hub.Update{Topics: topics, Data: form.Get("data")}
	_, u.Private = form["private"]
	if id := form.Get("id"); id != "" {
		switch {
		case id == hub.Earliest:
			return nil, http.StatusBadRequest, `id "earliest" is reserved`
		case strings.HasPrefix(id, "#"):
			return nil, http.StatusBadRequest, `id must not start with "#"`
		case len(id) > h.cfg.MaxIDLen:
			return nil, http.StatusBadRequest, fmt.Sprintf("id is longer than %d bytes (a client could not resume after it)", h.cfg.MaxIDLen)
		}
		if err := checkText("id", id); err != "" {
			return nil, http.StatusBadRequest, err
		}
		u.ID = id
	}
	if typ := form.Get("type"); typ != "" {
		if err := checkText("type", typ); err != "" {
			return nil, http.StatusBadRequest, err
		}
		if typ == "mercure" || strings.HasPrefix(typ, reservedTypePrefix) {
			return nil, http.StatusBadRequest, fmt.Sprintf("type %q is reserved for the hub", typ)
		}
		u.Type = typ
	}
	if v, ok := form["retry"]; ok {
		ms, err := strconv.ParseUint(v[0], 10, 31)
		if err != nil || strings.TrimLeft(v[0], "0123456789") != "" || v[0] == "" {
			return nil, http.StatusBadRequest, "retry must be a number of milliseconds (ASCII digits only)"
		}
		u.Retry = time.Duration(ms) * time.Millisecond
	}
	return u, 0, ""
}

// validIdempotencyKey accepts 1 to 255 printable ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkText applies the Mercure rules for id and type: no control
// characters (C0, DEL, C1) and no Unicode format characters.
func checkText(field, s string) string {
	for i, r := range s {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) || (r >= 0xad && unicode.Is(unicode.Cf, r)) {
			return fmt.Sprintf("%s contains forbidden character %U at byte %d", field, r, i)
		}
	}
	return ""
}

// setHubURL sets the hub's URL, which topics are resolved against.
func (h *Handler) setHubURL(u *url.URL) {
	h.hubURL, h.hubPath, h.hubLeaf = u, path.Clean("/"+u.Path), ""
	if h.hubPath != "/" {
		h.hubLeaf = path.Base(h.hubPath)
	}
}

// reserved reports whether topic, resolved against the hub URL, addresses
// the hub's own namespace (its path or below), whatever its scheme, host,
// dot-segments or percent-encoding.
func (h *Handler) reserved(topic string) bool {
	// The path of an absolute URL with a host is its own: if it can name
	// the hub's path it holds the hub path's last segment, literally or
	// percent-encoded. Other topics are resolved.
	if h.hubLeaf != "" && hasHost(topic) && !strings.Contains(topic, h.hubLeaf) && !strings.Contains(topic, "%") {
		return false
	}
	return h.underHub(topic)
}

// hasHost reports whether topic starts with a scheme and a non-empty
// authority ("scheme://host").
func hasHost(topic string) bool {
	scheme, rest, ok := strings.Cut(topic, "://")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(rest[:1], "/?#") {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// underHub reports whether topic, resolved against the hub URL, has the
// hub's path or a path below it.
func (h *Handler) underHub(topic string) bool {
	u, err := h.hubURL.Parse(topic)
	if err != nil {
		return false
	}
	p := path.Clean("/" + u.Path)
	return p == h.hubPath || strings.HasPrefix(p, h.hubPath+"/")
}

// sameOriginOrAllowed is the CSRF check for cookie-authenticated publishes:
// the Origin (or, without one, the Referer) must be the hub's own origin or
// an allowed CORS origin.
func (h *Handler) sameOriginOrAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		ref, err := url.Parse(r.Referer())
		if err != nil || ref.Host == "" {
			return false
		}
		origin = ref.Scheme + "://" + ref.Host
	}
	if origin == "null" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return origin == scheme+"://"+r.Host || slices.Contains(h.cfg.CORSOrigins, origin)
}
