package eventsource

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// seen is one request a test server received.
type seen struct {
	Method string
	Header http.Header
	Body   string
	Path   string
}

// server is an httptest.Server that numbers connections from 1 and
// records every request.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// newServer starts a server calling h with the 1-based connection number.
func newServer(t testing.TB, h func(n int, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{Method: r.Method, Header: r.Header.Clone(), Body: string(b), Path: r.URL.Path})
		n := len(s.reqs)
		s.mu.Unlock()
		h(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// stream writes the response headers of an event stream and then each
// chunk, flushed separately.
func stream(w http.ResponseWriter, chunks ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for _, c := range chunks {
		_, _ = io.WriteString(w, c)
		_ = rc.Flush()
	}
}

// streamThen204 serves chunks on the first connection and 204 afterwards,
// so a subscription ends after exactly one reconnection.
func streamThen204(chunks ...string) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			stream(w, chunks...)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// delays records the waits a Client asks for and returns at once.
type delays struct {
	mu sync.Mutex
	d  []time.Duration
}

func (d *delays) wait(ctx context.Context, dur time.Duration) error {
	d.mu.Lock()
	d.d = append(d.d, dur)
	d.mu.Unlock()
	return ctx.Err()
}

func (d *delays) get() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Duration(nil), d.d...)
}

// testClient returns a Client for s that never waits between attempts.
func testClient(s *server) *Client {
	return &Client{
		HTTPClient: s.Client(),
		Wait:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Backoff:    Backoff{Jitter: -1},
	}
}

// collect subscribes with c to req and returns the events and the error.
func collect(t *testing.T, c *Client, req *http.Request) ([]sse.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var evs []sse.Event
	err := c.Subscribe(ctx, req, func(ev sse.Event) error {
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

func get(t testing.TB, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func equalEvents(t *testing.T, got, want []sse.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %q; want %d %q", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v; want %+v", i, got[i], want[i])
		}
	}
}
