package ssehttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// streamMode is one way a stream can be served.
type streamMode struct {
	name      string
	goroutine bool // Config.GoroutinePerStream
	h2        bool // HTTP/2 over TLS (never hijacked)
}

var streamModes = []streamMode{
	{"hijacked", false, false},
	{"goroutine", true, false},
	{"http2", false, true},
}

// smallBuffers wraps a listener so that every accepted TCP connection has
// a small send buffer: the kernel then holds little of a stream.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// modeServer serves f's handler in mode m, with small socket buffers on
// both sides, and returns its base URL and a client for it.
func modeServer(t *testing.T, f *fixture, m streamMode) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(f.srv.Config.Handler)
	srv.Listener = smallBuffers{srv.Listener}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(16 << 10)
		}
		return c, err
	}
	if m.h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() { f.handler.Drain(); srv.Close() })
	client := srv.Client()
	tr := client.Transport.(*http.Transport)
	tr.DialContext = dial
	if m.h2 {
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cfg := tr.TLSClientConfig.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
			cfg.NextProtos = []string{"h2"}
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	return srv.URL, client
}

// TestStreamCursor: a stream opened without a Last-Event-ID starts, after
// the retry field, with a lone id field carrying its cursor, so that a
// client whose stream drops before its first event resumes from the moment
// it connected: the update published while it was away is replayed. A
// resumed stream carries no cursor: its Last-Event-ID already says where
// it is.
func TestStreamCursor(t *testing.T) {
	t.Parallel()
	for _, m := range streamModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *Config) { c.GoroutinePerStream = m.goroutine; c.Retry = time.Second })
			base, client := modeServer(t, f, m)
			open := func(last string) (*http.Response, *bufio.Reader, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+DefaultPath+"?topic=a", nil)
				if last != "" {
					req.Header.Set("Last-Event-ID", last)
				}
				resp, err := client.Do(req)
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				t.Cleanup(func() { cancel(); resp.Body.Close() })
				if got := resp.ProtoMajor; (got == 2) != m.h2 {
					t.Fatalf("protocol HTTP/%d", got)
				}
				return resp, bufio.NewReader(resp.Body), cancel
			}
			openEmpty := func() (*http.Response, *bufio.Reader, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+DefaultPath+"?topic=a", nil)
				req.Header["Last-Event-ID"] = []string{""}
				resp, err := client.Do(req)
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				t.Cleanup(func() { cancel(); resp.Body.Close() })
				return resp, bufio.NewReader(resp.Body), cancel
			}
			lines := func(r *bufio.Reader, n int) []string {
				var out []string
				for range n {
					l, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("reading the stream: %v (after %q)", err, out)
					}
					out = append(out, l)
				}
				return out
			}

			// An empty Last-Event-ID is no last event ID: a new stream too.
			resp, r, drop := open("")
			if v, ok := resp.Header["Mercure-Last-Event-Id"]; ok {
				t.Errorf("new stream: Mercure-Last-Event-ID %q; want none", v)
			}
			respEmpty, emptyID, dropEmpty := openEmpty()
			if _, ok := respEmpty.Header["Mercure-Last-Event-Id"]; !ok {
				t.Errorf("the empty Last-Event-ID did not reach the hub")
			}
			if got := lines(emptyID, 4); !strings.HasPrefix(got[2], "id: "+hub.CursorPrefix) {
				t.Errorf("stream with an empty Last-Event-ID starts %q; want a cursor too", got)
			}
			dropEmpty()
			head := lines(r, 4) // retry, blank, id, blank
			cursor, ok := strings.CutPrefix(head[2], "id: ")
			cursor = strings.TrimSuffix(cursor, "\n")
			if !strings.HasPrefix(head[0], "retry: ") || head[1] != "\n" || !ok || !strings.HasPrefix(cursor, hub.CursorPrefix) || head[3] != "\n" {
				t.Fatalf("stream starts %q; want retry, then a lone id field with the cursor", head)
			}
			// The stream drops before any event; an update is published
			// while the client is away.
			drop()
			waitFor(t, "the subscription to end", func() bool { return f.hub.Stats().Subscribers == 0 })
			missed, err := f.hub.Publish(context.Background(), &hub.Update{Topics: []string{"a"}, Data: "missed"})
			if err != nil {
				t.Fatal(err)
			}

			resp, r, _ = open(cursor)
			if got := resp.Header.Get("Mercure-Last-Event-ID"); got != cursor {
				t.Errorf("resumed stream: Mercure-Last-Event-ID %q; want the cursor %q", got, cursor)
			}
			if got := lines(r, 5); got[0][:7] != "retry: " || got[2] != "id: "+missed+"\n" || got[3] != "data: missed\n" {
				t.Errorf("resumed stream %q; want retry, then the missed update (and no cursor)", got)
			}
		})
	}
}

// sizeCounter is a real MemoryStore that adds up the data of the updates
// its Read hands out, to see how far a replay has read.
type sizeCounter struct {
	*hub.MemoryStore
	data atomic.Int64
}

func (s *sizeCounter) Read(ctx context.Context, after hub.Position, fn func(*hub.Update) bool) error {
	return s.MemoryStore.Read(ctx, after, func(u *hub.Update) bool {
		s.data.Add(int64(len(u.Data)))
		return fn(u)
	})
}

// TestReplayPacedBySocket replays 8 MB to a client in every stream mode
// and checks, at every event the client decodes, that the hub has read
// from the store no more than what the client decoded plus what the
// connection can hold (socket buffers, HTTP/2's 4 MiB stream window) and
// one replay batch: the replay is read as the socket takes it, not ahead,
// so its memory does not grow with its length. Every update arrives once,
// in order.
func TestReplayPacedBySocket(t *testing.T) {
	t.Parallel()
	const (
		total = 2000
		size  = 4 << 10
	)
	data := strings.Repeat("x", size)
	for _, m := range streamModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			store := &sizeCounter{MemoryStore: hub.NewMemoryStore(hub.MemoryConfig{MaxUpdates: total, MaxBytes: 1 << 30})}
			h, err := hub.New(hub.Config{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close(context.Background()); store.Close() })
			for i := range total {
				if _, err := h.Publish(context.Background(), &hub.Update{ID: fmt.Sprint(i), Topics: []string{"a"}, Data: data}); err != nil {
					t.Fatal(err)
				}
			}
			f := newFixture(t, func(c *Config) { c.Hub = h; c.GoroutinePerStream = m.goroutine })
			base, client := modeServer(t, f, m)
			bound := int64(1 << 20) // socket buffers, a 256 KiB batch and slack
			if m.h2 {
				bound += 4 << 20 // the client's stream window
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+DefaultPath+"?topic=a", nil)
			req.Header.Set("Last-Event-ID", hub.Earliest)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			dec := sse.NewDecoder(resp.Body)
			var received, ahead int64
			for i := range total {
				ev, err := dec.Decode()
				if err != nil || ev.ID != fmt.Sprint(i) || len(ev.Data) != size {
					t.Fatalf("event %d: id %q, %d bytes, %v", i, ev.ID, len(ev.Data), err)
				}
				received += int64(len(ev.Data))
				ahead = max(ahead, store.data.Load()-received)
				if ahead > bound {
					t.Fatalf("after %d events (%d bytes) the hub had read %d bytes of history: %d ahead of the client; want at most %d",
						i+1, received, store.data.Load(), ahead, bound)
				}
			}
			t.Logf("the replay read at most %d KiB ahead of the client", ahead>>10)
		})
	}
}
