package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// testHubCursor: a hub's cursor (Hub.Cursor, what the subscriptions API
// hands out) resumes, on another hub sharing the store, with exactly the
// updates appended after it was taken, private ones to whoever may read
// them, and without a gap.
func testHubCursor(t *testing.T, s hub.Store) {
	ctx := context.Background()
	open := func() *hub.Hub {
		t.Helper()
		h, err := hub.New(hub.Config{Store: s})
		if err != nil {
			t.Fatalf("hub.New: %v", err)
		}
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		return h
	}
	a, b := open(), open()
	publish := func(id string, private bool) {
		t.Helper()
		if _, err := a.Publish(ctx, &hub.Update{ID: id, Topics: []string{"https://example.com/t"}, Private: private}); err != nil {
			t.Fatalf("Publish %s: %v", id, err)
		}
	}
	if c, err := a.Cursor(ctx); err != nil || c != hub.Earliest {
		t.Fatalf("cursor of an empty log: %q, %v; want %q", c, err, hub.Earliest)
	}
	publish("before-1", false)
	publish("before-2", true)
	cursor, err := a.Cursor(ctx)
	if err != nil || !strings.HasPrefix(cursor, hub.CursorPrefix) || strings.Contains(cursor, "before") {
		t.Fatalf("cursor %q, %v; want a stream cursor", cursor, err)
	}
	publish("after-1", true)
	publish("after-2", false)
	sub, err := b.Subscribe(ctx, hub.SubscribeRequest{
		Topics: []hub.Matcher{hub.MatchAll}, LastEventID: cursor, CanRead: func([]string) bool { return true },
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	if r := sub.Resume(); r.Gap != hub.GapNone || r.Anchor != cursor {
		t.Fatalf("resume from the cursor: %+v; want it found", r)
	}
	var got []string
	for len(got) < 2 {
		select {
		case <-sub.Ready():
		case <-time.After(wait):
			t.Fatalf("got %v; want after-1, after-2 within %v", got, wait)
		}
		us, err := sub.Drain(ctx, nil)
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		for _, u := range us {
			got = append(got, u.ID)
		}
	}
	if strings.Join(got, ",") != "after-1,after-2" {
		t.Errorf("resumed from the cursor: %v; want after-1, after-2", got)
	}
}
