package clustertest

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/sse"
)

// publishKey publishes data on topic with an Idempotency-Key and returns
// the status and the trimmed body (the ID on success).
func publishKey(t *testing.T, base, token, topic, data, key string, private bool) (int, string) {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	if private {
		form.Set("private", "on")
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// follow opens a stream of topic on base and returns its events.
func follow(t *testing.T, base, token, topic string) <-chan sse.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure?match="+url.QueryEscape(topic), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("subscribe: %v %v", resp, err)
	}
	ch := make(chan sse.Event, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		dec := sse.NewDecoder(resp.Body)
		for {
			ev, err := dec.Decode()
			if err != nil {
				return
			}
			ch <- ev
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return ch
}

// nextEvent returns the next event of ch, failing the test after 30 s (a
// hang detector, not a timing assertion).
func nextEvent(t *testing.T, ch <-chan sse.Event) sse.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30 s")
	}
	return sse.Event{}
}

// TestIdempotencyKeyScopedAcrossHubs: on two hubs sharing one engine, an
// Idempotency-Key belongs to its publisher. Bob, using the key of alice's
// private update on the other hub, gets a new update and his own ID, not
// alice's; alice's retry on bob's hub gets hers; alice's publish with a
// key bob used first is stored. Each hub learns the others' keys from the
// engine's log, and JetStream deduplicates by the scoped key.
func TestIdempotencyKeyScopedAcrossHubs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		c := StartCluster(t, binary, start, 2)
		mint := func(sub string) string {
			tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(Key)}, jwtauth.Claims{Subject: sub, Publish: []string{"*"}, Expires: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		alice, bob := mint("alice"), mint("bob")
		const topic = "https://example.com/orders"
		// Both hubs' streams: an event on one proves that hub dispatched
		// it, and so learned its key.
		streams := []<-chan sse.Event{follow(t, c.Hubs[0].Base(), c.Token, topic), follow(t, c.Hubs[1].Base(), c.Token, topic)}
		tokens := map[string]string{"alice": alice, "bob": bob}
		ids := map[string]string{} // data of each stored publish -> its ID
		var stored []string
		for i, st := range []struct {
			hub            int
			publisher, key string
			private        bool
			want           string
		}{
			{0, "alice", "order-1", true, "alice's order"},
			{1, "bob", "order-1", false, "bob's order"},
			{1, "alice", "order-1", true, "alice's order"},
			{0, "bob", "order-1", false, "bob's order"},
			{0, "bob", "order-2", false, "bob's second order"},
			{1, "alice", "order-2", true, "alice's second order"},
		} {
			status, id := publishKey(t, c.Hubs[st.hub].Base(), tokens[st.publisher], topic, st.want, st.key, st.private)
			if status != 200 {
				t.Fatalf("step %d: publish: %d %s", i, status, id)
			}
			want, seen := ids[st.want]
			switch {
			case !seen:
				for data, other := range ids {
					if other == id {
						t.Fatalf("step %d (%s, key %s, hub %d) got the ID of %q; want a new update", i, st.publisher, st.key, st.hub, data)
					}
				}
				ids[st.want] = id
				stored = append(stored, st.want)
				for h, s := range streams {
					if ev := nextEvent(t, s); ev.ID != id || ev.Data != st.want {
						t.Fatalf("step %d: hub %d delivered %q %q; want %q %q", i, h, ev.ID, ev.Data, id, st.want)
					}
				}
			case id != want:
				t.Fatalf("step %d (%s, key %s, hub %d) got %q; want %q, the ID of %q", i, st.publisher, st.key, st.hub, id, want, st.want)
			}
		}
		// Nothing else was stored: the next event on both streams is a
		// marker published now.
		if code, err := publishData(http.DefaultClient, c.Hubs[0].Base(), c.Token, topic, "marker"); err != nil || code != 200 {
			t.Fatalf("publish marker: %d %v", code, err)
		}
		for h, s := range streams {
			if ev := nextEvent(t, s); ev.Data != "marker" {
				t.Errorf("hub %d delivered %q before the marker: a retry was stored", h, ev.Data)
			}
		}
		if len(stored) != 4 {
			t.Errorf("stored %q; want 4 publishes", stored)
		}
	})
}
