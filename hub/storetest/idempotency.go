package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// testIdempotencyScope: an idempotency key belongs to its publisher on
// this engine. Two hubs share the store: each keeps publishers' keys
// apart whether it learned them at its own publish or from the log
// (another hub's update), and so does a hub started later, which relearns
// them from history. Every publish that is not a retry is stored, with its
// own data.
func testIdempotencyScope(t *testing.T, s hub.Store) {
	ctx := context.Background()
	open := func() (*hub.Hub, *hub.Subscription) {
		t.Helper()
		h, err := hub.New(hub.Config{Store: s})
		if err != nil {
			t.Fatalf("hub.New: %v", err)
		}
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		sub, err := h.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{hub.MatchAll}, CanRead: func([]string) bool { return true }})
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		t.Cleanup(sub.Close)
		return h, sub
	}
	a, subA := open()
	b, subB := open()
	hubs := map[string]*hub.Hub{"a": a, "b": b}
	subs := []*hub.Subscription{subA, subB}
	ids := map[string]string{} // the data of each stored publish -> its ID
	var stored []string
	steps := []struct {
		hub, publisher, key string
		// want is the data of the publish whose ID the step must get: new
		// data is a new update, data seen before a retry of that publish.
		want string
	}{
		{"a", "sub:alice", "k", "alice"},
		{"b", "sub:bob", "k", "bob"}, // another hub learned alice's key from the log
		{"b", "sub:alice", "k", "alice"},
		{"a", "sub:bob", "k", "bob"},
		{"a", "sub:carol", "k3", "carol"},    // carol uses k3 first...
		{"b", "sub:alice", "k3", "alice k3"}, // ...and alice's publish with it is stored
		{"a", "", "k", "anonymous"},
		{"b", "", "k", "anonymous"},
	}
	for i, st := range steps {
		id, err := hubs[st.hub].Publish(ctx, &hub.Update{
			Topics: []string{"https://example.com/t"}, Data: st.want, Private: true,
			Publisher: st.publisher, IdempotencyKey: st.key,
		})
		if err != nil {
			t.Fatalf("step %d: Publish: %v", i, err)
		}
		want, seen := ids[st.want]
		switch {
		case !seen:
			for data, other := range ids {
				if other == id {
					t.Fatalf("step %d (%q, key %q on hub %s) got the ID of %q; want a new update", i, st.publisher, st.key, st.hub, data)
				}
			}
			ids[st.want] = id
			stored = append(stored, st.want)
			// Both hubs dispatch it, and so learn its key, before the
			// next step.
			for _, sub := range subs {
				if got := drainOne(t, sub); got.ID != id {
					t.Fatalf("step %d: a hub dispatched %q; want %q", i, got.ID, id)
				}
			}
		case id != want:
			t.Fatalf("step %d (%q, key %q on hub %s) got %q; want %q, the ID of %q", i, st.publisher, st.key, st.hub, id, want, st.want)
		}
	}
	var datas []string
	for _, u := range readAll(t, s, hub.Position{}) {
		datas = append(datas, u.Data)
		if ids[u.Data] != u.ID {
			t.Errorf("stored %q with data %q; want ID %q", u.ID, u.Data, ids[u.Data])
		}
	}
	if !slices.Equal(datas, stored) {
		t.Fatalf("the store holds %q; want %q, one update per publisher and key", datas, stored)
	}
	// A hub started now relearns every key from history.
	c, _ := open()
	for i, st := range steps {
		id, err := c.Publish(ctx, &hub.Update{Topics: []string{"https://example.com/t"}, Data: "retry", Publisher: st.publisher, IdempotencyKey: st.key})
		if err != nil || id != ids[st.want] {
			t.Fatalf("step %d retried on a new hub: %q, %v; want %q", i, id, err, ids[st.want])
		}
	}
	if n := len(readAll(t, s, hub.Position{})); n != len(stored) {
		t.Fatalf("the retries on a new hub stored %d updates", n-len(stored))
	}
}

// drainOne returns the next update of sub, failing the test after wait.
func drainOne(t *testing.T, sub *hub.Subscription) *hub.Update {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-sub.Ready():
		case <-timer.C:
			t.Fatalf("no update dispatched within %v", wait)
		}
		got, err := sub.Drain(context.Background(), nil)
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		switch len(got) {
		case 0:
			continue
		case 1:
			return got[0]
		default:
			t.Fatalf("dispatched %d updates at once; want 1", len(got))
		}
	}
}
