package ssehttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// waitFor polls cond until it holds, failing after 10 s (a hang
// detector, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawSubscribe opens a stream over a plain TCP connection and returns the
// connection and a reader positioned after the response head.
func rawSubscribe(t *testing.T, f *fixture, query string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return rawSubscribeOn(t, c, query)
}

// rawSubscribeOn is rawSubscribe on an open connection c, which it closes
// when the test ends.
func rawSubscribeOn(t *testing.T, c net.Conn, query string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s?%s HTTP/1.1\r\nHost: hub.example\r\nAccept: text/event-stream\r\n\r\n", DefaultPath, query)
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			return c, br, head.String()
		}
	}
}

func TestHijackedStreamHead(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Retry = 2 * time.Second })
	_, br, head := rawSubscribe(t, f, "topic=a")
	for _, want := range []string{"HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream\r\n", "Cache-Control: no-cache\r\n", "X-Accel-Buffering: no\r\n", "Connection: close\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("head lacks %q:\n%s", want, head)
		}
	}
	for _, unwanted := range []string{"Content-Length", "Transfer-Encoding", "Content-Encoding"} {
		if strings.Contains(head, unwanted) {
			t.Errorf("head has %s:\n%s", unwanted, head)
		}
	}
	if f.handler.Streams() != 1 {
		t.Fatalf("Streams() = %d, want 1: the stream is not served from its hijacked connection", f.handler.Streams())
	}
	dec := sse.NewDecoder(br)
	f.publish(t, "all", form("topic", "a", "data", "hello", "id", "1"), nil)
	ev, err := dec.Decode()
	if err != nil || ev.Data != "hello" || ev.ID != "1" {
		t.Fatalf("got %+v, %v", ev, err)
	}
	if r, _ := dec.Retry(); r < 1500*time.Millisecond || r > 2500*time.Millisecond {
		t.Errorf("retry = %v, want 2 s ± 25%%", r)
	}
}

// TestHijackedStreamHangUp checks that a client that closes an idle
// stream is noticed without any write: no heartbeat is configured.
func TestHijackedStreamHangUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Heartbeat = -1 })
	c, _, _ := rawSubscribe(t, f, "topic=a")
	waitFor(t, "the stream to open", func() bool { return f.handler.Streams() == 1 })
	c.Close()
	waitFor(t, "the stream to end after the client hung up", func() bool { return f.handler.Streams() == 0 })
	waitFor(t, "the subscription to end", func() bool { return f.hub.Stats().Subscribers == 0 })
}

func TestHijackedHeartbeat(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Heartbeat = 20 * time.Millisecond })
	_, br, _ := rawSubscribe(t, f, "topic=a")
	dec := sse.NewDecoder(br)
	comments := make(chan string, 10)
	dec.OnComment = func(s string) {
		select {
		case comments <- s:
		default:
		}
	}
	go dec.Decode() // returns when the connection closes at cleanup
	for range 3 {
		select {
		case <-comments:
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat within 10 s")
		}
	}
}

// TestHijackedCoalescesInOrder publishes many updates while the stream
// is open and checks that every one arrives once, in order.
func TestHijackedCoalescesInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := f.subscribe(t, "topic=a", nil)
	waitFor(t, "the subscription", func() bool { return f.hub.Stats().Subscribers == 1 })
	const n = 500
	go func() {
		for i := range n {
			if _, err := f.hub.Publish(context.Background(), &hub.Update{Topics: []string{"a"}, Data: fmt.Sprint(i)}); err != nil {
				return
			}
		}
	}()
	for i := range n {
		if ev := s.next(t); ev.Data != fmt.Sprint(i) {
			t.Fatalf("event %d has data %q", i, ev.Data)
		}
	}
}

// TestHijackedStalledReader checks that a subscriber that stops reading
// is ended as a slow consumer while another one receives everything.
func TestHijackedStalledReader(t *testing.T) {
	t.Parallel()
	h, err := hub.New(hub.Config{QueueSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Hub = h; c.WriteTimeout = 200 * time.Millisecond })
	t.Cleanup(func() { h.Close(context.Background()) })
	stalled, _, _ := rawSubscribe(t, f, "topic=a")
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	good := f.subscribe(t, "topic=a", nil)
	waitFor(t, "two subscriptions", func() bool { return h.Stats().Subscribers == 2 })
	big := strings.Repeat("x", 32<<10)
	const n, window = 400, 10
	received := make(chan int, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		got := -1
		for i := range n {
			for got < i-window { // never run more than window ahead of the good reader
				got = <-received
			}
			if _, err := h.Publish(context.Background(), &hub.Update{Topics: []string{"a"}, ID: fmt.Sprint(i), Data: big}); err != nil {
				return
			}
		}
	}()
	for i := range n {
		if ev := good.next(t); ev.ID != fmt.Sprint(i) {
			t.Fatalf("good reader: event %d has id %q", i, ev.ID)
		}
		received <- i
	}
	<-done
	waitFor(t, "the stalled stream to end", func() bool { return f.handler.Streams() == 1 })
	if h.Stats().SlowConsumers == 0 {
		t.Log("the stalled reader ended on its write deadline rather than by queue overflow")
	}
}

func TestHijackedDrain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := f.subscribe(t, "topic=a", nil)
	waitFor(t, "the stream", func() bool { return f.handler.Streams() == 1 })
	f.publish(t, "all", form("topic", "a", "data", "before"), nil)
	if ev := s.next(t); ev.Data != "before" {
		t.Fatalf("got %q", ev.Data)
	}
	f.handler.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.handler.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := s.dec.Decode(); err != io.EOF && err != io.ErrUnexpectedEOF {
		t.Fatalf("after drain the stream should end cleanly, got %v", err)
	}
	resp, err := http.Get(f.srv.URL + DefaultPath + "?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("new stream while draining: %d", resp.StatusCode)
	}
}

func TestHijackedExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := f.subscribe(t, "topic=a", http.Header{"Authorization": {"Bearer expires-in-200ms"}})
	waitFor(t, "the stream", func() bool { return f.handler.Streams() == 1 })
	if _, err := s.dec.Decode(); err != io.EOF && err != io.ErrUnexpectedEOF {
		t.Fatalf("at expiry the stream should end, got %v", err)
	}
	waitFor(t, "the stream to be gone", func() bool { return f.handler.Streams() == 0 })
}

// TestStreamModes runs the same exchange over every way a stream can be
// served: hijacked HTTP/1.1, goroutine-per-stream HTTP/1.1, hijacked
// HTTP/1.1 over TLS, and HTTP/2 (never hijacked).
func TestStreamModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		goroutine bool
		tls, h2   bool
		hijacked  int
	}{
		{"hijacked", false, false, false, 1},
		{"goroutine", true, false, false, 0},
		{"tls hijacked", false, true, false, 1},
		{"http2", false, true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := hub.New(hub.Config{})
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(c *Config) { c.Hub = h; c.GoroutinePerStream = tc.goroutine })
			t.Cleanup(func() { h.Close(context.Background()) })
			client := http.DefaultClient
			base := f.srv.URL
			if tc.tls {
				srv := httptest.NewUnstartedServer(f.srv.Config.Handler)
				srv.EnableHTTP2 = tc.h2
				srv.StartTLS()
				t.Cleanup(func() { f.handler.Drain(); srv.Close() })
				client = srv.Client()
				if !tc.h2 {
					client.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
					client.Transport.(*http.Transport).ForceAttemptHTTP2 = false
				}
				base = srv.URL
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+DefaultPath+"?topic=a", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.ProtoMajor; (got == 2) != tc.h2 {
				t.Fatalf("protocol HTTP/%d", got)
			}
			waitFor(t, "the subscription", func() bool { return h.Stats().Subscribers == 1 })
			if got := f.handler.Streams(); got != tc.hijacked {
				t.Fatalf("hijacked streams = %d, want %d", got, tc.hijacked)
			}
			dec := sse.NewDecoder(resp.Body)
			for i := range 3 {
				if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"a"}, Data: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
				ev, err := dec.Decode()
				if err != nil || ev.Data != fmt.Sprint(i) {
					t.Fatalf("event %d: %+v, %v", i, ev, err)
				}
			}
			cancel()
			waitFor(t, "the subscription to end", func() bool { return h.Stats().Subscribers == 0 })
		})
	}
}

// TestFirstHeartbeatRacesNothing: a first heartbeat due at once (a tiny
// interval here; a loaded machine does the same to a short one) must not
// read the stream's timer before serve has stored it. The race detector
// is the judge.
func TestFirstHeartbeatRacesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Heartbeat = time.Microsecond })
	for range 20 {
		s := f.subscribe(t, "topic=a", nil)
		br := bufio.NewReader(s.resp.Body)
		for range 3 { // heartbeats, one line each
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		s.resp.Body.Close()
	}
}

// endsObserver records the reasons streams end with.
type endsObserver struct{ ends chan EndReason }

func (endsObserver) Published(time.Duration)    {}
func (endsObserver) Delivered(int, time.Time)   {}
func (endsObserver) Refused(string)             {}
func (endsObserver) StreamOpened(SelectorKinds) {}
func (o endsObserver) StreamClosed(_ SelectorKinds, r EndReason, _ time.Duration, _ int) {
	o.ends <- r
}

// TestOverflowCutsBlockedWrite checks that a stalled reader whose queue
// overflows is ended at once, by the overflow, even when its stream is
// blocked in a write: the write timeout is an hour, so the stream can
// only end before the test gives up because the overflow cut the write.
// The client is a real TCP connection that never reads, with a small
// receive buffer, so that the hub's write to it blocks.
func TestOverflowCutsBlockedWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		queue int // hub.Config.QueueSize
	}{
		{"small queue", 4},
		{"default queue", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := hub.New(hub.Config{QueueSize: tc.queue})
			if err != nil {
				t.Fatal(err)
			}
			obs := endsObserver{make(chan EndReason, 4)}
			f := newFixture(t, func(c *Config) { c.Hub = h; c.WriteTimeout = time.Hour; c.Observer = obs })
			t.Cleanup(func() { h.Close(context.Background()) })
			stalled, _, _ := rawSubscribe(t, f, "topic=a")
			stalled.(*net.TCPConn).SetReadBuffer(4096)
			overflowEndsStream(t, f, h, obs)
		})
	}
}

// overflowEndsStream publishes 64 KiB updates to topic a until the hub
// ends a subscription as a slow consumer, and checks that its stream ends
// with EndQueueOverflow, then is untracked. Every test using it sets a
// write timeout of an hour, so that only the overflow's cut can end a
// stream blocked in a write before the hang detector fires.
func overflowEndsStream(t *testing.T, f *fixture, h *hub.Hub, obs endsObserver) {
	t.Helper()
	waitFor(t, "the subscription", func() bool { return h.Stats().Subscribers == 1 })
	big := strings.Repeat("x", 64<<10)
	// Publish until the hub ends the subscription; each publish is
	// dispatched before the next one's (one dispatcher, in order), and the
	// stalled client takes at most a few of them.
	for i := 0; h.Stats().SlowConsumers == 0; i++ {
		if i == 100_000 {
			t.Fatal("the stalled subscriber never overflowed")
		}
		if _, err := h.Publish(context.Background(), &hub.Update{Topics: []string{"a"}, Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-obs.ends:
		if r != EndQueueOverflow {
			t.Fatalf("the stalled stream ended with %q, want %q", r, EndQueueOverflow)
		}
	case <-time.After(10 * time.Second): // a hang detector: the write timeout is an hour
		t.Fatal("the stalled stream was not ended by its queue's overflow: it waits for its write timeout")
	}
	waitFor(t, "the stream to be untracked", func() bool { return f.handler.Streams() == 0 })
}

// TestOverflowCutsBlockedWriteEveryPath is TestOverflowCutsBlockedWrite
// for the streams that are not hijacked plain HTTP/1.x connections: an
// HTTP/1.x stream served by its request's goroutine
// (Config.GoroutinePerStream), a hijacked HTTP/1.x stream over TLS (a
// goroutine of its own, always), and an HTTP/2 stream over TLS whose
// client never reads its body (a 64 KiB flow-control window, so the
// server's write waits for a window update that never comes).
func TestOverflowCutsBlockedWriteEveryPath(t *testing.T) {
	t.Parallel()
	small := func(t *testing.T, c net.Conn) {
		if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
			t.Fatal(err)
		}
	}
	type path struct {
		name      string
		perStream bool
		tls, h2   bool
		queue     int // hub.Config.QueueSize
	}
	var paths []path
	for _, p := range []path{
		{name: "goroutine per stream", perStream: true},
		{name: "goroutine per stream over TLS", perStream: true, tls: true},
		{name: "hijacked over TLS", tls: true},
		{name: "HTTP/2", tls: true, h2: true},
	} {
		for _, q := range []int{4, 0} {
			p.queue = q
			paths = append(paths, p)
		}
	}
	for _, tc := range paths {
		t.Run(fmt.Sprintf("%s/queue %d", tc.name, tc.queue), func(t *testing.T) {
			t.Parallel()
			h, err := hub.New(hub.Config{QueueSize: tc.queue})
			if err != nil {
				t.Fatal(err)
			}
			obs := endsObserver{make(chan EndReason, 4)}
			start := (*httptest.Server).Start
			if tc.tls {
				start = func(s *httptest.Server) { s.EnableHTTP2 = tc.h2; s.StartTLS() }
			}
			f := newServerFixture(t, hub.Config{}, func(c *Config) {
				c.Hub = h
				c.WriteTimeout = time.Hour
				c.Observer = obs
				c.GoroutinePerStream = tc.perStream
			}, start)
			t.Cleanup(func() { h.Close(context.Background()) })
			addr := f.srv.Listener.Addr().String()
			switch {
			case tc.h2:
				tr := f.srv.Client().Transport.(*http.Transport).Clone()
				tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerConnection: 64 << 10, MaxReceiveBufferPerStream: 64 << 10}
				t.Cleanup(tr.CloseIdleConnections)
				resp, err := (&http.Client{Transport: tr}).Get(f.srv.URL + DefaultPath + "?topic=a")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
					t.Fatalf("got %s %s, want HTTP/2 200", resp.Proto, resp.Status)
				}
			case tc.tls:
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				small(t, c)
				rawSubscribeOn(t, tls.Client(c, &tls.Config{InsecureSkipVerify: true}), "topic=a")
			default:
				c, _, _ := rawSubscribe(t, f, "topic=a")
				small(t, c)
			}
			overflowEndsStream(t, f, h, obs)
		})
	}
}
