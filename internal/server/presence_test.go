package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

// TestSubscriptionsEndToEnd turns on --subscriptions on the embedded store
// and checks the whole path with real JWTs: a watcher authorized with the
// relative URL pattern of the Mercure spec's example receives the
// subscription events of a reader, with the payload of the reader's
// token, and the API lists the reader until it leaves.
func TestSubscriptionsEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Subscriptions: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchTok := mint(t, testKey, jwtauth.Claims{Details: []jwtauth.Detail{{
		Actions: []string{"subscribe"},
		Topics:  []jwtauth.TopicMatcher{{Match: "/.well-known/mercure/subscriptions{/*}?", MatchType: "urlpattern"}},
	}}})
	readTok := mint(t, testKey, jwtauth.Claims{Details: []jwtauth.Detail{{
		Actions: []string{"subscribe"},
		Topics:  []jwtauth.TopicMatcher{{Match: "https://example.com/books/:id", MatchType: "urlpattern"}},
		Payload: map[string]string{"user": "alice"},
	}}})
	_, w := open(t, ctx, http.DefaultClient, s.HubURL()+"?match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions/:type/:match/:subscriber"), watchTok)
	if ev, err := w.Decode(); err != nil || ev.Type != "mercure" || !strings.Contains(ev.Data, `"match_type":"urlpattern"`) {
		t.Fatalf("the watcher's own subscription event: %+v %v", ev, err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	rresp, _ := open(t, rctx, http.DefaultClient, s.HubURL()+"?match="+url.QueryEscape("https://example.com/books/1"), readTok)
	ev, err := w.Decode()
	if err != nil || ev.Type != "mercure" {
		t.Fatalf("the reader's subscription event: %+v %v", ev, err)
	}
	var doc struct {
		ID, Subscriber, Match string
		Active                bool
		Payload               map[string]string
	}
	if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil || !doc.Active || doc.Match != "https://example.com/books/1" || doc.Payload["user"] != "alice" ||
		doc.ID != "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/"+url.QueryEscape(doc.Subscriber) {
		t.Fatalf("subscription event %s (%v)", ev.Data, err)
	}

	get := func(path, tok string) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	status, body, hdr := get(doc.ID, watchTok)
	var answer struct{ LastEventID string }
	if status != 200 || !strings.Contains(body, `"payload":{"user":"alice"}`) || json.Unmarshal([]byte(body), &answer) != nil ||
		!strings.HasPrefix(answer.LastEventID, "#") || !strings.Contains(hdr.Get("Link"), `last-event-id="`+answer.LastEventID+`"`) {
		t.Fatalf("GET %s: %d %s (Link %s); want a stream cursor in both", doc.ID, status, body, hdr.Get("Link"))
	}
	if status, body, _ := get("/.well-known/mercure/subscriptions", readTok); status != 403 {
		t.Errorf("the reader's token read the collection: %d %s", status, body)
	}

	rcancel()
	rresp.Body.Close()
	ev, err = w.Decode()
	if err != nil || ev.Type != "mercure" || !strings.Contains(ev.Data, `"active":false`) || !strings.Contains(ev.Data, doc.Subscriber) {
		t.Fatalf("the reader's end: %+v %v", ev, err)
	}
	if status, _, _ := get(doc.ID, watchTok); status != 404 {
		t.Errorf("GET of an ended subscription: %d, want 404", status)
	}
}
