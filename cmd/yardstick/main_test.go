package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/bench"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startServer(t *testing.T, coalesce bool) string {
	t.Helper()
	srv := httptest.NewServer(newServer(50*time.Millisecond, 64, coalesce))
	t.Cleanup(srv.Close)
	return srv.URL + path
}

// publish posts form and returns the status and body.
func publish(t *testing.T, hub string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(hub, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPublishAndReceive(t *testing.T) {
	hub := startServer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hub+"?topic=a&topic=b", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("subscribe: %d %q; want 200 text/event-stream", resp.StatusCode, ct)
	}
	if code, id := publish(t, hub, url.Values{"topic": {"a", "b"}, "data": {"one\ntwo"}, "id": {"e1"}, "type": {"t"}}); code != 200 || id != "e1" {
		t.Fatalf("publish: %d %q; want 200 e1", code, id)
	}
	if code, id := publish(t, hub, url.Values{"topic": {"c"}, "data": {"elsewhere"}}); code != 200 || !strings.HasPrefix(id, "urn:yardstick:") {
		t.Fatalf("publish: %d %q; want 200 and a generated ID", code, id)
	}
	if code, _ := publish(t, hub, url.Values{"topic": {"b"}, "data": {"three"}}); code != 200 {
		t.Fatalf("publish: %d; want 200", code)
	}
	// The event for both topics arrives once; heartbeats may come between.
	want := []string{"id: e1", "event: t", "data: one", "data: two", "", "id: urn:yardstick:2", "data: three", ""}
	r := bufio.NewReader(resp.Body)
	var got []string
	for len(got) < len(want) {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (got %q)", err, got)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == ":" {
			r.ReadString('\n') // the heartbeat's empty line
			continue
		}
		got = append(got, line)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stream:\n%q\nwant\n%q", got, want)
	}
}

func TestRefusals(t *testing.T) {
	hub := startServer(t, false)
	if code, _ := publish(t, hub, url.Values{"data": {"x"}}); code != 400 {
		t.Errorf("publish without topic: %d; want 400", code)
	}
	if code, _ := publish(t, hub, url.Values{"topic": {"a"}, "id": {"a\nb"}}); code != 400 {
		t.Errorf("publish with a two-line id: %d; want 400", code)
	}
	resp, err := http.Get(hub)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("subscribe without topic: %d; want 400", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, hub, nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("DELETE: %d; want 405", resp.StatusCode)
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	s := newServer(time.Minute, 2, false)
	c := &client{ch: make(chan []byte, 2), gone: make(chan struct{})}
	s.topics["a"] = map[*client]struct{}{c: {}}
	for range 2 {
		s.fanout([]string{"a"}, []byte("x"))
	}
	select {
	case <-c.gone:
		t.Fatal("dropped with room left in its queue")
	default:
	}
	s.fanout([]string{"a", "b"}, []byte("x"))
	select {
	case <-c.gone:
	default:
		t.Fatal("not dropped with a full queue")
	}
	s.fanout([]string{"a"}, []byte("x")) // dropping twice is harmless
}

// TestBenchAgainstYardstick runs the load tool against the yardstick:
// every event reaches every subscriber once, with or without coalescing.
func TestBenchAgainstYardstick(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		hub := startServer(t, coalesce)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := bench.Run(ctx, bench.Config{Hub: hub, Subscribers: 50, Events: 200, Publishers: 4, Duration: time.Minute})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.Published != 200 || res.Delivered != 50*200 || res.Lost != 0 || res.Duplicated != 0 || res.Disconnects != 0 {
			t.Errorf("coalesce %v: published %d delivered %d lost %d duplicated %d disconnects %d; want 200 10000 0 0 0 (last error %s)",
				coalesce, res.Published, res.Delivered, res.Lost, res.Duplicated, res.Disconnects, res.LastError)
		}
	}
}
