package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}

// TestFollowResumes plays a hub that restarts once: the follower must come
// back with the last event ID, then resume from its state file on a new
// run.
func TestFollowResumes(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string // Last-Event-ID of each connection
	)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mercure" || r.URL.Query().Get("topic") != "/books/1" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		seen = append(seen, r.Header.Get("Last-Event-ID"))
		n := len(seen)
		mu.Unlock()
		switch n {
		case 1: // then the "restart"
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "retry: 1\nid: urn:1\ndata: first\n\n")
		case 2:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: urn:2\ndata: second\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state := filepath.Join(t.TempDir(), "last-id")
	var out bytes.Buffer
	if err := follow(ctx, hub.URL, []string{"/books/1"}, "", state, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Errorf("got %d updates:\n%s; want 2", got, out.String())
	}
	if b, _ := os.ReadFile(state); string(b) != "urn:2\n" {
		t.Errorf("state file holds %q; want urn:2", b)
	}
	// A new run starts from the state file.
	if err := follow(ctx, hub.URL, []string{"/books/1"}, "", state, io.Discard); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The 204 that ends the first run already carries urn:2; so does the
	// first request of the second run, read from the state file.
	want := []string{"", "urn:1", "urn:2", "urn:2"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("got Last-Event-IDs %q; want %q", seen, want)
	}
}
