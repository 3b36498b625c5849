package ssehttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// SubscriptionsPath is where the Mercure subscriptions API is mounted (the
// collection; single subscriptions and per-selector collections are below
// it), under the hub's reserved namespace.
const SubscriptionsPath = DefaultPath + "/subscriptions"

// presenceTimeout bounds each registry call and each subscription event's
// publish.
const presenceTimeout = 10 * time.Second

// subscriptionDoc is a Mercure subscription document: the data of a
// subscription event and an entry of the subscriptions API.
type subscriptionDoc struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Subscriber string          `json:"subscriber"`
	Topic      string          `json:"topic,omitempty"`
	Match      string          `json:"match,omitempty"`
	MatchType  string          `json:"match_type,omitempty"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// subscriptionsDoc is a collection of the subscriptions API.
type subscriptionsDoc struct {
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	LastEventID   string            `json:"lastEventID"` // the cursor, as in the Link header
	Subscriptions []subscriptionDoc `json:"subscriptions"`
}

// subscriptionAnswer is a single subscription of the subscriptions API:
// its document and the cursor.
type subscriptionAnswer struct {
	subscriptionDoc
	LastEventID string `json:"lastEventID"`
}

// presence tracks the subscription events under way, so that Wait can wait
// for the last ones of a drain.
type presence struct {
	reg hub.Presence
	wg  sync.WaitGroup
}

// escapeSegment percent-encodes s as one path segment, exactly once, as
// the Mercure spec and its reference hub do.
func escapeSegment(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// doc returns the subscription document of s, subscribed by subscriber.
// A v0.24 topic selector ("template") keeps the v0.24 shape: its topic is
// /subscriptions/{topic}/{subscriber} and it carries "topic" instead of
// "match" and "match_type".
func (h *Handler) doc(subscriber string, s hub.PresenceSubscription, active bool) subscriptionDoc {
	d := subscriptionDoc{Type: "subscription", Subscriber: subscriber, Active: active, Payload: s.Payload}
	base := h.hubPath + "/subscriptions/"
	if s.MatchType == selector.Template.String() {
		d.ID = base + escapeSegment(s.Match) + "/" + escapeSegment(subscriber)
		d.Topic = s.Match
	} else {
		d.ID = base + escapeSegment(s.MatchType) + "/" + escapeSegment(s.Match) + "/" + escapeSegment(subscriber)
		d.Match, d.MatchType = s.Match, s.MatchType
	}
	return d
}

// presenceEntry describes a new stream's subscriptions for the registry.
func presenceEntry(topics []hub.Matcher, grant *auth.Grant) hub.PresenceEntry {
	e := hub.PresenceEntry{Subscriber: hub.NewID()} // random: a token may open several streams
	for _, m := range topics {
		sm, ok := m.(*selector.Matcher)
		if !ok {
			continue
		}
		e.Subscriptions = append(e.Subscriptions, hub.PresenceSubscription{
			MatchType: sm.Kind().String(),
			Match:     sm.String(),
			Payload:   grant.PayloadFor(sm.String()),
		})
	}
	return e
}

// join registers a new stream's subscriptions and announces them, in the
// background; the returned function, called when the stream ends, does the
// same for its end, after the announcement of its start.
func (h *Handler) join(e hub.PresenceEntry) (leave func()) {
	p := h.pres
	joined := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(joined)
		ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
		defer cancel()
		// The registry first, then the event: a client that reads the
		// list and then follows events from the list's cursor misses
		// nothing (see Subscriptions).
		if err := p.reg.Join(ctx, e); err != nil {
			h.log.Warn("presence: cannot register a subscriber", "err", err)
		}
		h.announce(ctx, e, true)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				<-joined
				ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
				defer cancel()
				if err := p.reg.Leave(ctx, e.Subscriber); err != nil {
					h.log.Warn("presence: cannot unregister a subscriber", "err", err)
				}
				h.announce(ctx, e, false)
			}()
		})
	}
}

// announce publishes one subscription event per subscription of e: a
// private update of the reserved type "mercure" whose topic is the
// subscription's ID.
func (h *Handler) announce(ctx context.Context, e hub.PresenceEntry, active bool) {
	for _, s := range e.Subscriptions {
		d := h.doc(e.Subscriber, s, active)
		data, err := json.Marshal(d)
		if err != nil { // an invalid payload cannot get here: it came from a verified token
			h.log.Warn("presence: cannot encode a subscription event", "err", err)
			continue
		}
		u := &hub.Update{Topics: []string{d.ID}, Data: string(data), Type: "mercure", Private: true}
		if _, err := h.cfg.Hub.Publish(ctx, u); err != nil {
			h.log.Warn("presence: cannot publish a subscription event", "subscriber", e.Subscriber, "active", active, "err", err)
		}
	}
}

// waitPresence waits for the subscription events under way.
func (h *Handler) waitPresence(ctx context.Context) error {
	if h.pres == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		h.pres.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartPresence keeps this hub's presence registry alive: it sweeps the
// registry once before it returns, and then every period (a third of the
// registry's lease is right) until stop is called, announcing the end of
// the subscriptions of hubs that died without saying so, and the return of
// this hub's own after a lapse of its lease. Call it before serving
// streams. stop waits for the sweeper to end. Without Config.Presence it
// does nothing.
func (h *Handler) StartPresence(period time.Duration) (stop func()) {
	if h.pres == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.sweep(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.sweep(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (h *Handler) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	gone, back, err := h.pres.reg.Sweep(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("presence: sweep failed", "err", err)
		}
		return
	}
	if len(gone) > 0 {
		h.log.Info("presence: reaped the subscriptions of a hub that stopped renewing its lease", "subscribers", len(gone))
	}
	for _, e := range gone {
		h.announce(ctx, e, false)
	}
	if len(back) > 0 {
		h.log.Warn("presence: this hub's lease had lapsed; its subscriptions are registered again", "subscribers", len(back))
	}
	for _, e := range back {
		h.announce(ctx, e, true)
	}
}

// Subscriptions returns the Mercure subscriptions API, to be mounted at
// SubscriptionsPath and below it (SubscriptionsPath + "/"): GET answers the
// active subscriptions of every hub sharing the presence registry, as JSON,
// to a subscriber whose token grants reading the request's path as a
// topic. It answers 404 when Config.Presence is not set. See
// docs/protocol.md.
func (h *Handler) Subscriptions() http.Handler {
	return http.HandlerFunc(h.subscriptions)
}

func (h *Handler) subscriptions(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	if h.pres == nil {
		h.fail(w, r, http.StatusNotFound, "the subscriptions API is off (serve --subscriptions turns it on)")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, OPTIONS")
		h.fail(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	self := r.URL.EscapedPath()
	f, single, ok := h.parseSubscriptionsPath(self)
	if !ok {
		h.fail(w, r, http.StatusBadRequest, "malformed subscriptions URL: want "+h.hubPath+"/subscriptions[/{match_type}/{match}[/{subscriber}]]")
		return
	}
	grant, ok := h.authenticate(w, r, auth.Subscriber)
	if !ok {
		return
	}
	if grant == nil {
		h.unauthorized(w, r, "reading subscriptions requires a token")
		return
	}
	// The topic to authorize is the path in relative form, without the
	// query, as subscription events' topics are.
	if !grant.CanRead([]string{self}) {
		h.forbidden(w, r, "token does not grant subscribing to "+self)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), presenceTimeout)
	defer cancel()
	// The cursor first, then the list: the registry changes before the
	// event that announces the change is appended, so the list reflects
	// every subscription event up to the cursor, and subscribing from the
	// cursor delivers every one after it. (The list may also reflect a
	// change whose event is being appended: the client applies it twice,
	// to the same effect.) The cursor is a log position, which discloses
	// no update ID.
	cursor, err := h.cfg.Hub.Cursor(ctx)
	if err != nil {
		h.log.Warn("subscriptions: cannot read the cursor", "err", err)
		h.fail(w, r, http.StatusServiceUnavailable, "subscriptions unavailable")
		return
	}
	entries, err := h.pres.reg.List(ctx)
	if err != nil {
		h.log.Warn("subscriptions: cannot list", "err", err)
		h.fail(w, r, http.StatusServiceUnavailable, "subscriptions unavailable")
		return
	}
	hub.SortPresence(entries)
	docs := make([]subscriptionDoc, 0, len(entries))
	for _, e := range entries {
		if single && e.Subscriber != f.subscriber {
			continue
		}
		for _, s := range e.Subscriptions {
			if f.matches(s) {
				docs = append(docs, h.doc(e.Subscriber, s, true))
			}
		}
	}
	var body any = subscriptionsDoc{ID: self, Type: "subscriptions", LastEventID: cursor, Subscriptions: docs}
	if single {
		if len(docs) == 0 {
			h.fail(w, r, http.StatusNotFound, "no such active subscription")
			return
		}
		body = subscriptionAnswer{docs[0], cursor}
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(body)
	hd := w.Header()
	etag := subscriptionsETag(buf.Bytes())
	hd.Set("ETag", etag)
	hd.Set("Cache-Control", "must-revalidate")
	hd.Set("Link", "<"+h.hubURL.String()+`>; rel="mercure"; last-event-id="`+linkQuote(cursor)+`"; type="mercure"; content-type="application/json"`)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(buf.Bytes())
	}
}

// subscriptionsFilter selects the subscriptions an API URL names.
type subscriptionsFilter struct {
	matchType, match, topic, subscriber string
}

func (f subscriptionsFilter) matches(s hub.PresenceSubscription) bool {
	switch {
	case f.matchType != "":
		return s.MatchType == f.matchType && s.Match == f.match
	case f.topic != "":
		return s.MatchType == selector.Template.String() && s.Match == f.topic
	}
	return true
}

// parseSubscriptionsPath reads an escaped API path: the collection, a
// collection per selector (/{match_type}/{match}, or the v0.24
// /{topic}), or one subscription (/{match_type}/{match}/{subscriber}, or
// the v0.24 /{topic}/{subscriber}). Two segments are a v0.24 single
// subscription unless the first is a Mercure 1.0 matcher type.
func (h *Handler) parseSubscriptionsPath(escaped string) (f subscriptionsFilter, single, ok bool) {
	rest, found := strings.CutPrefix(escaped, h.hubPath+"/subscriptions")
	if !found {
		return f, false, false
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return f, false, true
	}
	raw := strings.Split(rest, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil || v == "" {
			return f, false, false
		}
		segs[i] = v
	}
	_, kindErr := selector.ParseKind(segs[0])
	modern := kindErr == nil
	switch {
	case len(segs) == 1:
		f.topic = segs[0]
	case len(segs) == 2 && modern:
		f.matchType, f.match = segs[0], segs[1]
	case len(segs) == 2:
		f.topic, f.subscriber, single = segs[0], segs[1], true
	case len(segs) == 3 && modern:
		f.matchType, f.match, f.subscriber, single = segs[0], segs[1], segs[2], true
	default:
		return f, false, false
	}
	return f, single, true
}

// subscriptionsETag is the entity tag of a subscriptions API answer: a
// digest of its body, which holds the cursor (lastEventID). It changes
// whenever the answer does, and discloses nothing the answer does not
// show. (The cursor alone would not do: the list changes before the event
// that announces the change is appended.)
func subscriptionsETag(body []byte) string {
	h := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(h[:16]) + `"`
}

// linkQuote escapes a value for a quoted-string of a Link header.
func linkQuote(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
}
