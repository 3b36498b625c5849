package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// callback is one message the service posted.
type callback struct {
	n   int
	msg message
}

func do(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestService(t *testing.T) {
	var quit atomic.Bool
	svc := newService(func() { quit.Store(true) }, log.New(io.Discard, "", 0))
	srv := httptest.NewServer(svc)
	defer srv.Close()
	defer svc.Close()
	defer http.DefaultClient.CloseIdleConnections()

	calls := make(chan callback, 16)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/cb/"))
		var m message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("callback %s: %v", r.URL.Path, err)
		}
		calls <- callback{n, m}
	}))
	defer cb.Close()

	conns := make(chan *http.Request, 4)
	send := make(chan string)
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		conns <- r
		for {
			select {
			case <-r.Context().Done():
				return
			case s := <-send:
				io.WriteString(w, s)
				http.NewResponseController(w).Flush()
			}
		}
	}))
	defer sse.Close()

	next := 1
	expect := func(want message) {
		t.Helper()
		select {
		case c := <-calls:
			if c.n != next {
				t.Errorf("got callback %d; want %d", c.n, next)
			}
			next++
			got, _ := json.Marshal(c.msg)
			w, _ := json.Marshal(want)
			if string(got) != string(w) {
				t.Errorf("callback %d: got %s; want %s", c.n, got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no callback %d", next)
		}
	}
	conn := func() *http.Request {
		t.Helper()
		select {
		case r := <-conns:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no connection")
			return nil
		}
	}

	// Status.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var status struct{ Capabilities []string }
	json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	for _, c := range []string{"comments", "headers", "last-event-id", "post", "report", "read-timeout",
		"restart", "bom", "event-type-listeners", "server-directed-shutdown-request"} {
		if !slices.Contains(status.Capabilities, c) {
			t.Errorf("capabilities %v lack %q", status.Capabilities, c)
		}
	}

	// Invalid creations.
	for _, body := range []string{"{", `{"streamUrl":""}`, `{"streamUrl":"http://x/","callbackUrl":"http://y/","method":"BAD METHOD"}`} {
		if resp := do(t, "POST", srv.URL+"/", body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST / %s: got %d; want 400", body, resp.StatusCode)
		}
	}

	// Create, with headers, a body and an initial last event ID.
	create, _ := json.Marshal(map[string]any{
		"streamUrl": sse.URL, "callbackUrl": cb.URL + "/cb", "tag": "test", "initialDelayMs": 0,
		"lastEventId": "start", "headers": map[string]string{"x-test": "1"}, "method": "REPORT", "body": "q",
	})
	resp = do(t, "POST", srv.URL+"/", string(create))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || loc == "" {
		t.Fatalf("POST /: got %d, Location %q; want 201 and a Location", resp.StatusCode, loc)
	}
	r := conn()
	if r.Method != "REPORT" || r.Header.Get("X-Test") != "1" || r.Header.Get("Last-Event-ID") != "start" ||
		r.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("first request: got %s %v", r.Method, r.Header)
	}

	// Commands.
	if resp := do(t, "POST", srv.URL+loc, `{"command":"listen","listen":{"type":"greeting"}}`); resp.StatusCode/100 != 2 {
		t.Errorf("listen: got %d; want 2xx", resp.StatusCode)
	}
	if resp := do(t, "POST", srv.URL+loc, `{"command":"dance"}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown command: got %d; want 400", resp.StatusCode)
	}
	if resp := do(t, "POST", srv.URL+"/streams/999", `{"command":"restart"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("command to unknown stream: got %d; want 404", resp.StatusCode)
	}

	send <- "event: greeting\ndata: hi\n\n: note\nevent: other\ndata: skipped\n\nid: 5\ndata: m\n\n"
	comment := " note"
	expect(message{Kind: "event", Event: &eventJSON{Type: "greeting", Data: "hi", ID: "start"}})
	expect(message{Kind: "comment", Comment: &comment})
	expect(message{Kind: "event", Event: &eventJSON{Type: "message", Data: "m", ID: "5"}})

	// Restart resumes from the last event ID, without an error callback.
	if resp := do(t, "POST", srv.URL+loc, `{"command":"restart"}`); resp.StatusCode/100 != 2 {
		t.Errorf("restart: got %d; want 2xx", resp.StatusCode)
	}
	if r := conn(); r.Header.Get("Last-Event-ID") != "5" {
		t.Errorf("after restart: got Last-Event-ID %q; want 5", r.Header.Get("Last-Event-ID"))
	}
	send <- "data: again\n\n"
	expect(message{Kind: "event", Event: &eventJSON{Type: "message", Data: "again", ID: "5"}})

	// Delete.
	if resp := do(t, "DELETE", srv.URL+loc, ""); resp.StatusCode/100 != 2 {
		t.Errorf("DELETE stream: got %d; want 2xx", resp.StatusCode)
	}
	if resp := do(t, "DELETE", srv.URL+loc, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: got %d; want 404", resp.StatusCode)
	}
	select {
	case c := <-calls:
		t.Errorf("unexpected callback after delete: %+v", c)
	default:
	}

	// Quit.
	if resp := do(t, "DELETE", srv.URL+"/", ""); resp.StatusCode/100 != 2 || !quit.Load() {
		t.Errorf("DELETE /: got %d, quit %v; want 2xx and quit", resp.StatusCode, quit.Load())
	}
}

func TestServiceErrorCallback(t *testing.T) {
	svc := newService(func() {}, log.New(io.Discard, "", 0))
	srv := httptest.NewServer(svc)
	defer srv.Close()
	defer svc.Close()
	defer http.DefaultClient.CloseIdleConnections()

	calls := make(chan message, 4)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m message
		json.NewDecoder(r.Body).Decode(&m)
		calls <- m
	}))
	defer cb.Close()
	missing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMovedPermanently) // no Location
	}))
	defer missing.Close()

	create, _ := json.Marshal(map[string]any{"streamUrl": missing.URL, "callbackUrl": cb.URL})
	resp := do(t, "POST", srv.URL+"/", string(create))
	select {
	case m := <-calls:
		if m.Kind != "error" || m.Error == "" {
			t.Errorf("got %+v; want an error callback", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error callback")
	}
	do(t, "DELETE", srv.URL+resp.Header.Get("Location"), "")
}
