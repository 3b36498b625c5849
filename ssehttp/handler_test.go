package ssehttp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tokens is an Authenticator for handler tests: a bearer token names a
// grant. JWT validation is tested in jwtauth and end to end in the server.
type tokens map[string]*auth.Grant

func (ts tokens) Authenticate(r *http.Request, _ auth.Role) (*auth.Grant, error) {
	src, tok := auth.SourceHeader, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" {
		if c, err := r.Cookie("mercureAuthorization"); err == nil {
			src, tok = auth.SourceCookie, c.Value
		}
	}
	if tok == "" {
		return nil, nil
	}
	if d, ok := strings.CutPrefix(tok, "expires-in-"); ok {
		left, err := time.ParseDuration(d)
		if err != nil {
			return nil, auth.InvalidToken("bad test token")
		}
		return &auth.Grant{Subscribe: []hub.Matcher{hub.MatchAll}, Expires: time.Now().Add(left), Source: src}, nil
	}
	g, ok := ts[tok]
	if !ok {
		return nil, auth.InvalidToken("signature is invalid")
	}
	cp := *g
	cp.Source = src
	return &cp, nil
}

var testTokens = tokens{
	"all":    {Publish: []hub.Matcher{hub.MatchAll}, Subscribe: []hub.Matcher{hub.MatchAll}},
	"only-a": {Publish: []hub.Matcher{hub.Exact("a")}, Subscribe: []hub.Matcher{hub.Exact("a")}},
}

type fixture struct {
	hub     *hub.Hub
	handler *Handler
	srv     *httptest.Server
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, hub.Config{}, mod)
}

// newFixtureOn is newFixture with a hub configured by hcfg.
func newFixtureOn(t *testing.T, hcfg hub.Config, mod func(*Config)) *fixture {
	t.Helper()
	return newServerFixture(t, hcfg, mod, (*httptest.Server).Start)
}

// newServerFixture is newFixtureOn with the server started by start (for
// instance (*httptest.Server).StartTLS, after setting EnableHTTP2).
func newServerFixture(t *testing.T, hcfg hub.Config, mod func(*Config), start func(*httptest.Server)) *fixture {
	t.Helper()
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := selector.New(selector.Config{HubURL: "https://hub.example/.well-known/mercure"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Hub: h, Compiler: comp, Auth: testTokens, Anonymous: true, Retry: -1, CORSOrigins: []string{"https://app.example"}}
	if mod != nil {
		mod(&cfg)
	}
	hd, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(DefaultPath, hd)
	mux.Handle(SubscriptionsPath, hd.Subscriptions())
	mux.Handle(SubscriptionsPath+"/", hd.Subscriptions())
	srv := httptest.NewUnstartedServer(mux)
	start(srv)
	f := &fixture{hub: h, handler: hd, srv: srv}
	t.Cleanup(func() {
		hd.Drain()
		f.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hd.Wait(ctx); err != nil {
			t.Errorf("Wait: %v", err)
		}
		h.Close(context.Background())
	})
	return f
}

func (f *fixture) publish(t *testing.T, token string, form url.Values, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+DefaultPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), resp.Header
}

// stream is an open subscription read with the sse decoder.
type stream struct {
	resp *http.Response
	dec  *sse.Decoder
}

func (f *fixture) subscribe(t *testing.T, query string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+DefaultPath+"?"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &stream{resp: resp, dec: sse.NewDecoder(resp.Body)}
}

// next returns the next event, failing after 10 s (a hang detector).
func (s *stream) next(t *testing.T) sse.Event {
	t.Helper()
	type result struct {
		ev  sse.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := s.dec.Decode()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("decode: %v", r.err)
		}
		return r.ev
	case <-time.After(10 * time.Second):
		s.resp.Body.Close()
		<-ch
		t.Fatal("no event within 10 s")
		return sse.Event{}
	}
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	for _, tc := range []struct {
		name   string
		token  string
		form   url.Values
		header http.Header
		status int
		reason string
	}{
		{"no token", "", form("topic", "a"), nil, 401, "publishing requires a token"},
		{"bad token", "forged", form("topic", "a"), nil, 401, "signature is invalid"},
		{"token lacks the topic", "only-a", form("topic", "a", "topic", "b"), nil, 403, "does not grant"},
		{"missing topic", "all", form("data", "x"), nil, 400, `missing "topic"`},
		{"empty topic", "all", form("topic", ""), nil, 400, "topic is empty"},
		{"wildcard topic", "all", form("topic", "*"), nil, 400, "reserved for the wildcard"},
		{"CR in id", "all", form("topic", "a", "id", "x\ry"), nil, 400, "id contains forbidden character"},
		{"LF in id", "all", form("topic", "a", "id", "x\nid: evil"), nil, 400, "id contains forbidden character"},
		{"NUL in type", "all", form("topic", "a", "type", "x\x00"), nil, 400, "type contains forbidden character"},
		{"LF in type", "all", form("topic", "a", "type", "a\ndata: evil"), nil, 400, "type contains forbidden character"},
		{"reserved type", "all", form("topic", "a", "type", "mercure"), nil, 400, "reserved for the hub"},
		{"hub type prefix", "all", form("topic", "a", "type", "ssehub.gap"), nil, 400, "reserved for the hub"},
		{"earliest id", "all", form("topic", "a", "id", "earliest"), nil, 400, "reserved"},
		{"fragment id", "all", form("topic", "a", "id", "#1"), nil, 400, `must not start with "#"`},
		{"non-digit retry", "all", form("topic", "a", "retry", "10s"), nil, 400, "ASCII digits only"},
		{"negative retry", "all", form("topic", "a", "retry", "-1"), nil, 400, "ASCII digits only"},
		{"invalid UTF-8 data", "all", form("topic", "a", "data", "\xff\xfe"), nil, 400, "not valid UTF-8"},
		{"control char topic", "all", form("topic", "a\x01"), nil, 400, "control character"},
		{"reserved namespace", "all", form("topic", "/.well-known/mercure/subscriptions/x"), nil, 400, "reserved namespace"},
		{"reserved namespace absolute", "all", form("topic", "https://other.example/.well-known/mercure"), nil, 400, "reserved namespace"},
		{"reserved namespace encoded", "all", form("topic", "/.well-known/%6Dercure/x"), nil, 400, "reserved namespace"},
		{"reserved namespace dot segments", "all", form("topic", "/a/../.well-known/mercure/x"), nil, 400, "reserved namespace"},
		{"too many topics", "all", nil, nil, 400, "more than 100 topics"},
		{"id too long", "all", form("topic", "a", "id", strings.Repeat("i", 1025)), nil, 400, "id is longer than 1024 bytes"},
		{"id too long in multibyte characters", "all", form("topic", "a", "id", strings.Repeat("é", 513)), nil, 400, "id is longer than 1024 bytes"},
		{"topic too long", "all", form("topic", strings.Repeat("t", 2049)), nil, 400, "longer than 2048 bytes"},
		{"body too large", "all", form("topic", "a", "data", strings.Repeat("x", 5000)), nil, 413, "larger than 4096 bytes"},
		{"wrong content type", "all", nil, http.Header{"Content-Type": {"application/json"}}, 415, "x-www-form-urlencoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm := tc.form
			if tc.name == "too many topics" {
				fm = url.Values{}
				for i := range 101 {
					fm.Add("topic", fmt.Sprint("t", i))
				}
			}
			status, body, hdr := f.publish(t, tc.token, fm, tc.header)
			if status != tc.status || !strings.Contains(body, tc.reason) {
				t.Errorf("got %d %q; want %d containing %q", status, body, tc.status, tc.reason)
			}
			if strings.Contains(body, "\n") {
				t.Errorf("reason is not one line: %q", body)
			}
			if status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if _, newest, _ := f.hub.Store().Bounds(context.Background()); newest.Seq != 0 {
		t.Errorf("refused publishes stored something: newest %v", newest)
	}
}

func TestPublishAndReceive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := f.subscribe(t, "match=https://example.com/books/1&match_urlpattern=https://example.com/authors/:id", nil)
	if ct := s.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	data := "data for\n\n        name"
	status, id, hdr := f.publish(t, "all", form("topic", "https://example.com/books/1", "id", "custom-1", "data", data, "type", "update", "retry", "1500"), nil)
	if status != 200 || id != "custom-1" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("publish: %d %q %q", status, id, hdr.Get("Content-Type"))
	}
	ev := s.next(t)
	if ev.ID != "custom-1" || ev.Data != data || ev.Type != "update" {
		t.Errorf("got %+v", ev)
	}
	if r, _ := s.dec.Retry(); r != 1500*time.Millisecond {
		t.Errorf("retry %v; want 1.5s", r)
	}
	// Same ID again, other topic, generated ID: all delivered.
	f.publish(t, "all", form("topic", "https://example.com/books/1", "id", "custom-1", "data", "again"), nil)
	_, gen, _ := f.publish(t, "all", form("topic", "https://example.com/authors/7", "data", "author"), nil)
	f.publish(t, "all", form("topic", "https://example.com/unrelated", "data", "no"), nil)
	if ev := s.next(t); ev.ID != "custom-1" || ev.Data != "again" {
		t.Errorf("duplicate id: got %+v", ev)
	}
	if ev := s.next(t); ev.ID != gen || !strings.HasPrefix(gen, "urn:uuid:") || ev.Data != "author" {
		t.Errorf("url pattern: got %+v (published %q)", ev, gen)
	}
}

func TestPrivateUpdates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	anon := f.subscribe(t, "topic=a&topic=b", nil)
	granted := f.subscribe(t, "topic=a&topic=b", http.Header{"Authorization": {"Bearer only-a"}})
	f.publish(t, "all", form("topic", "b", "data", "private b", "private", "on"), nil)
	f.publish(t, "all", form("topic", "a", "data", "private a", "private", ""), nil)
	f.publish(t, "all", form("topic", "b", "topic", "a", "data", "private b alt a", "private", "on"), nil)
	f.publish(t, "all", form("topic", "b", "data", "public"), nil)
	if ev := anon.next(t); ev.Data != "public" {
		t.Errorf("anonymous got %q first; want only the public update", ev.Data)
	}
	for _, want := range []string{"private a", "private b alt a", "public"} {
		if ev := granted.next(t); ev.Data != want {
			t.Errorf("granted got %q; want %q", ev.Data, want)
		}
	}
}

func TestResumeHeadersAndGap(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, id := range []string{"1", "2", "3"} {
		f.publish(t, "all", form("topic", "t", "id", id, "data", "d"+id), nil)
	}
	f.publish(t, "all", form("topic", "t", "id", "secret", "data", "s", "private", "on"), nil)
	long := strings.Repeat("L", 16<<10)
	for _, tc := range []struct {
		name, query string
		header      http.Header
		anchor      string
		first       sse.Event
	}{
		{"header", "topic=t", http.Header{"Last-Event-Id": {"1"}}, "1", sse.Event{ID: "2", Type: "message", Data: "d2"}},
		{"header wins over query", "topic=t&last_event_id=2", http.Header{"Last-Event-Id": {"1"}}, "1", sse.Event{ID: "2", Type: "message", Data: "d2"}},
		{"1.0 query", "topic=t&last_event_id=2", nil, "2", sse.Event{ID: "3", Type: "message", Data: "d3"}},
		{"v0.24 query", "topic=t&lastEventID=2", nil, "2", sse.Event{ID: "3", Type: "message", Data: "d3"}},
		{"earliest", "topic=t&last_event_id=earliest", nil, "earliest", sse.Event{ID: "1", Type: "message", Data: "d1"}},
		{"unknown", "topic=t&last_event_id=nope", nil, "earliest", sse.Event{Type: hub.GapEventType, Data: `{"reason":"unknown-id","lastEventId":"nope"}`}},
		// A Last-Event-ID longer than any ID the hub accepts names no
		// update: the stream starts at the earliest with a gap notice,
		// never a status an EventSource would not reconnect from.
		{"over-long", "topic=t", http.Header{"Last-Event-Id": {long}}, "earliest", sse.Event{Type: hub.GapEventType, Data: `{"reason":"unknown-id","lastEventId":"` + long + `"}`}},
		{"private id is not disclosed", "topic=t&last_event_id=secret", nil, "earliest", sse.Event{Type: hub.GapEventType, Data: `{"reason":"unknown-id","lastEventId":"secret"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.subscribe(t, tc.query, tc.header)
			if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != tc.anchor {
				t.Errorf("Mercure-Last-Event-ID = %q; want %q", got, tc.anchor)
			}
			if got := s.resp.Header.Get("Last-Event-ID"); got != tc.anchor {
				t.Errorf("Last-Event-ID = %q; want %q", got, tc.anchor)
			}
			if ev := s.next(t); ev != tc.first {
				t.Errorf("first event %+v; want %+v", ev, tc.first)
			}
		})
	}
}

func TestSubscribeRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Anonymous = false })
	for _, tc := range []struct {
		name, query, token string
		status             int
		reason             string
	}{
		{"no selector", "", "all", 400, "missing topic selector"},
		{"unknown matcher", "match_regex=.*", "all", 400, "unsupported matcher type"},
		{"bad pattern", "match_urlpattern=" + url.QueryEscape("https://x/(("), "all", 400, "invalid URL pattern"},
		{"malformed query", "topic=%zz", "all", 400, "malformed query"},
		{"anonymous refused", "topic=a", "", 401, "requires a token"},
		{"bad token", "topic=a", "forged", 401, "signature is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+DefaultPath+"?"+tc.query, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.reason) {
				t.Errorf("got %d %q; want %d containing %q", resp.StatusCode, body, tc.status, tc.reason)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, method, origin string
		wantOrigin           string
	}{
		{"allowed", http.MethodGet, "https://app.example", "https://app.example"},
		{"preflight", http.MethodOptions, "https://app.example", "https://app.example"},
		{"other origin", http.MethodGet, "https://evil.example", ""},
		{"null origin", http.MethodGet, "null", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, f.srv.URL+DefaultPath+"?topic=a", nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Headers", "last-event-id, authorization")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := resp.Header
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Errorf("ACAO = %q; want %q", got, tc.wantOrigin)
			}
			if tc.wantOrigin != "" && h.Get("Access-Control-Allow-Credentials") != "true" {
				t.Error("credentials not allowed")
			}
			if !strings.Contains(h.Get("Vary"), "Origin") {
				t.Error("no Vary: Origin")
			}
			if tc.method == http.MethodOptions {
				allow := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
				if !strings.Contains(allow, "last-event-id") || !strings.Contains(allow, "authorization") {
					t.Errorf("preflight allows %q", allow)
				}
			}
		})
	}
	if _, err := New(Config{Hub: f.hub, Compiler: f.handler.cfg.Compiler, CORSOrigins: []string{"null"}}); err == nil {
		t.Error(`CORS origin "null" accepted`)
	}
}

func TestCookiePublishNeedsAllowedOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := http.Header{"Cookie": {"mercureAuthorization=all"}}
	for _, tc := range []struct {
		name   string
		extra  http.Header
		status int
	}{
		{"no origin", nil, 403},
		{"foreign origin", http.Header{"Origin": {"https://evil.example"}}, 403},
		{"foreign referer", http.Header{"Referer": {"https://evil.example/page"}}, 403},
		{"allowed origin", http.Header{"Origin": {"https://app.example"}}, 200},
		{"same origin", http.Header{"Origin": {f.srv.URL}}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cookie.Clone()
			for k, v := range tc.extra {
				h[k] = v
			}
			if status, body, _ := f.publish(t, "", form("topic", "a"), h); status != tc.status {
				t.Errorf("got %d %q; want %d", status, body, tc.status)
			}
		})
	}
}

func TestHeartbeatAndRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Heartbeat = 5 * time.Millisecond; c.Retry = time.Second })
	s := f.subscribe(t, "topic=a", nil)
	comments := make(chan string, 1)
	s.dec.OnComment = func(c string) {
		select {
		case comments <- c:
		default:
		}
	}
	go s.dec.Decode() // runs OnComment; ends when the body is closed
	select {
	case c := <-comments:
		if c != "" {
			t.Errorf("heartbeat comment %q; want empty", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat within 10 s")
	}
	s.resp.Body.Close()
	if r, ok := s.dec.Retry(); !ok || r < 750*time.Millisecond || r > 1250*time.Millisecond {
		t.Errorf("retry %v %v; want 1s ± 25%%", r, ok)
	}
}

func TestStreamEndsAtTokenExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tok := range []string{"expires-in-50ms", "expires-in--1s"} {
		s := f.subscribe(t, "topic=a", http.Header{"Authorization": {"Bearer " + tok}})
		if _, err := s.dec.Decode(); err != io.EOF {
			t.Errorf("%s: stream ended with %v; want a clean EOF", tok, err)
		}
	}
}

func TestDrainEndsStreamsAtEventBoundary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := f.subscribe(t, "topic=a", nil)
	f.publish(t, "all", form("topic", "a", "data", "one\ntwo"), nil)
	if ev := s.next(t); ev.Data != "one\ntwo" {
		t.Fatalf("got %+v", ev)
	}
	f.handler.Drain()
	rest, err := io.ReadAll(bufio.NewReader(s.resp.Body))
	if err != nil {
		t.Fatalf("stream ended with %v; want a clean end", err)
	}
	if len(rest) > 0 && !strings.HasSuffix(string(rest), "\n\n") && string(rest) != ":\n" {
		t.Errorf("stream ended mid-event: %q", rest)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+DefaultPath+"?topic=a", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("subscribe while draining: %d; want 503", resp.StatusCode)
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	mux := http.NewServeMux()
	mux.Handle(HistoryPath, f.handler.History())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for i := range 5 {
		fm := form("topic", "a", "id", fmt.Sprint(i), "data", fmt.Sprint("d", i))
		if i == 2 {
			fm.Set("private", "on")
		}
		f.publish(t, "all", fm, nil)
	}
	get := func(query, token string) (int, historyPage) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+HistoryPath+"?"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p historyPage
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, p
	}
	status, p := get("topic=a&after=earliest&limit=2", "all")
	if status != 200 || len(p.Events) != 2 || p.Events[0].ID != "0" || !p.More || p.NextCursor == "" {
		t.Fatalf("first page: %d %+v", status, p)
	}
	status, p = get("topic=a&limit=10&cursor="+p.NextCursor, "all")
	if status != 200 || len(p.Events) != 3 || p.Events[0].ID != "2" || p.More {
		t.Fatalf("second page: %d %+v", status, p)
	}
	_, p = get("topic=a&after=earliest", "")
	var seen []string
	for _, e := range p.Events {
		seen = append(seen, e.ID)
	}
	if got := strings.Join(seen, ","); got != "0,1,3,4" {
		t.Errorf("anonymous history %q; want 0,1,3,4 (private 2 hidden)", got)
	}
	if _, p = get("topic=a&after=nope", "all"); p.Gap != hub.GapUnknownID {
		t.Errorf("unknown id: gap %q", p.Gap)
	}
	for _, q := range []string{"after=1", "topic=a&limit=0", "topic=a&limit=1001", "topic=a&cursor=%%%", "topic=a&cursor=bm9wZQ"} {
		if status, _ := get(q, "all"); status != 400 {
			t.Errorf("%s: %d; want 400", q, status)
		}
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := f.subscribe(t, "topic=a", nil)
	key := http.Header{"Idempotency-Key": {"order-42"}}
	_, first, _ := f.publish(t, "all", form("topic", "a", "data", "once"), key)
	_, again, _ := f.publish(t, "all", form("topic", "a", "data", "once"), key)
	if again != first {
		t.Errorf("retry returned %q; want %q", again, first)
	}
	f.publish(t, "all", form("topic", "a", "data", "next"), nil)
	if ev := s.next(t); ev.ID != first || ev.Data != "once" {
		t.Errorf("got %+v", ev)
	}
	if ev := s.next(t); ev.Data != "next" {
		t.Errorf("the retried publish was delivered twice: got %+v", ev)
	}
	for _, bad := range []http.Header{
		{"Idempotency-Key": {""}},
		{"Idempotency-Key": {strings.Repeat("k", 256)}},
		{"Idempotency-Key": {"caf\xc3\xa9"}},
		{"Idempotency-Key": {"a", "b"}},
	} {
		if status, _, _ := f.publish(t, "all", form("topic", "a"), bad); status != 400 {
			t.Errorf("key %q: %d; want 400", bad["Idempotency-Key"], status)
		}
	}
}
