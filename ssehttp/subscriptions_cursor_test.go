package ssehttp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// TestSubscriptionsCursorDisclosesNothing: the subscriptions API's
// reconciliation cursor (the Link header's last-event-id, and the ETag) is
// the newest update its caller may see, never the ID of a private update
// it may not read; and an update it may not see does not change the ETag
// either.
func TestSubscriptionsCursorDisclosesNothing(t *testing.T) {
	t.Parallel()
	f := presenceFixture(t, true)
	ctx := context.Background()
	// The API reads the cursor from what the hub dispatched: every publish
	// waits until this subscription of everything has it.
	all, err := f.hub.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{hub.MatchAll}, CanRead: func([]string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	pub := func(id string, private bool, topic string) {
		t.Helper()
		if _, err := f.hub.Publish(ctx, &hub.Update{ID: id, Topics: []string{topic}, Private: private}); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case <-all.Ready():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s was not dispatched within 10 s", id)
			}
			got, err := all.Drain(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 && got[len(got)-1].ID == id {
				return
			}
		}
	}
	const secret, public = "https://example.com/secret", "https://example.com/news"
	const visible = "/.well-known/mercure/subscriptions/exact/x/y" // "watch" may read it
	var lastETag string
	for i, step := range []struct {
		name    string
		publish func()
		cursor  string // the cursor "watch" must get
		same    bool   // the ETag must not change
	}{
		{"empty log", func() {}, hub.Earliest, false},
		{"only a private update", func() { pub("secret-1", true, secret) }, hub.Earliest, true},
		{"a public update", func() { pub("public-1", false, public) }, "public-1", false},
		{"then a private one", func() { pub("secret-2", true, secret) }, "public-1", true},
		{"a private update the caller may read", func() { pub("readable-1", true, visible) }, "readable-1", false},
		{"then more private ones", func() {
			for j := range 10 {
				pub(fmt.Sprintf("secret-3-%d", j), true, secret)
			}
		}, "readable-1", true},
		// Past the scan window, the newest public update.
		{"a window of private updates", func() {
			for j := range hub.LastEventScan + 1 {
				pub(fmt.Sprintf("secret-4-%d", j), true, secret)
			}
		}, "public-1", false},
	} {
		step.publish()
		resp, body := f.get(t, SubscriptionsPath, bearer("watch"))
		if resp.StatusCode != 200 {
			t.Fatalf("step %d (%s): %d %s", i, step.name, resp.StatusCode, body)
		}
		link, etag := resp.Header.Get("Link"), resp.Header.Get("ETag")
		if want := `last-event-id="` + step.cursor + `"`; !strings.Contains(link, want) {
			t.Errorf("step %d (%s): Link = %s; want %s", i, step.name, link, want)
		}
		if strings.Contains(link+etag, "secret") {
			t.Errorf("step %d (%s): Link %s, ETag %s disclose a private update", i, step.name, link, etag)
		}
		if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
			t.Errorf("step %d (%s): ETag %s is not a strong entity tag", i, step.name, etag)
		}
		if step.same != (etag == lastETag) {
			t.Errorf("step %d (%s): ETag %s after %s: same %v, want %v", i, step.name, etag, lastETag, etag == lastETag, step.same)
		}
		if resp, _ := f.get(t, SubscriptionsPath, http.Header{"Authorization": {"Bearer watch"}, "If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
			t.Errorf("step %d (%s): If-None-Match of the current ETag: %d, want 304", i, step.name, resp.StatusCode)
		}
		lastETag = etag
	}
	// Another view of the same list (another collection path) has another
	// ETag.
	resp, _ := f.get(t, SubscriptionsPath+"/exact/x", bearer("watch"))
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == lastETag {
		t.Errorf("another collection: %d, ETag %s (the collection's is %s)", resp.StatusCode, resp.Header.Get("ETag"), lastETag)
	}
}
