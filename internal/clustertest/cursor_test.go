package clustertest

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/sse"
)

// TestCursorAcrossHubs: the stream cursor one hub hands a new stream is a
// position in the engine's log, so another hub sharing the engine resumes
// from it: the update published after the stream opened, on the first
// hub, is replayed by the second, without a gap.
func TestCursorAcrossHubs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		c := StartCluster(t, binary, start, 2)
		const topic = "https://example.com/cursor"
		open := func(base, last string) (*http.Response, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure?topic="+url.QueryEscape(topic), nil)
			req.Header.Set("Authorization", "Bearer "+c.Token)
			if last != "" {
				req.Header.Set("Last-Event-ID", last)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				cancel()
				t.Fatalf("subscribe: %v %v", resp, err)
			}
			t.Cleanup(func() { cancel(); resp.Body.Close() })
			return resp, cancel
		}

		// A new stream on hub 0: retry, then the cursor, and nothing else.
		resp, drop := open(c.Hubs[0].Base(), "")
		r := bufio.NewReader(resp.Body)
		var cursor string
		for cursor == "" {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the new stream: %v", err)
			}
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				cursor = strings.TrimSuffix(v, "\n")
			}
		}
		if !strings.HasPrefix(cursor, "#") {
			t.Fatalf("the stream's first id %q is not a cursor", cursor)
		}
		drop()

		status, id := publishKey(t, c.Hubs[0].Base(), c.Token, topic, "after the cursor", "cursor-1", false)
		if status != 200 {
			t.Fatalf("publish: %d %s", status, id)
		}

		resp, _ = open(c.Hubs[1].Base(), cursor)
		if got := resp.Header.Get("Mercure-Last-Event-ID"); got != cursor {
			t.Errorf("hub 1 resumed from %q; want the cursor %q", got, cursor)
		}
		ch := make(chan sse.Event, 1)
		go func() {
			defer close(ch)
			if ev, err := sse.NewDecoder(resp.Body).Decode(); err == nil {
				ch <- ev
			}
		}()
		if ev := nextEvent(t, ch); ev.ID != id || ev.Data != "after the cursor" || ev.Type != "message" {
			t.Errorf("hub 1 sent %+v first; want the update %s", ev, id)
		}
	})
}
