package sse

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestUpgradeHeaders(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Length", "42")
	rec.Header().Set("Content-Encoding", "gzip")
	rec.Header().Set("Transfer-Encoding", "gzip")
	rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := Upgrade(rec, httptest.NewRequest("GET", "/", nil), nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Content-Length":    "",
		"Content-Encoding":  "",
		"Transfer-Encoding": "",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("header %s = %q; want %q", k, got, v)
		}
	}
	if !rec.Flushed {
		t.Error("Upgrade did not flush")
	}
	if rec.Code != http.StatusOK {
		t.Errorf("status %d; want 200", rec.Code)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("Upgrade wrote %q; want nothing before the first event", rec.Body)
	}
}

// plainWriter is an http.ResponseWriter that can neither flush nor set
// deadlines, like a middleware wrapper without Unwrap.
type plainWriter struct {
	h       http.Header
	status  int
	written int
}

func (w *plainWriter) Header() http.Header         { return w.h }
func (w *plainWriter) WriteHeader(code int)        { w.status = code }
func (w *plainWriter) Write(b []byte) (int, error) { w.written += len(b); return len(b), nil }

func TestUpgradeNotSupported(t *testing.T) {
	t.Parallel()
	t.Run("no flusher", func(t *testing.T) {
		w := &plainWriter{h: http.Header{}}
		_, err := Upgrade(w, httptest.NewRequest("GET", "/", nil), nil)
		if !errors.Is(err, http.ErrNotSupported) {
			t.Fatalf("got %v; want an error wrapping http.ErrNotSupported", err)
		}
		if w.status != 0 || w.written != 0 || w.h.Get("Content-Type") != "" {
			t.Errorf("Upgrade wrote status %d, %d bytes, Content-Type %q; want nothing", w.status, w.written, w.h.Get("Content-Type"))
		}
	})
	t.Run("write timeout without deadline support", func(t *testing.T) {
		rec := httptest.NewRecorder() // flushes, but has no SetWriteDeadline
		_, err := Upgrade(rec, httptest.NewRequest("GET", "/", nil), &WriterOptions{WriteTimeout: time.Second})
		if !errors.Is(err, http.ErrNotSupported) {
			t.Fatalf("got %v; want an error wrapping http.ErrNotSupported", err)
		}
		if rec.Flushed || rec.Header().Get("Content-Type") != "" {
			t.Error("Upgrade changed the response before failing")
		}
		// Without a timeout the same writer streams.
		if _, err := Upgrade(rec, httptest.NewRequest("GET", "/", nil), &WriterOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("negative write timeout", func(t *testing.T) {
		_, err := Upgrade(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), &WriterOptions{WriteTimeout: -1})
		if err == nil {
			t.Fatal("got nil error; want one")
		}
	})
}

// countingWriter records every Write and Flush call.
type countingWriter struct {
	httptest.ResponseRecorder
	writes, flushes int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	return w.ResponseRecorder.Write(b)
}

func (w *countingWriter) Flush() {
	w.flushes++
	w.ResponseRecorder.Flush()
}

func TestWriterOutput(t *testing.T) {
	t.Parallel()
	frame1, _ := AppendEvent(nil, Event{ID: "1", Data: "a"})
	frame2, _ := AppendEvent(nil, Event{Type: "t", Data: "b\nc"})
	tests := []struct {
		name    string
		do      func(*Writer) error
		want    string
		writes  int
		wantErr error
	}{
		{"event", func(w *Writer) error { return w.WriteEvent(Event{ID: "7", Type: "up", Data: "x\r\ny"}) },
			"id: 7\nevent: up\ndata: x\ndata: y\n\n", 1, nil},
		{"invalid event writes nothing", func(w *Writer) error { return w.WriteEvent(Event{ID: "a\nb"}) },
			"", 0, ErrInvalidID},
		{"one frame", func(w *Writer) error { return w.WriteFrames(frame1) },
			string(frame1), 1, nil},
		{"frames in one write", func(w *Writer) error { return w.WriteFrames(frame1, frame2, AppendComment(nil, "hb")) },
			string(frame1) + string(frame2) + ":hb\n", 1, nil},
		{"no frames", func(w *Writer) error { return w.WriteFrames() }, "", 0, nil},
		{"heartbeat", func(w *Writer) error { return w.Comment("") }, ":\n", 1, nil},
		{"comment", func(w *Writer) error { return w.Comment("a\nb") }, ":a\n:b\n", 1, nil},
		{"retry", func(w *Writer) error { return w.Retry(3 * time.Second) }, "retry: 3000\n\n", 1, nil},
		{"zero retry", func(w *Writer) error { return w.Retry(0) }, "", 0, nil},
		{"negative retry", func(w *Writer) error { return w.Retry(-time.Second) }, "", 0, ErrInvalidRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cw := &countingWriter{ResponseRecorder: *httptest.NewRecorder()}
			sw, err := Upgrade(cw, httptest.NewRequest("GET", "/", nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			cw.writes, cw.flushes = 0, 0
			if err := tt.do(sw); err != tt.wantErr {
				t.Fatalf("got error %v; want %v", err, tt.wantErr)
			}
			if got := cw.Body.String(); got != tt.want {
				t.Errorf("wrote %q; want %q", got, tt.want)
			}
			if cw.writes != tt.writes || cw.flushes != tt.writes {
				t.Errorf("got %d writes and %d flushes; want %d of each", cw.writes, cw.flushes, tt.writes)
			}
		})
	}
}

func TestWriterAfterRequestDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	rec := httptest.NewRecorder()
	sw, err := Upgrade(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := sw.Comment(""); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if err := sw.WriteEvent(Event{Data: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("later write: got %v; want the same error", err)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q after the request was done", rec.Body)
	}
}

// newServer starts an HTTP/1.1 server, or an HTTP/2 one over TLS.
func newServer(t *testing.T, h2 bool, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestWriterStreams proves, over HTTP/1.1 and HTTP/2, that the headers
// reach the client before any event and that each event reaches it while
// the handler is still running: the handler waits for the client to have
// seen each step before taking the next.
func TestWriterStreams(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if h2 {
			name = "HTTP/2"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			step := make(chan struct{})
			handlerErr := make(chan error, 1)
			srv := newServer(t, h2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlerErr <- func() error {
					sw, err := Upgrade(w, r, &WriterOptions{WriteTimeout: time.Minute})
					if err != nil {
						return err
					}
					for _, data := range []string{"one", "two"} {
						select {
						case <-step:
						case <-r.Context().Done():
							return r.Context().Err()
						}
						if err := sw.WriteEvent(Event{ID: data, Data: data}); err != nil {
							return err
						}
					}
					return nil
				}()
			}))
			req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Do returns once the headers arrive, while the handler
			// waits: Upgrade flushed them.
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if wantMajor := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantMajor {
				t.Fatalf("protocol %s; want HTTP/%d", resp.Proto, wantMajor)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type %q", ct)
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != "" || resp.Uncompressed {
				t.Errorf("response is compressed (%q)", ce)
			}
			d := NewDecoder(resp.Body)
			for _, want := range []string{"one", "two"} {
				step <- struct{}{}
				ev, err := d.Decode()
				if err != nil {
					t.Fatal(err)
				}
				if ev.Data != want || ev.ID != want {
					t.Errorf("got %+v; want data and id %q", ev, want)
				}
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Errorf("after the handler returned: got %v; want io.EOF", err)
			}
			if err := <-handlerErr; err != nil {
				t.Errorf("handler: %v", err)
			}
		})
	}
}

// TestWriterSlowReader proves that with a WriteTimeout a client that
// stops reading makes a write fail instead of blocking the handler
// forever. Over HTTP/1.1 it uses a raw TCP client that sends a request and
// never reads; over HTTP/2 a client that never reads the body, so flow
// control stops the server. The test asserts only that a write eventually
// fails with a deadline error, never how long it takes.
func TestWriterSlowReader(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if h2 {
			name = "HTTP/2"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			handlerErr := make(chan error, 1)
			srv := newServer(t, h2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sw, err := Upgrade(w, r, &WriterOptions{WriteTimeout: 50 * time.Millisecond})
				if err != nil {
					handlerErr <- err
					return
				}
				frame, _ := AppendEvent(nil, Event{Data: strings.Repeat("x", 64<<10)})
				for {
					if err := sw.WriteFrames(frame); err != nil {
						handlerErr <- err
						return
					}
				}
			}))
			if h2 {
				resp, err := srv.Client().Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close() // never read
				if resp.ProtoMajor != 2 {
					t.Fatalf("protocol %s; want HTTP/2", resp.Proto)
				}
			} else {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.(*net.TCPConn).SetReadBuffer(4 << 10)
				if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				// Read the status line only; then stop reading.
				if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
					t.Fatalf("status line %q, %v", line, err)
				}
			}
			err := <-handlerErr
			if !errors.Is(err, os.ErrDeadlineExceeded) && !isTimeout(err) {
				t.Fatalf("got %v; want a write deadline error", err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
