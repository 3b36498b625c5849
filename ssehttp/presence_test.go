package ssehttp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// presenceFixture is a hub with the subscriptions feature on, and tokens:
// "watch" may read every subscription event and the whole API, "books" may
// read only the subscriptions of books (and carries a payload), "only-a"
// nothing of it.
func presenceFixture(t *testing.T, on bool) *fixture {
	t.Helper()
	return presenceFixtureOn(t, on, hub.Config{})
}

// presenceFixtureOn is presenceFixture with a hub configured by hcfg.
func presenceFixtureOn(t *testing.T, on bool, hcfg hub.Config) *fixture {
	t.Helper()
	comp, err := selector.New(selector.Config{HubURL: "https://hub.example/.well-known/mercure"})
	if err != nil {
		t.Fatal(err)
	}
	compile := func(k selector.Kind, s string) hub.Matcher {
		m, err := comp.Compile(k, s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	toks := tokens{
		"watch": {Subject: "watcher", Subscribe: []hub.Matcher{compile(selector.URLPattern, "/.well-known/mercure/subscriptions*")}},
		"books": {
			Subject:   "reader",
			Subscribe: []hub.Matcher{compile(selector.URLPattern, "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F*")},
			Payloads:  []auth.Payload{{Match: compile(selector.URLPattern, "https://example.com/books/*"), Data: json.RawMessage(`{"name":"alice"}`)}},
			Payload:   json.RawMessage(`"fallback"`),
		},
		"only-a": testTokens["only-a"],
		"all":    testTokens["all"],
	}
	f := newFixtureOn(t, hcfg, func(c *Config) {
		c.Auth, c.Compiler = toks, comp
		if on {
			c.Presence = hub.NewLocalPresence()
		}
	})
	return f
}

func bearer(tok string) http.Header {
	if tok == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func (f *fixture) get(t *testing.T, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// nextSubscriptionEvent reads the next subscription event of s.
func nextSubscriptionEvent(t *testing.T, s *stream) (subscriptionDoc, string) {
	t.Helper()
	ev := s.next(t)
	if ev.Type != "mercure" {
		t.Fatalf("event type %q, want mercure (data %s)", ev.Type, ev.Data)
	}
	var d subscriptionDoc
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		t.Fatalf("subscription event %q: %v", ev.Data, err)
	}
	return d, ev.ID
}

func TestSubscriptionEventsAndAPI(t *testing.T) {
	t.Parallel()
	f := presenceFixture(t, true)
	w := f.subscribe(t, "match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions*"), bearer("watch"))
	own, _ := nextSubscriptionEvent(t, w)
	if !own.Active || own.MatchType != "urlpattern" || own.Match != "/.well-known/mercure/subscriptions*" {
		t.Fatalf("the watcher's own subscription event = %+v", own)
	}

	// A reader with two selectors, one of each dialect.
	q := "match=" + url.QueryEscape("https://example.com/books/1") + "&topic=" + url.QueryEscape("https://example.com/users/{id}")
	r := f.subscribe(t, q, bearer("books"))
	book, _ := nextSubscriptionEvent(t, w)
	user, _ := nextSubscriptionEvent(t, w)
	sub := book.Subscriber
	if !strings.HasPrefix(sub, "urn:uuid:") || sub == own.Subscriber || user.Subscriber != sub {
		t.Fatalf("subscribers %q, %q (watcher %q): want one new urn:uuid per connection", book.Subscriber, user.Subscriber, own.Subscriber)
	}
	esub := url.QueryEscape(sub)
	wantBook := subscriptionDoc{
		ID:   "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/" + esub,
		Type: "subscription", Subscriber: sub, Match: "https://example.com/books/1", MatchType: "exact", Active: true,
		Payload: json.RawMessage(`{"name":"alice"}`),
	}
	wantUser := subscriptionDoc{
		ID:   "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fusers%2F%7Bid%7D/" + esub,
		Type: "subscription", Subscriber: sub, Topic: "https://example.com/users/{id}", Active: true,
		Payload: json.RawMessage(`"fallback"`),
	}
	sameDoc(t, "exact subscription event", book, wantBook)
	sameDoc(t, "v0.24 subscription event", user, wantUser)

	// The collection.
	resp, body := f.get(t, SubscriptionsPath, bearer("watch"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET collection: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var all subscriptionsDoc
	if err := json.Unmarshal([]byte(body), &all); err != nil {
		t.Fatal(err)
	}
	if all.ID != SubscriptionsPath || all.Type != "subscriptions" || len(all.Subscriptions) != 3 {
		t.Fatalf("collection = %s", body)
	}
	// The cursor is the hub's: a stream cursor at the end of the log,
	// past the last subscription event.
	cursor, err := f.hub.Cursor(context.Background())
	if err != nil || !strings.HasPrefix(cursor, hub.CursorPrefix) || all.LastEventID != cursor {
		t.Errorf("lastEventID %q; want the hub's cursor %q (%v)", all.LastEventID, cursor, err)
	}
	link := resp.Header.Get("Link")
	if want := `<https://hub.example/.well-known/mercure>; rel="mercure"; last-event-id="` + cursor + `"; type="mercure"; content-type="application/json"`; link != want {
		t.Errorf("Link = %s\nwant   %s", link, want)
	}
	etag := resp.Header.Get("ETag")
	if etag != subscriptionsETag([]byte(body)) {
		t.Errorf("ETag = %s, want the digest of the body", etag)
	}
	if resp, _ := f.get(t, SubscriptionsPath, http.Header{"Authorization": {"Bearer watch"}, "If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match of the current cursor: %d, want 304", resp.StatusCode)
	}

	// One selector's collection, one subscription, both dialects.
	bookPath := SubscriptionsPath + "/exact/" + url.QueryEscape("https://example.com/books/1")
	resp, body = f.get(t, bookPath, bearer("books"))
	var books subscriptionsDoc
	if err := json.Unmarshal([]byte(body), &books); err != nil || resp.StatusCode != 200 || books.ID != bookPath || len(books.Subscriptions) != 1 {
		t.Fatalf("GET %s: %d %s", bookPath, resp.StatusCode, body)
	}
	sameDoc(t, "per-selector collection", books.Subscriptions[0], wantBook)
	for _, tc := range []struct {
		path string
		want subscriptionDoc
	}{{wantBook.ID, wantBook}, {wantUser.ID, wantUser}} {
		resp, body = f.get(t, tc.path, bearer("watch"))
		var d subscriptionAnswer
		if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", tc.path, resp.StatusCode, body)
		}
		sameDoc(t, "GET "+tc.path, d.subscriptionDoc, tc.want)
		if d.LastEventID != cursor {
			t.Errorf("GET %s: lastEventID %q, want %q", tc.path, d.LastEventID, cursor)
		}
	}

	// Refusals.
	for _, tc := range []struct {
		name, path, token string
		status            int
		reason            string
	}{
		{"no token", SubscriptionsPath, "", 401, "requires a token"},
		{"bad token", SubscriptionsPath, "forged", 401, "signature is invalid"},
		{"not granted", SubscriptionsPath, "only-a", 403, "does not grant"},
		{"granted books only", SubscriptionsPath, "books", 403, "does not grant"},
		{"unknown subscription", SubscriptionsPath + "/exact/x/urn%3Auuid%3Anone", "watch", 404, "no such active subscription"},
		{"too many segments", SubscriptionsPath + "/exact/x/y/z", "watch", 400, "malformed subscriptions URL"},
	} {
		resp, body := f.get(t, tc.path, bearer(tc.token))
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: GET %s = %d %q, want %d containing %q", tc.name, tc.path, resp.StatusCode, body, tc.status, tc.reason)
		}
	}

	// The reader leaves: both its subscriptions end, and the registry
	// forgets them.
	r.resp.Body.Close()
	gone := map[string]bool{}
	for range 2 {
		d, _ := nextSubscriptionEvent(t, w)
		if d.Active || d.Subscriber != sub {
			t.Fatalf("after the reader left: %+v", d)
		}
		gone[d.ID] = true
	}
	if !gone[wantBook.ID] || !gone[wantUser.ID] {
		t.Fatalf("inactive events for %v, want both of the reader's subscriptions", gone)
	}
	_, body = f.get(t, SubscriptionsPath, bearer("watch"))
	if err := json.Unmarshal([]byte(body), &all); err != nil || len(all.Subscriptions) != 1 || all.Subscriptions[0].Subscriber != own.Subscriber {
		t.Fatalf("collection after the reader left = %s", body)
	}
}

func sameDoc(t *testing.T, what string, got, want subscriptionDoc) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func TestSubscriptionEventsArePrivate(t *testing.T) {
	t.Parallel()
	f := presenceFixture(t, true)
	// An anonymous subscriber of every topic sees no subscription event;
	// a later public update proves the stream was live.
	anon := f.subscribe(t, "match=*", nil)
	f.subscribe(t, "match=https://example.com/books/1", bearer("books"))
	if status, body, _ := f.publish(t, "all", form("topic", "https://example.com/public", "data", "hello"), nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	if ev := anon.next(t); ev.Type == "mercure" || ev.Data != "hello" {
		t.Fatalf("an anonymous subscriber got %+v", ev)
	}
}

func TestSubscriptionsOff(t *testing.T) {
	t.Parallel()
	f := presenceFixture(t, false)
	w := f.subscribe(t, "match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions*")+"&match=https://example.com/public", bearer("watch"))
	f.subscribe(t, "match=https://example.com/books/1", bearer("books"))
	if resp, body := f.get(t, SubscriptionsPath, bearer("watch")); resp.StatusCode != 404 || !strings.Contains(body, "--subscriptions") {
		t.Errorf("GET with the feature off: %d %q", resp.StatusCode, body)
	}
	if status, body, _ := f.publish(t, "all", form("topic", "https://example.com/public", "data", "hello"), nil); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	if ev := w.next(t); ev.Type == "mercure" || ev.Data != "hello" {
		t.Fatalf("with the feature off the watcher got %+v", ev)
	}
}

func TestParseSubscriptionsPath(t *testing.T) {
	t.Parallel()
	h := &Handler{hubPath: "/.well-known/mercure"}
	for _, tc := range []struct {
		path   string
		want   subscriptionsFilter
		single bool
		ok     bool
	}{
		{"/.well-known/mercure/subscriptions", subscriptionsFilter{}, false, true},
		{"/.well-known/mercure/subscriptions/", subscriptionsFilter{}, false, true},
		{"/.well-known/mercure/subscriptions/exact/a%2Fb", subscriptionsFilter{matchType: "exact", match: "a/b"}, false, true},
		{"/.well-known/mercure/subscriptions/urlpattern/a/urn%3Ax", subscriptionsFilter{matchType: "urlpattern", match: "a", subscriber: "urn:x"}, true, true},
		{"/.well-known/mercure/subscriptions/t%7Bx%7D", subscriptionsFilter{topic: "t{x}"}, false, true},
		{"/.well-known/mercure/subscriptions/t/urn%3Ax", subscriptionsFilter{topic: "t", subscriber: "urn:x"}, true, true},
		{"/.well-known/mercure/subscriptions/Exact/a/b", subscriptionsFilter{}, false, false}, // matcher types are case-sensitive
		{"/.well-known/mercure/subscriptions/exact//b", subscriptionsFilter{}, false, false},
		{"/.well-known/mercure/subscriptions/exact/%zz", subscriptionsFilter{}, false, false},
		{"/.well-known/mercure/subscriptions/a/b/c/d", subscriptionsFilter{}, false, false},
		{"/.well-known/mercure/other", subscriptionsFilter{}, false, false},
	} {
		f, single, ok := h.parseSubscriptionsPath(tc.path)
		if ok != tc.ok || (ok && (f != tc.want || single != tc.single)) {
			t.Errorf("parse(%s) = %+v, %v, %v; want %+v, %v, %v", tc.path, f, single, ok, tc.want, tc.single, tc.ok)
		}
	}
}
