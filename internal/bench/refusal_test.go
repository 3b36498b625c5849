package bench

import (
	"bytes"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/ssehttp"
)

func TestParseRefusal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, reason string
		ok                 bool
	}{
		{"hub", ": refused: stream-limit: too many streams from this address (at most 2)\nretry: 6718\n\n",
			"stream-limit: too many streams from this address (at most 2)", true},
		{"nginx", ": refused: unavailable: no hub reachable\nretry: 2850\n\n", "unavailable: no hub reachable", true},
		{"no retry field", ": refused: draining: hub is shutting down\n\n", "draining: hub is shutting down", true},
		{"CRLF", ": refused: draining: x\r\nretry: 10\r\n\r\n", "draining: x", true},
		{"an event after it", ": refused: draining: x\n\ndata: sb1.0.1.1.\n\n", "", false},
		{"a heartbeat", ":\n\n", "", false},
		{"another comment", ": hello\n\n", "", false},
		{"an event", "data: x\n\n", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		reason, ok := parseRefusal([]byte(tt.body))
		if reason != tt.reason || ok != tt.ok {
			t.Errorf("%s: parseRefusal(%q) = %q, %v; want %q, %v", tt.name, tt.body, reason, ok, tt.reason, tt.ok)
		}
	}
}

// TestRunCountsRefusals: a hub (here the in-process hub behind a
// wrapper) that refuses the first five stream attempts, three of them
// with the 200 event-stream form a hub or nginx sends clients that accept
// text/event-stream (as the benchmark's subscribers do), one with 503 and
// one with 429. The benchmark must count all five as refused, not as
// streams that connected and ended nor as connect errors, retry, and
// connect every subscriber in the end.
func TestRunCountsRefusals(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	refuse := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Retry-After", "1")
		if status == http.StatusOK {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				next.ServeHTTP(w, r)
				return
			}
			switch attempts.Add(1) {
			case 1:
				refuse(w, http.StatusOK, ": refused: stream-limit: too many streams from this address (at most 2)\nretry: 50\n\n")
			case 2:
				refuse(w, http.StatusOK, ": refused: unavailable: no hub reachable\nretry: 2850\n\n")
			case 3:
				refuse(w, http.StatusOK, ": refused: draining: hub is shutting down\n\n")
			case 4:
				refuse(w, http.StatusServiceUnavailable, "hub is shutting down\n")
			case 5:
				refuse(w, http.StatusTooManyRequests, "too many streams from this address (at most 2)\n")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	res := runOK(t, Config{
		Hub:  startHubWrapped(t, hub.Config{}, ssehttp.Config{}, wrap),
		Mode: ModeIdle, Subscribers: 2, Duration: 100 * time.Millisecond, PID: 0,
	})
	if res.Connected != 2 || res.Refused != 5 || res.ConnectErrors != 0 || res.Disconnects != 0 {
		t.Errorf("connected %d refused %d connect errors %d disconnects %d; want 2 5 0 0 (last error: %s)",
			res.Connected, res.Refused, res.ConnectErrors, res.Disconnects, res.LastError)
	}
	var text bytes.Buffer
	if err := WriteText(&text, res); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(text.Bytes(), []byte("refused (retried)")) {
		t.Errorf("the table lacks the refusals:\n%s", text.String())
	}
}
