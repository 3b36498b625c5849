package eventsource

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ssehub/ssehub/sse"
)

func TestResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		ctype    string
		wantErr  bool // a *ResponseError
		wantEvts int
	}{
		{"204 stops", 204, "", false, 0},
		{"205", 205, "", true, 0},
		{"299", 299, "text/event-stream", true, 0},
		{"404", 404, "text/plain", true, 0},
		{"410", 410, "", true, 0},
		{"503 without policy", 503, "", true, 0},
		{"wrong content type", 200, "text/plain", true, 0},
		{"bogus content type", 200, "x bogus", true, 0},
		{"valid bogus content type", 200, "text/x-bogus", true, 0},
		{"trailing semicolon", 200, "text/event-stream;", false, 1},
		{"charset ignored", 200, "Text/Event-Stream; charset=windows-1252", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n > 1 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, "data: hi\n\n")
			})
			evs, err := collect(t, testClient(s), get(t, s.URL))
			var re *ResponseError
			if got := errors.As(err, &re); got != tt.wantErr {
				t.Fatalf("got error %v; want ResponseError %v", err, tt.wantErr)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("got error %v; want nil", err)
			}
			if re != nil && re.StatusCode != tt.status {
				t.Errorf("got StatusCode %d; want %d", re.StatusCode, tt.status)
			}
			if len(evs) != tt.wantEvts {
				t.Errorf("got %d events; want %d", len(evs), tt.wantEvts)
			}
			want := 1 // terminal: no reconnection
			if tt.wantEvts > 0 {
				want = 2 // stream, then 204
			}
			if got := len(s.requests()); got != want {
				t.Errorf("got %d requests; want %d", got, want)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	s := newServer(t, streamThen204("id: 1\ndata: a\n\n"))
	c := testClient(s)
	c.Header = http.Header{"X-Custom": {"v1"}, "Accept": {"application/json"}}
	req := get(t, s.URL)
	req.Header.Set("X-From-Request", "r")
	if _, err := collect(t, c, req); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests; want 2", len(reqs))
	}
	for i, r := range reqs {
		for k, want := range map[string]string{
			"Accept":         "text/event-stream",
			"Cache-Control":  "no-cache",
			"X-Custom":       "v1",
			"X-From-Request": "r",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("request %d: got %s %q; want %q", i+1, k, got, want)
			}
		}
	}
	if v, ok := reqs[0].Header["Last-Event-Id"]; ok {
		t.Errorf("first request: got Last-Event-ID %q; want none", v)
	}
	if got := reqs[1].Header.Get("Last-Event-ID"); got != "1" {
		t.Errorf("second request: got Last-Event-ID %q; want 1", got)
	}
}

func TestLastEventID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		initial string // Last-Event-ID header on the request
		stream  []string
		want    []sse.Event
		wantID  string // header on the reconnection; "" means absent
	}{
		{name: "no ids", stream: []string{"data: a\n\n"},
			want: []sse.Event{{Type: "message", Data: "a"}}},
		{name: "id sent", stream: []string{"id: abc\ndata: a\n\n"},
			want: []sse.Event{{ID: "abc", Type: "message", Data: "a"}}, wantID: "abc"},
		{name: "id persists", stream: []string{"id: abc\ndata: a\n\ndata: b\n\n"},
			want:   []sse.Event{{ID: "abc", Type: "message", Data: "a"}, {ID: "abc", Type: "message", Data: "b"}},
			wantID: "abc"},
		{name: "empty id resets", stream: []string{"id: abc\ndata: a\n\nid: \ndata: b\n\n"},
			want: []sse.Event{{ID: "abc", Type: "message", Data: "a"}, {Type: "message", Data: "b"}}},
		{name: "bare id resets", initial: "x", stream: []string{"id\ndata: b\n\n"},
			want: []sse.Event{{Type: "message", Data: "b"}}},
		{name: "id with NUL ignored", stream: []string{"id: a\x00b\ndata: a\n\n"},
			want: []sse.Event{{Type: "message", Data: "a"}}},
		{name: "id without data committed", stream: []string{"data: a\n\nid: 7\n\n"},
			want: []sse.Event{{Type: "message", Data: "a"}}, wantID: "7"},
		{name: "lone id before any event (ssehub's stream cursor)", stream: []string{"retry: 3000\n\nid: #YWJjLjQy\n\n"},
			want: nil, wantID: "#YWJjLjQy"},
		{name: "initial id", initial: "init", stream: []string{"data: a\n\n"},
			want: []sse.Event{{ID: "init", Type: "message", Data: "a"}}, wantID: "init"},
		{name: "partial event discarded", stream: []string{"id: abc\ndata: Hello\n\nid: def\ndata: Goodbye"},
			want: []sse.Event{{ID: "abc", Type: "message", Data: "Hello"}}, wantID: "abc"},
		{name: "partial event without blank line", stream: []string{"id: abc\ndata: Hello\n\nid: def\ndata: Goodbye\n"},
			want: []sse.Event{{ID: "abc", Type: "message", Data: "Hello"}}, wantID: "abc"},
		{name: "utf-8 id", stream: []string{"id: \u2026\ndata: a\n\n"},
			want: []sse.Event{{ID: "\u2026", Type: "message", Data: "a"}}, wantID: "\u2026"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, streamThen204(tt.stream...))
			c := testClient(s)
			req := get(t, s.URL)
			if tt.initial != "" {
				req.Header.Set("Last-Event-ID", tt.initial)
			}
			evs, err := collect(t, c, req)
			if err != nil {
				t.Fatal(err)
			}
			equalEvents(t, evs, tt.want)
			reqs := s.requests()
			if got := reqs[0].Header.Get("Last-Event-ID"); got != tt.initial {
				t.Errorf("first request: got Last-Event-ID %q; want %q", got, tt.initial)
			}
			v, ok := reqs[1].Header["Last-Event-Id"]
			if tt.wantID == "" && ok {
				t.Errorf("reconnection: got Last-Event-ID %q; want none", v)
			}
			if got := reqs[1].Header.Get("Last-Event-ID"); got != tt.wantID {
				t.Errorf("reconnection: got Last-Event-ID %q; want %q", got, tt.wantID)
			}
			if got := c.LastEventID(); got != tt.wantID {
				t.Errorf("LastEventID() = %q; want %q", got, tt.wantID)
			}
		})
	}
}

func TestInvalidInitialLastEventID(t *testing.T) {
	t.Parallel()
	var c Client
	req := get(t, "http://127.0.0.1:1/")
	req.Header["Last-Event-Id"] = []string{"a\nb"}
	if _, err := collect(t, &c, req); err == nil {
		t.Fatal("got nil error; want one")
	}
}

// fakeTransport serves a fixed stream through a reader that returns one
// byte per Read, so every byte boundary is exercised deterministically.
type fakeTransport struct {
	mu     sync.Mutex
	n      int
	stream string
}

func (f *fakeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if r.Body != nil {
		r.Body.Close()
	}
	resp := &http.Response{Request: r, Header: http.Header{}, Body: http.NoBody, StatusCode: http.StatusNoContent}
	if n == 1 {
		resp.StatusCode = http.StatusOK
		resp.Header.Set("Content-Type", "text/event-stream")
		resp.Body = io.NopCloser(iotest.OneByteReader(strings.NewReader(f.stream)))
	}
	return resp, nil
}

func TestByteByByte(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		want   []string // data of each message event
	}{
		{"LF", "data: a\n\ndata: b\n\n", []string{"a", "b"}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"CR", "data: a\r\rdata: b\r\r", []string{"a", "b"}},
		{"mixed", "data: test\r\ndata\ndata: test\r\r", []string{"test\n\ntest"}},
		{"multibyte", "data: h\u00e9llo \u4e16\u754c \U0001F389\n\n", []string{"h\u00e9llo \u4e16\u754c \U0001F389"}},
		{"BOM", "\uFEFFdata: a\n\n\uFEFFdata: b\n\ndata: c\n\n", []string{"a", "c"}},
		{"comments", ": hi\ndata: 1\n:\r\ndata: 2\r\r", []string{"1\n2"}},
		{"invalid UTF-8", "data: \xff\n\n", []string{"\uFFFD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{
				HTTPClient: &http.Client{Transport: &fakeTransport{stream: tt.stream}},
				Wait:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
			}
			evs, err := collect(t, c, get(t, "http://example.invalid/"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range evs {
				got = append(got, ev.Data)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestSplitWritesOverHTTP(t *testing.T) {
	t.Parallel()
	const msg = "data: h\u00e9 \u4e16 \U0001F389\r\nid: x\r\n\r\n"
	var chunks []string
	for i := range len(msg) {
		chunks = append(chunks, msg[i:i+1])
	}
	s := newServer(t, streamThen204(chunks...))
	evs, err := collect(t, testClient(s), get(t, s.URL))
	if err != nil {
		t.Fatal(err)
	}
	equalEvents(t, evs, []sse.Event{{ID: "x", Type: "message", Data: "h\u00e9 \u4e16 \U0001F389"}})
}

func TestLargeEvent(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 5<<20)
	tests := []struct {
		name   string
		chunks []string
	}{
		{"one chunk", []string{"data: " + big + "\n\n"}},
		{"two chunks", []string{"data: " + big[:1<<20], big[1<<20:] + "\n\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, streamThen204(tt.chunks...))
			evs, err := collect(t, testClient(s), get(t, s.URL))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Data != big {
				t.Fatalf("got %d events; want one of %d bytes", len(evs), len(big))
			}
		})
	}
}

func TestEventTooLarge(t *testing.T) {
	t.Parallel()
	s := newServer(t, streamThen204("data: "+strings.Repeat("x", 100)+"\n\n"))
	c := testClient(s)
	c.MaxEventSize = 50
	var retries []error
	c.OnRetry = func(err error, _ time.Duration) { retries = append(retries, err) }
	evs, err := collect(t, c, get(t, s.URL))
	if err != nil || len(evs) != 0 {
		t.Fatalf("got %d events, %v; want none and a clean stop at the 204", len(evs), err)
	}
	if len(retries) != 1 || !errors.Is(retries[0], sse.ErrEventTooLarge) {
		t.Errorf("retries %v; want one, for ErrEventTooLarge", retries)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("got %d requests; want 2: the oversized event fails the connection, then it reconnects", n)
	}
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/start":
					http.Redirect(w, r, "/stream", code)
				case n == 2:
					stream(w, "data: hello\n\n")
				default:
					w.WriteHeader(http.StatusNoContent)
				}
			})
			evs, err := collect(t, testClient(s), get(t, s.URL+"/start"))
			if err != nil {
				t.Fatal(err)
			}
			equalEvents(t, evs, []sse.Event{{Type: "message", Data: "hello"}})
		})
	}
}

func TestBadRedirects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		max      int
		location func(self string) (string, bool)
	}{
		{"missing Location", 0, func(string) (string, bool) { return "", false }},
		{"empty Location", 0, func(string) (string, bool) { return "", true }},
		{"loop", 0, func(url string) (string, bool) { return url, true }},
		{"loop with limit 2", 2, func(url string) (string, bool) { return url, true }},
		{"none allowed", -1, func(url string) (string, bool) { return url + "other", true }},
	}
	for _, tt := range tests {
		for _, code := range []int{301, 307} {
			t.Run(tt.name+"/"+http.StatusText(code), func(t *testing.T) {
				t.Parallel()
				s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
					if loc, ok := tt.location("http://" + r.Host + r.URL.Path); ok {
						w.Header()["Location"] = []string{loc}
					}
					w.WriteHeader(code)
				})
				c := testClient(s)
				c.MaxRedirects = tt.max
				_, err := collect(t, c, get(t, s.URL))
				if !errors.Is(err, ErrRedirect) {
					t.Fatalf("got %v; want ErrRedirect", err)
				}
				want := 1
				switch {
				case tt.max > 0:
					want = tt.max + 1
				case tt.max == 0 && strings.HasPrefix(tt.name, "loop"):
					want = DefaultMaxRedirects + 1
				}
				if got := len(s.requests()); got != want {
					t.Errorf("got %d requests; want %d", got, want)
				}
			})
		}
	}
}

func TestBodyResent(t *testing.T) {
	t.Parallel()
	const payload = `{"hello": "world"}`
	tests := []struct {
		name   string
		method string
		body   func() io.Reader
	}{
		{"POST with GetBody", "POST", func() io.Reader { return strings.NewReader(payload) }},
		{"REPORT buffered", "REPORT", func() io.Reader { return io.NopCloser(strings.NewReader(payload)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n < 3 {
					stream(w, "data: x\n\n")
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			req, err := http.NewRequest(tt.method, s.URL, tt.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if _, err := collect(t, testClient(s), req); err != nil {
				t.Fatal(err)
			}
			for i, r := range s.requests() {
				if r.Method != tt.method || r.Body != payload || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request %d: got %s %q (%s); want %s %q", i+1, r.Method, r.Body,
						r.Header.Get("Content-Type"), tt.method, payload)
				}
			}
		})
	}
}

func TestReadTimeout(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			stream(w, "data: hello\n\n")
			<-r.Context().Done() // then silence
		case 2:
			// Heartbeats only, spanning several timeouts, then a clean end.
			stream(w)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for range 20 {
				<-tick.C
				io.WriteString(w, ":\n")
				http.NewResponseController(w).Flush()
			}
			io.WriteString(w, "data: alive\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := testClient(s)
	// Heartbeats come every 10 ms; the timeout is 30 times that, so only
	// the silent connection times out, even on a loaded machine.
	c.ReadTimeout = 300 * time.Millisecond
	var errs []error
	c.OnRetry = func(err error, _ time.Duration) { errs = append(errs, err) }
	evs, err := collect(t, c, get(t, s.URL))
	if err != nil {
		t.Fatal(err)
	}
	equalEvents(t, evs, []sse.Event{{Type: "message", Data: "hello"}, {Type: "message", Data: "alive"}})
	if len(errs) != 2 || !errors.Is(errs[0], ErrReadTimeout) || !errors.Is(errs[1], io.EOF) {
		t.Errorf("got retry errors %v; want [ErrReadTimeout, EOF]", errs)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name    string
		backoff Backoff
		policy  RetryPolicy
		// serve answers connection n; returning false ends with 204.
		serve  func(n int, w http.ResponseWriter) bool
		conns  int          // if not zero, connections after this many get 204
		stable map[int]bool // connections that last longer than ResetAfter
		want   []time.Duration
	}{
		{
			name:    "exponential with cap",
			backoff: Backoff{Initial: 100 * ms, Max: time.Second, Jitter: -1},
			conns:   6,
			serve:   func(n int, w http.ResponseWriter) bool { stream(w); return true },
			want:    []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second},
		},
		{
			name:    "reset after stable connection",
			backoff: Backoff{Initial: 100 * ms, Max: time.Second, Jitter: -1, ResetAfter: time.Minute},
			conns:   4,
			serve:   func(n int, w http.ResponseWriter) bool { stream(w); return true },
			stable:  map[int]bool{3: true},
			want:    []time.Duration{100 * ms, 200 * ms, 100 * ms, 200 * ms},
		},
		{
			name:    "server retry",
			backoff: Backoff{Initial: 100 * ms, Max: time.Second, Jitter: -1},
			conns:   2,
			serve: func(n int, w http.ResponseWriter) bool {
				stream(w, "retry: 03000\n\n")
				return true
			},
			want: []time.Duration{3 * time.Second, 3 * time.Second},
		},
		{
			name:    "retry zero grows from a floor",
			backoff: Backoff{Jitter: -1},
			conns:   3,
			serve:   func(n int, w http.ResponseWriter) bool { stream(w, "retry: 0\n\n"); return true },
			want:    []time.Duration{0, 100 * ms, 200 * ms},
		},
		{
			name:    "negative Initial reconnects at once",
			backoff: Backoff{Initial: -1, Jitter: -1},
			conns:   1,
			serve:   func(n int, w http.ResponseWriter) bool { stream(w); return true },
			want:    []time.Duration{0},
		},
		{
			name:    "defaults",
			backoff: Backoff{Jitter: -1},
			conns:   5,
			serve:   func(n int, w http.ResponseWriter) bool { stream(w); return true },
			want: []time.Duration{DefaultInitialDelay, 2 * DefaultInitialDelay, 4 * DefaultInitialDelay,
				8 * DefaultInitialDelay, DefaultMaxDelay},
		},
		{
			name:    "Retry-After honoured",
			backoff: Backoff{Initial: 100 * ms, Jitter: -1},
			policy:  RetryTransient,
			serve: func(n int, w http.ResponseWriter) bool {
				switch n {
				case 1:
					w.Header().Set("Retry-After", "7")
					w.WriteHeader(http.StatusServiceUnavailable)
				case 2:
					w.WriteHeader(http.StatusTooManyRequests)
				case 3:
					w.WriteHeader(http.StatusBadGateway)
				default:
					return false
				}
				return true
			},
			want: []time.Duration{7 * time.Second, 200 * ms, 400 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Now is called twice per opened connection, when it opens and
			// when it ends; the end of a stable connection is 2 min later.
			now, calls := time.Unix(1e9, 0), 0
			clock := func() time.Time {
				calls++
				if calls%2 == 0 && tt.stable[calls/2] {
					now = now.Add(2 * time.Minute)
				}
				return now
			}
			s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if (tt.conns != 0 && n > tt.conns) || !tt.serve(n, w) {
					w.WriteHeader(http.StatusNoContent)
				}
			})
			var d delays
			c := &Client{
				HTTPClient:  s.Client(),
				Backoff:     tt.backoff,
				RetryPolicy: tt.policy,
				Wait:        d.wait,
				Now:         clock,
			}
			if _, err := collect(t, c, get(t, s.URL)); err != nil {
				t.Fatal(err)
			}
			got := d.get()
			if len(got) != len(tt.want) {
				t.Fatalf("got delays %v; want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("got delays %v; want %v", got, tt.want)
					break
				}
			}
		})
	}
}

func TestRetryPolicyTerminal(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	c := testClient(s)
	c.RetryPolicy = RetryTransient
	_, err := collect(t, c, get(t, s.URL))
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 404 {
		t.Fatalf("got %v; want a 404 ResponseError", err)
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {})
	url := s.URL
	s.Close() // nothing listens any more
	var d delays
	c := &Client{Wait: d.wait, Backoff: Backoff{Initial: 10 * time.Millisecond, Jitter: -1}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []error
	c.OnRetry = func(err error, _ time.Duration) {
		errs = append(errs, err)
		if len(errs) == 3 {
			cancel()
		}
	}
	err := c.Subscribe(ctx, get(t, url), func(sse.Event) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if len(errs) != 3 {
		t.Errorf("got %d retries; want 3", len(errs))
	}
}

func TestDelayJitter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		b        Backoff
		base     time.Duration
		failures int
		rnd      float64
		want     time.Duration
	}{
		{Backoff{}, time.Second, 0, 0, time.Second},
		{Backoff{}, time.Second, 0, 0.5, time.Second + time.Second/8},
		{Backoff{Jitter: 1}, time.Second, 1, 0.5, 3 * time.Second},
		{Backoff{Jitter: 7}, time.Second, 0, 0.5, 1500 * time.Millisecond},
		{Backoff{Max: time.Second}, 5 * time.Second, 3, 0, 5 * time.Second},
		{Backoff{}, time.Second, 1000, 0, DefaultMaxDelay},
		{Backoff{Max: 1 << 62}, 1 << 61, 10, 0, 1 << 62},
	}
	for _, tt := range tests {
		got := tt.b.delay(tt.base, tt.failures, func() float64 { return tt.rnd })
		if got != tt.want {
			t.Errorf("%+v.delay(%v, %d) with rnd %v = %v; want %v", tt.b, tt.base, tt.failures, tt.rnd, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 5 ", 5 * time.Second},
		{"-5", 0},
		{"soon", 0},
		{"99999999999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v; want %v", tt.v, got, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	t.Run("no event after cancel", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			stream(w, "data: 1\n\ndata: 2\n\n: c\n\ndata: 3\n\n")
			<-r.Context().Done()
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := testClient(s)
		var comments []string
		c.OnComment = func(s string) { comments = append(comments, s) }
		var evs []sse.Event
		err := c.Subscribe(ctx, get(t, s.URL), func(ev sse.Event) error {
			evs = append(evs, ev)
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v; want context.Canceled", err)
		}
		if len(evs) != 1 || len(comments) != 0 {
			t.Errorf("got %d events and %d comments after cancel; want 1 and 0", len(evs), len(comments))
		}
	})
	t.Run("while reading", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			stream(w, "data: 1\n\n")
			<-r.Context().Done()
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan sse.Event, 1)
		done := make(chan error)
		c := testClient(s)
		go func() {
			done <- c.Subscribe(ctx, get(t, s.URL), func(ev sse.Event) error { got <- ev; return nil })
		}()
		<-got
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v; want context.Canceled", err)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) { stream(w) })
		ctx, cancel := context.WithCancel(context.Background())
		c := &Client{HTTPClient: s.Client(), Backoff: Backoff{Initial: time.Hour}}
		c.OnRetry = func(error, time.Duration) { cancel() }
		err := c.Subscribe(ctx, get(t, s.URL), func(sse.Event) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v; want context.Canceled", err)
		}
	})
}

func TestHandlerErrorAndComments(t *testing.T) {
	t.Parallel()
	s := newServer(t, streamThen204(": first\ndata: 1\n\n:second\ndata: 2\n\ndata: 3\n\n"))
	c := testClient(s)
	var log []string
	c.OnComment = func(s string) { log = append(log, "comment:"+s) }
	boom := errors.New("boom")
	err := c.Subscribe(context.Background(), get(t, s.URL), func(ev sse.Event) error {
		log = append(log, "event:"+ev.Data)
		if ev.Data == "2" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v; want the handler's error", err)
	}
	want := "comment: first|event:1|comment:second|event:2"
	if got := strings.Join(log, "|"); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("got %d requests; want 1", n)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	t.Run("break", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			stream(w, "data: 1\n\ndata: 2\n\n")
			<-r.Context().Done()
		})
		var got []string
		for ev, err := range testClient(s).Events(context.Background(), get(t, s.URL)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Data)
			if len(got) == 2 {
				break
			}
		}
		if strings.Join(got, ",") != "1,2" {
			t.Errorf("got %q; want [1 2]", got)
		}
	})
	t.Run("error pair", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusGone)
		})
		var errs []error
		for _, err := range testClient(s).Events(context.Background(), get(t, s.URL)) {
			errs = append(errs, err)
		}
		var re *ResponseError
		if len(errs) != 1 || !errors.As(errs[0], &re) || re.StatusCode != http.StatusGone {
			t.Errorf("got %v; want one 410 ResponseError", errs)
		}
	})
	t.Run("204 ends quietly", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, streamThen204("data: 1\n\n"))
		n := 0
		for _, err := range testClient(s).Events(context.Background(), get(t, s.URL)) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 1 {
			t.Errorf("got %d events; want 1", n)
		}
	})
}

func TestState(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w, "retry: 1500\nid: 9\ndata: x\n\n")
		<-r.Context().Done()
	})
	c := testClient(s)
	if got := c.RetryDelay(); got != DefaultInitialDelay {
		t.Errorf("RetryDelay() before = %v; want %v", got, DefaultInitialDelay)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := c.Subscribe(ctx, get(t, s.URL), func(sse.Event) error {
		if err := c.Subscribe(ctx, get(t, s.URL), nil); err == nil {
			t.Error("concurrent Subscribe: got nil error; want one")
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := c.RetryDelay(); got != 1500*time.Millisecond {
		t.Errorf("RetryDelay() = %v; want 1.5s", got)
	}
	if got := c.LastEventID(); got != "9" {
		t.Errorf("LastEventID() = %q; want 9", got)
	}
}

// BenchmarkClient measures events decoded and delivered per second by one
// client reading pre-encoded events from an httptest server. One op is one
// event, so allocs/op is allocations per event.
func BenchmarkClient(b *testing.B) {
	var chunk []byte
	const perChunk = 1000
	for i := range perChunk {
		var err error
		chunk, err = sse.AppendEvent(chunk, sse.Event{ID: "id-" + string(rune('a'+i%26)), Type: "update",
			Data: `{"topic":"/books/1","price":42}`})
		if err != nil {
			b.Fatal(err)
		}
	}
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	s := newServer(b, func(_ int, w http.ResponseWriter, r *http.Request) { h(w, r) })
	c := &Client{HTTPClient: s.Client()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk) / perChunk))
	b.ResetTimer()
	start := time.Now()
	err := c.Subscribe(ctx, get(b, s.URL), func(sse.Event) error {
		n++
		if n >= b.N {
			cancel()
		}
		return nil
	})
	b.StopTimer()
	if !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

func TestUnfetchableURLIsTerminal(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"ftp://example.com/stream", "/relative", "http:///nohost"} {
		req, err := http.NewRequest(http.MethodGet, raw, nil)
		if err != nil {
			continue // not even a request
		}
		c := &Client{Wait: func(context.Context, time.Duration) error {
			t.Errorf("%s: retried; want a terminal error", raw)
			return errors.New("stop")
		}}
		if err := c.Subscribe(context.Background(), req, func(sse.Event) error { return nil }); err == nil || !strings.Contains(err.Error(), "http or https") {
			t.Errorf("%s: %v; want a terminal URL error", raw, err)
		}
	}
}
