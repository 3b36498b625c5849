package bench

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/ssehttp"
)

// fakeHub answers every GET with an event stream. Stalled subscribers'
// streams (the X-Bench-Stalled header) get more than their buffers hold
// and are then ended when cut is set, or get a few bytes and stay open.
// Other streams stay open until the test ends.
func fakeHub(t *testing.T, cut bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stalled := r.Header.Get("X-Bench-Stalled") != ""
		w.Header().Set("Content-Type", "text/event-stream")
		if stalled && cut {
			// The connection ends with the stream, as when a hub
			// cuts off a slow consumer. (A write left to block until
			// a deadline did the same, but on a loaded machine the
			// final read could drain it and then wait out its quiet
			// time before the deadline fired: a flaky count.)
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		if stalled {
			if cut {
				_, _ = w.Write([]byte(": stalled\n\n"))
				return
			}
			_, _ = w.Write([]byte(": hello\n\n"))
			_ = rc.Flush()
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/mercure"
}

func TestStalledSubscribers(t *testing.T) {
	tests := []struct {
		name    string
		stalled int
		cut     bool
		wantCut uint64
	}{
		{name: "none", stalled: 0},
		{name: "kept open by the hub", stalled: 3, cut: false, wantCut: 0},
		{name: "cut off by the hub", stalled: 3, cut: true, wantCut: 3},
		{name: "more stalled than subscribers", stalled: 7, cut: true, wantCut: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runOK(t, Config{
				Hub: fakeHub(t, tt.cut), Mode: ModeIdle, Subscribers: 4, Stalled: tt.stalled,
				Duration: 50 * time.Millisecond,
			})
			if res.Connected != 4 || res.Delivered != 0 || res.Latency.Count != 0 {
				t.Errorf("connected %d delivered %d latencies %d; want 4 0 0: stalled subscribers are in no figure",
					res.Connected, res.Delivered, res.Latency.Count)
			}
			if res.Stalled != tt.stalled || res.StalledConnected != uint64(tt.stalled) || res.StalledCutOff != tt.wantCut {
				t.Errorf("stalled %d connected %d cut off %d; want %d %d %d",
					res.Stalled, res.StalledConnected, res.StalledCutOff, tt.stalled, tt.stalled, tt.wantCut)
			}
			var text bytes.Buffer
			if err := WriteText(&text, res); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(text.String(), "cut off by the hub"); got != (tt.stalled > 0) {
				t.Errorf("table shows the stalled rows: %v; want %v:\n%s", got, tt.stalled > 0, text.String())
			}
		})
	}
}

// TestStalledAgainstHub runs stalled subscribers against ssehub with a
// small queue: every event still reaches every reading subscriber exactly
// once, the stalled ones count in no figure, and the hub ends their
// streams (their queue overflows while a write to them is blocked). The
// queue (48 events of 64 KiB) and the write timeout leave a reading
// subscriber room to fall behind on a loaded machine under -race: with 16
// events and 200 ms, one was sometimes cut off too.
func TestStalledAgainstHub(t *testing.T) {
	hubURL := startHubWith(t, hub.Config{QueueSize: 48}, ssehttp.Config{WriteTimeout: time.Second})
	res := runOK(t, Config{
		Hub: hubURL, PublisherToken: publisherToken(t),
		Subscribers: 6, Stalled: 3, Events: 100, PayloadSize: 64 << 10, Publishers: 2, Duration: time.Minute,
	})
	checkDelivery(t, res, 100, 6)
	if res.StalledConnected != 3 || res.StalledCutOff != 3 {
		t.Errorf("stalled connected %d cut off %d; want 3 3", res.StalledConnected, res.StalledCutOff)
	}
}

func TestStalledValidate(t *testing.T) {
	t.Parallel()
	err := Config{Hub: "http://127.0.0.1:1/", Subscribers: 1, Stalled: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "stalled") {
		t.Errorf("Validate: %v; want a stalled error", err)
	}
	err = Config{Hub: "http://127.0.0.1:1/", Subscribers: MaxPerWorker, Stalled: 1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "worker processes") {
		t.Errorf("Validate: %v; want a worker processes error", err)
	}
}
