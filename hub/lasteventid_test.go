package hub

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLastEventIDIsVisible: LastEventID is the ID of the newest update its
// caller may see, never that of a private update it may not read, before
// and after the hub's first dispatch.
func TestLastEventIDIsVisible(t *testing.T) {
	t.Parallel()
	mine := func(topics []string) bool { return topics[0] == "mine" }
	type upd struct {
		id, topic string
		private   bool
	}
	many := func(n int) []upd {
		us := make([]upd, n)
		for i := range us {
			us[i] = upd{fmt.Sprintf("secret-%d", i), "secret", true}
		}
		return us
	}
	for _, tc := range []struct {
		name           string
		log            []upd
		public, reader string // the cursor without and with the grant "mine"
	}{
		{"empty", nil, Earliest, Earliest},
		{"only private", []upd{{"s", "secret", true}}, Earliest, Earliest},
		{"public then private", []upd{{"p", "news", false}, {"s", "secret", true}}, "p", "p"},
		{"readable private", []upd{{"p", "news", false}, {"m", "mine", true}, {"s", "secret", true}}, "p", "m"},
		{"newest visible", []upd{{"m", "mine", true}, {"p", "news", false}}, "p", "p"},
		{"past the scan, the newest public", append([]upd{{"p", "news", false}, {"m", "mine", true}}, many(LastEventScan)...), "p", "p"},
		{"within the first read", append([]upd{{"p", "news", false}, {"m", "mine", true}}, many(lastEventNear-1)...), "p", "m"},
		{"just past the first read", append([]upd{{"p", "news", false}, {"m", "mine", true}}, many(lastEventNear)...), "p", "m"},
		{"within the scan", append([]upd{{"p", "news", false}, {"m", "mine", true}}, many(LastEventScan-1)...), "p", "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := NewMemoryStore(MemoryConfig{})
			defer store.Close()
			ctx := context.Background()
			check := func(when string, h *Hub) {
				t.Helper()
				for _, c := range []struct {
					canRead func([]string) bool
					want    string
				}{{nil, tc.public}, {mine, tc.reader}} {
					if got, err := h.LastEventID(ctx, c.canRead); err != nil || got != c.want {
						t.Errorf("%s, reader %v: LastEventID = %q, %v; want %q", when, c.canRead != nil, got, err, c.want)
					}
				}
			}
			// Stored before the hub starts: read from the store.
			for _, u := range tc.log {
				if err := store.Append(ctx, &Update{ID: u.id, Topics: []string{u.topic}, Private: u.private, Time: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			check("before the first dispatch", newHub(t, Config{Store: store}))
			// Published through a hub: from what it dispatched.
			h := newHub(t, Config{QueueSize: 2 * LastEventScan})
			all, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{MatchAll}, CanRead: func([]string) bool { return true }})
			if err != nil {
				t.Fatal(err)
			}
			defer all.Close()
			for _, u := range tc.log {
				publish(t, h, &Update{ID: u.id, Topics: []string{u.topic}, Private: u.private})
			}
			if _, err := next(t, all, len(tc.log)); err != nil {
				t.Fatal(err)
			}
			check("after dispatch", h)
		})
	}
}
