package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/sse"
	"github.com/ssehub/ssehub/ssehttp"
)

// TestEveryAcceptedIDIsResumable publishes an update whose ID has the
// longest accepted length, in characters that percent-encoding inflates,
// and resumes after it through the real server both ways a client can
// (the Last-Event-ID header and the lastEventID query parameter). An ID
// one byte longer, or of 100 kB (once accepted, then answered 431 on
// resume), is refused at publish with 400.
func TestEveryAcceptedIDIsResumable(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Anonymous: true})
	tok := mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}})
	longest := strings.Repeat("é%a", ssehttp.DefaultMaxIDLen/4) // 4 bytes each
	if len(longest) != ssehttp.DefaultMaxIDLen {
		t.Fatalf("test ID is %d bytes", len(longest))
	}
	for _, id := range []string{longest + "x", strings.Repeat("i", 100_000)} {
		if status, body := publish(t, http.DefaultClient, s.HubURL(), tok, url.Values{"topic": {"t"}, "id": {id}}); status != 400 || !strings.Contains(body, "id is longer than 1024 bytes") {
			t.Errorf("publishing a %d-byte id: %d %q; want 400 naming the limit", len(id), status, body)
		}
	}
	for _, f := range []url.Values{{"topic": {"t"}, "id": {longest}}, {"topic": {"t"}, "id": {"next"}, "data": {"after"}}} {
		if status, body := publish(t, http.DefaultClient, s.HubURL(), tok, f); status != 200 {
			t.Fatalf("publish: %d %q", status, body)
		}
	}
	for name, resume := range map[string]func(*http.Request){
		"header": func(r *http.Request) { r.Header.Set("Last-Event-ID", longest) },
		"query":  func(r *http.Request) { r.URL.RawQuery += "&lastEventID=" + url.QueryEscape(longest) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.HubURL()+"?topic=t", nil)
			resume(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Mercure-Last-Event-ID") != longest {
				t.Fatalf("resume: %s, Mercure-Last-Event-ID %d bytes", resp.Status, len(resp.Header.Get("Mercure-Last-Event-ID")))
			}
			if ev, err := sse.NewDecoder(resp.Body).Decode(); err != nil || ev.ID != "next" {
				t.Fatalf("first event after resuming: %+v %v; want next", ev, err)
			}
		})
	}
}
