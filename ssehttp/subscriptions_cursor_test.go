package ssehttp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
)

// TestSubscriptionsCursorDisclosesNothing: the subscriptions API's
// reconciliation cursor (the Link header's last-event-id, the body's
// lastEventID, and the ETag) is a stream cursor at the end of the log,
// never the ID of an update: a private update the caller may not read
// moves it, as any update does, but appears in none of them.
func TestSubscriptionsCursorDisclosesNothing(t *testing.T) {
	t.Parallel()
	f := presenceFixture(t, true)
	ctx := context.Background()
	pub := func(id string, private bool, topic string) {
		t.Helper()
		if _, err := f.hub.Publish(ctx, &hub.Update{ID: id, Topics: []string{topic}, Private: private}); err != nil {
			t.Fatal(err)
		}
	}
	const secret, public = "https://example.com/secret", "https://example.com/news"
	const visible = "/.well-known/mercure/subscriptions/exact/x/y" // "watch" may read it
	var lastCursor, lastETag string
	for i, step := range []struct {
		name    string
		publish func()
	}{
		{"empty log", func() {}},
		{"only a private update", func() { pub("secret-1", true, secret) }},
		{"a public update", func() { pub("public-1", false, public) }},
		{"then a private one", func() { pub("secret-2", true, secret) }},
		{"a private update the caller may read", func() { pub("readable-1", true, visible) }},
		{"then more private ones", func() {
			for j := range 10 {
				pub(fmt.Sprintf("secret-3-%d", j), true, secret)
			}
		}},
	} {
		step.publish()
		want, err := f.hub.Cursor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := f.get(t, SubscriptionsPath, bearer("watch"))
		if resp.StatusCode != 200 {
			t.Fatalf("step %d (%s): %d %s", i, step.name, resp.StatusCode, body)
		}
		link, etag := resp.Header.Get("Link"), resp.Header.Get("ETag")
		var doc subscriptionsDoc
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("step %d (%s): %v in %s", i, step.name, err, body)
		}
		cursor := doc.LastEventID
		switch {
		case i == 0 && cursor != hub.Earliest:
			t.Errorf("step %d (%s): cursor %q, want %q", i, step.name, cursor, hub.Earliest)
		case i > 0 && (cursor != want || cursor == lastCursor):
			t.Errorf("step %d (%s): cursor %q after %q, want the hub's new cursor %q", i, step.name, cursor, lastCursor, want)
		}
		if !strings.Contains(link, `last-event-id="`+cursor+`"`) {
			t.Errorf("step %d (%s): Link = %s; want the body's lastEventID %q", i, step.name, link, cursor)
		}
		if strings.Contains(link+etag+body, "secret") || strings.Contains(link+etag+body, "readable") || strings.Contains(link+etag+body, "public-") {
			t.Errorf("step %d (%s): Link %s, ETag %s, body %s disclose an update ID", i, step.name, link, etag, body)
		}
		if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || etag == lastETag {
			t.Errorf("step %d (%s): ETag %s (before: %s), want a new strong entity tag", i, step.name, etag, lastETag)
		}
		if resp, _ := f.get(t, SubscriptionsPath, http.Header{"Authorization": {"Bearer watch"}, "If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
			t.Errorf("step %d (%s): If-None-Match of the current ETag: %d, want 304", i, step.name, resp.StatusCode)
		}
		lastCursor, lastETag = cursor, etag
	}
	// Another view of the same list (another collection path) has another
	// ETag.
	resp, _ := f.get(t, SubscriptionsPath+"/exact/x", bearer("watch"))
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == lastETag {
		t.Errorf("another collection: %d, ETag %s (the collection's is %s)", resp.StatusCode, resp.Header.Get("ETag"), lastETag)
	}
}

// TestSubscriptionsCursorHandOff: subscribing to subscription events from
// the subscriptions API's cursor delivers exactly the subscription events
// after the list: none that the list already reflects, none missed, on
// the memory store and on bolt. (That the list may be read before the
// hub dispatched the events it reflects is TestHubCursor's.)
func TestSubscriptionsCursorHandOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) hub.Store
	}{
		{"memory", func(*testing.T) hub.Store { return nil }},
		{"bolt", func(t *testing.T) hub.Store {
			st, err := boltstore.Open(t.TempDir(), boltstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() }) // after the hub's close
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testSubscriptionsCursorHandOff(t, presenceFixtureOn(t, true, hub.Config{Store: tc.store(t)}))
		})
	}
}

func testSubscriptionsCursorHandOff(t *testing.T, f *fixture) {
	ctx := context.Background()
	const base = "https://example.com/"
	// seen reads, from a subscription of everything on the hub itself (no
	// stream, so no subscription event of its own), the next subscription
	// event, which must be name's and say active: the event is stored, and
	// the registry changed before it.
	all, err := f.hub.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{hub.MatchAll}, CanRead: func([]string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	var pending []*hub.Update
	seen := func(name string, active bool) {
		t.Helper()
		for len(pending) == 0 {
			select {
			case <-all.Ready():
			case <-time.After(10 * time.Second):
				t.Fatalf("no subscription event of %s within 10 s", name)
			}
			if pending, err = all.Drain(ctx, pending); err != nil {
				t.Fatal(err)
			}
		}
		u := pending[0]
		pending = pending[1:]
		var d subscriptionDoc
		if u.Type != "mercure" || json.Unmarshal([]byte(u.Data), &d) != nil || d.Match != base+name || d.Active != active {
			t.Fatalf("event %s %s, want %s's with active %v", u.Type, u.Data, name, active)
		}
	}
	open := func(name string) *stream {
		t.Helper()
		s := f.subscribe(t, "match="+url.QueryEscape(base+name), bearer("all"))
		seen(name, true)
		return s
	}
	leave := func(s *stream, name string) {
		t.Helper()
		s.resp.Body.Close()
		seen(name, false)
	}
	// list answers the names the API lists, and its cursor.
	list := func() ([]string, string) {
		t.Helper()
		resp, body := f.get(t, SubscriptionsPath, bearer("watch"))
		var doc subscriptionsDoc
		if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET: %d %s", resp.StatusCode, body)
		}
		if link := resp.Header.Get("Link"); !strings.Contains(link, `last-event-id="`+doc.LastEventID+`"`) {
			t.Fatalf("Link %s, body's lastEventID %q", link, doc.LastEventID)
		}
		var names []string
		for _, d := range doc.Subscriptions {
			names = append(names, strings.TrimPrefix(d.Match, base))
		}
		slices.Sort(names)
		return names, doc.LastEventID
	}

	a, b := open("a"), open("b")
	leave(b, "b")
	before, cursor := list()
	if !slices.Equal(before, []string{"a"}) || !strings.HasPrefix(cursor, hub.CursorPrefix) {
		t.Fatalf("list %v, cursor %q; want [a] and a stream cursor", before, cursor)
	}
	open("c")
	leave(a, "a")
	const marker = "/.well-known/mercure/subscriptions/marker" // "watch" may read it
	if _, err := f.hub.Publish(ctx, &hub.Update{Topics: []string{marker}, Private: true, Type: "marker"}); err != nil {
		t.Fatal(err)
	}

	w := f.subscribe(t, "match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions*"),
		http.Header{"Authorization": {"Bearer watch"}, "Last-Event-Id": {cursor}})
	if got := w.resp.Header.Get("Mercure-Last-Event-ID"); got != cursor {
		t.Fatalf("Mercure-Last-Event-ID %q, want the cursor %q", got, cursor)
	}
	var events []string
	state := map[string]bool{}
	for _, n := range before {
		state[n] = true
	}
	for {
		ev := w.next(t)
		if ev.Type == "marker" {
			break
		}
		var d subscriptionDoc
		if ev.Type != "mercure" || json.Unmarshal([]byte(ev.Data), &d) != nil {
			t.Fatalf("unexpected event %+v", ev)
		}
		name := strings.TrimPrefix(d.Match, base)
		events = append(events, fmt.Sprintf("%s:%v", name, d.Active))
		if d.Active {
			state[name] = true
		} else {
			delete(state, name)
		}
	}
	if want := []string{"c:true", "a:false"}; !slices.Equal(events, want) {
		t.Errorf("subscription events after the cursor: %v, want %v", events, want)
	}
	// The list and the events after its cursor make the list of now.
	var rebuilt []string
	for n := range state {
		rebuilt = append(rebuilt, n)
	}
	slices.Sort(rebuilt)
	now, _ := list()
	now = slices.DeleteFunc(now, func(n string) bool { return strings.HasPrefix(n, "/") }) // the watcher, announced after the marker
	if !slices.Equal(rebuilt, now) {
		t.Errorf("list %v plus events %v = %v; the API lists %v", before, events, rebuilt, now)
	}
}
