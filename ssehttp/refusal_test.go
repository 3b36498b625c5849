package ssehttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/eventsource"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// downStore is a memory store whose Bounds fails while down is set, as a
// Redis or NATS store does while its server is unreachable.
type downStore struct {
	hub.Store
	down atomic.Bool
}

func (s *downStore) Bounds(ctx context.Context) (oldest, newest hub.Position, err error) {
	if s.down.Load() {
		return oldest, newest, errors.New("store unreachable")
	}
	return s.Store.Bounds(ctx)
}

// TestTransientRefusals: a stream the hub refuses only for now (it is
// draining, a stream limit is reached, the store is down) is answered to
// a client that accepts text/event-stream with a 200 event stream holding
// a reason comment and a retry field and ending at once, which every
// EventSource reconnects from, and to other clients with its status. Both
// carry Retry-After. Each refusal is tried over a hijackable connection
// and under GoroutinePerStream, and as HEAD.
func TestTransientRefusals(t *testing.T) {
	t.Parallel()
	const browserAccept = "text/event-stream"
	for _, tc := range []struct {
		name      string
		accept    string // the request's Accept header; "" sends none
		method    string
		retry     time.Duration // Config.Retry
		refusal   string        // draining, stream-limit, unavailable
		status    int
		minAfter  int // Retry-After bounds, in seconds
		maxAfter  int
		reason    string        // in the comment or the text body
		retryMin  time.Duration // the retry field's bounds; 0: none
		retryMax  time.Duration
		wantEmpty bool // HEAD: no body
	}{
		{name: "draining, browser", accept: browserAccept, refusal: RefusalDraining, retry: 4 * time.Second,
			status: 200, minAfter: 3, maxAfter: 5, reason: ": refused: draining: hub is shutting down", retryMin: 3 * time.Second, retryMax: 5 * time.Second},
		{name: "draining, Accept with parameters and others", accept: "text/html, Text/Event-Stream;q=0.9", refusal: RefusalDraining, retry: 4 * time.Second,
			status: 200, minAfter: 3, maxAfter: 5, reason: ": refused: draining", retryMin: 3 * time.Second, retryMax: 5 * time.Second},
		{name: "draining, curl", accept: "*/*", refusal: RefusalDraining, retry: 4 * time.Second,
			status: 503, minAfter: 3, maxAfter: 5, reason: "hub is shutting down"},
		{name: "draining, no Accept", refusal: RefusalDraining, retry: 4 * time.Second,
			status: 503, minAfter: 3, maxAfter: 5, reason: "hub is shutting down"},
		{name: "draining, event-stream refused with q=0", accept: "text/event-stream;q=0, */*", refusal: RefusalDraining, retry: 4 * time.Second,
			status: 503, minAfter: 3, maxAfter: 5, reason: "hub is shutting down"},
		{name: "draining, no retry configured", accept: browserAccept, refusal: RefusalDraining, retry: -1,
			status: 200, minAfter: 3, maxAfter: 4, reason: ": refused: draining"},
		{name: "draining, HEAD", accept: browserAccept, method: http.MethodHead, refusal: RefusalDraining, retry: 4 * time.Second,
			status: 200, minAfter: 3, maxAfter: 5, wantEmpty: true},
		{name: "stream limit, browser", accept: browserAccept, refusal: RefusalStreamLimit, retry: time.Second,
			status: 200, minAfter: 5, maxAfter: 10, reason: ": refused: stream-limit: too many streams from this address (at most 1)", retryMin: 5 * time.Second, retryMax: 10 * time.Second},
		{name: "stream limit, other", refusal: RefusalStreamLimit, retry: time.Second,
			status: 429, minAfter: 5, maxAfter: 10, reason: "too many streams from this address (at most 1)"},
		{name: "store down, browser", accept: browserAccept, refusal: RefusalUnavailable, retry: 2 * time.Second,
			status: 200, minAfter: 2, maxAfter: 3, reason: ": refused: unavailable: hub unavailable", retryMin: 1500 * time.Millisecond, retryMax: 2500 * time.Millisecond},
		{name: "store down, other", refusal: RefusalUnavailable, retry: 2 * time.Second,
			status: 503, minAfter: 2, maxAfter: 3, reason: "hub unavailable"},
	} {
		for _, goroutine := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/GoroutinePerStream=%v", tc.name, goroutine), func(t *testing.T) {
				t.Parallel()
				store := &downStore{Store: hub.NewMemoryStore(hub.MemoryConfig{})}
				t.Cleanup(func() { store.Store.(*hub.MemoryStore).Close() })
				f := newFixture(t, func(c *Config) {
					c.GoroutinePerStream = goroutine
					c.Retry = tc.retry
					c.Limits.MaxStreamsPerIP = 1
					h, err := hub.New(hub.Config{Store: store})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { h.Close(context.Background()) })
					c.Hub = h
				})
				switch tc.refusal {
				case RefusalDraining:
					f.handler.Drain()
				case RefusalStreamLimit:
					s := f.subscribe(t, "topic=a", nil) // takes the only slot
					if s.resp.StatusCode != 200 {
						t.Fatalf("first stream: %s", s.resp.Status)
					}
				case RefusalUnavailable:
					store.down.Store(true)
				}
				method := tc.method
				if method == "" {
					method = http.MethodGet
				}
				req, _ := http.NewRequest(method, f.srv.URL+DefaultPath+"?topic=a", nil)
				if tc.accept != "" {
					req.Header.Set("Accept", tc.accept)
				}
				req.Header.Set("Origin", "https://app.example")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body) // the answer ends: no hang
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d %q; want %d", resp.StatusCode, body, tc.status)
				}
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < tc.minAfter || s > tc.maxAfter {
					t.Errorf("Retry-After %q; want %d to %d", resp.Header.Get("Retry-After"), tc.minAfter, tc.maxAfter)
				}
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
					t.Errorf("Access-Control-Allow-Origin %q: a cross-origin EventSource could not read the refusal", got)
				}
				if tc.wantEmpty {
					if len(body) != 0 {
						t.Errorf("HEAD body %q", body)
					}
					return
				}
				if !strings.Contains(string(body), tc.reason) {
					t.Errorf("body %q lacks %q", body, tc.reason)
				}
				if tc.status != 200 {
					if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
						t.Errorf("Content-Type %q", ct)
					}
					return
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("Content-Type %q", ct)
				}
				// What a client makes of it: no event, and the retry time.
				dec := sse.NewDecoder(strings.NewReader(string(body)))
				if ev, err := dec.Decode(); err != io.EOF {
					t.Errorf("the refusal dispatched %+v, %v; want no event", ev, err)
				}
				r, ok := dec.Retry()
				switch {
				case tc.retryMax == 0 && ok:
					t.Errorf("retry field %v; want none", r)
				case tc.retryMax != 0 && (!ok || r < tc.retryMin || r > tc.retryMax):
					t.Errorf("retry %v (%v); want %v to %v", r, ok, tc.retryMin, tc.retryMax)
				}
			})
		}
	}
}

// TestRefusalAfterHijack: a drain that starts between subscribe's check
// and the hijack of the connection is answered as any drain refusal.
func TestRefusalAfterHijack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		accept string
		status int
		want   string
	}{
		{"text/event-stream", 200, ": refused: draining: hub is shutting down\nretry: "},
		{"", 503, "hub is shutting down\n"},
	} {
		t.Run(fmt.Sprint("Accept=", tc.accept), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *Config) { c.Retry = time.Second })
			// The hijacked streams' registry is draining; the handler's
			// check, made first, is not.
			f.handler.drainHijacked()
			c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			accept := ""
			if tc.accept != "" {
				accept = "Accept: " + tc.accept + "\r\n"
			}
			fmt.Fprintf(c, "GET %s?topic=a HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n%s\r\n", DefaultPath, accept)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.HasPrefix(string(body), tc.want) {
				t.Errorf("%d %q; want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if ra := resp.Header.Get("Retry-After"); (ra != "1" && ra != "2") || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
				t.Errorf("headers %v", resp.Header)
			}
			if resp.Header.Get("Mercure-Last-Event-Id") != "" {
				t.Errorf("a refusal names a resume point: %v", resp.Header)
			}
		})
	}
}

func TestAcceptsEventStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"text/event-stream"}, true},
		{[]string{"text/event-stream; charset=utf-8"}, true},
		{[]string{"application/json", "text/event-stream"}, true},
		{[]string{"*/*"}, false},
		{[]string{"text/*"}, false},
		{[]string{"text/event-stream;q=0"}, false},
		{[]string{"text/event-stream;q=0.1"}, true},
		{[]string{"garbage;;;, text/event-stream"}, true},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		for _, v := range tc.accept {
			r.Header.Add("Accept", v)
		}
		if got := acceptsEventStream(r); got != tc.want {
			t.Errorf("Accept %q: %v; want %v", tc.accept, got, tc.want)
		}
	}
}

// TestGoClientRetriesRefusals: the eventsource package (what ssehub sub
// runs) takes a refusal as a browser does: no event, the comment seen,
// a reconnection after the refusal's retry time, and the stream resumed.
// The client's Wait is injected: nothing sleeps.
func TestGoClientRetriesRefusals(t *testing.T) {
	t.Parallel()
	for _, refusal := range []string{RefusalStreamLimit, RefusalDraining} {
		t.Run(refusal, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *Config) {
				c.Retry = 2 * time.Second
				if refusal == RefusalStreamLimit {
					c.Limits.MaxStreamsPerIP = 1
				}
			})
			f.publish(t, "all", form("topic", "a", "id", "e1", "data", "one"), nil)
			base, after := f.srv.URL, func() {}
			switch refusal {
			case RefusalStreamLimit:
				holder := f.subscribe(t, "topic=a", nil) // takes the only slot
				after = func() {
					holder.resp.Body.Close()
					waitFor(t, "the slot released", func() bool { total, _, _ := f.handler.lim.streams("127.0.0.1", ""); return total == 0 })
				}
			case RefusalDraining:
				// A second handler on the same hub, draining: the first
				// attempt goes to it, the next to the live one, as
				// behind a load balancer during a restart.
				h2, err := New(f.handler.cfg)
				if err != nil {
					t.Fatal(err)
				}
				h2.Drain()
				var n atomic.Int32
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1) == 1 {
						h2.ServeHTTP(w, r)
						return
					}
					f.handler.ServeHTTP(w, r)
				}))
				t.Cleanup(srv.Close)
				base = srv.URL
			}
			var waits []time.Duration
			var retried []error
			var comments []string
			c := &eventsource.Client{
				HTTPClient: http.DefaultClient,
				Wait: func(ctx context.Context, d time.Duration) error {
					waits = append(waits, d)
					after()
					return ctx.Err()
				},
				OnRetry:   func(err error, _ time.Duration) { retried = append(retried, err) },
				OnComment: func(s string) { comments = append(comments, s) },
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+DefaultPath+"?topic=a&last_event_id=earliest", nil)
			got := errors.New("got the event")
			err := c.Subscribe(ctx, req, func(ev sse.Event) error {
				if ev.ID != "e1" || ev.Data != "one" {
					t.Errorf("event %+v", ev)
				}
				return got
			})
			if !errors.Is(err, got) {
				t.Fatalf("Subscribe: %v; want the event after one retry", err)
			}
			if len(retried) != 1 || !errors.Is(retried[0], io.EOF) {
				t.Errorf("retries %v; want one, after a clean end of stream", retried)
			}
			lo, hi := 1500*time.Millisecond, 2500*time.Millisecond // Config.Retry ±25%
			if refusal == RefusalStreamLimit {
				lo, hi = 5*time.Second, 10*time.Second
			}
			// The client adds its own jitter (up to 25%) to the server's
			// retry time.
			if len(waits) != 1 || waits[0] < lo || waits[0] > hi*5/4 {
				t.Errorf("waits %v; want one from %v to %v", waits, lo, hi*5/4)
			}
			if len(comments) == 0 || !strings.HasPrefix(comments[0], " refused: "+refusal+": ") {
				t.Errorf("comments %q; want the refusal's reason", comments)
			}
		})
	}
}
