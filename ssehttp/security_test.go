package ssehttp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// These tests attack a handler that verifies real JWTs (package jwtauth),
// with a clock the test controls.

var jwtSecret = []byte("security-test-secret-of-32-bytes!!")

type jwtFixture struct {
	*fixture
	clock   *testClock
	history *httptest.Server
}

func newJWTFixture(t *testing.T, jcfg jwtauth.Config, mod func(*Config)) *jwtFixture {
	t.Helper()
	clk := newTestClock()
	f := newFixture(t, func(c *Config) {
		if jcfg.Publisher.IsZero() {
			jcfg.Publisher = jwtauth.Key{Secret: jwtSecret}
		}
		jcfg.Selectors = c.Compiler
		jcfg.Now = clk.Now
		a, err := jwtauth.New(jcfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
		c.Now = clk.Now
		if mod != nil {
			mod(c)
		}
	})
	mux := http.NewServeMux()
	mux.Handle(HistoryPath, f.handler.History())
	jf := &jwtFixture{fixture: f, clock: clk, history: httptest.NewServer(mux)}
	t.Cleanup(jf.history.Close)
	return jf
}

// token signs claims with the test secret; exp defaults to an hour after
// the fixture's clock.
func (f *jwtFixture) token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"exp": f.clock.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mercure(publish, subscribe []string) jwt.MapClaims {
	return jwt.MapClaims{"mercure": map[string]any{"publish": publish, "subscribe": subscribe}}
}

// allHeaderValues joins every header of a response, to look for leaks.
func allHeaderValues(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}

// TestPrivateUpdatesNeverReachTheUngranted publishes public and private
// updates and looks for the private ones, or their IDs, everywhere an
// ungranted subscriber can look: the live stream, a replay from the start
// and from before them, a resume naming a private ID, the history
// endpoint, and every response header; then after a grant is revoked
// between disconnect and reconnect.
func TestPrivateUpdatesNeverReachTheUngranted(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t, jwtauth.Config{}, nil)
	publisher := f.token(t, mercure([]string{"*"}, nil))
	granted := f.token(t, mercure(nil, []string{"https://example.com/secret/{id}"}))
	denied := f.token(t, jwt.MapClaims{"sub": "denied", "mercure": map[string]any{"subscribe": []string{"https://example.com/other"}}})
	const q = "topic=https://example.com/secret/1&topic=https://example.com/public"
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	live := map[string]*stream{
		"granted":   f.subscribe(t, q, bearer(granted)),
		"denied":    f.subscribe(t, q, bearer(denied)),
		"anonymous": f.subscribe(t, q, nil),
	}
	pub := func(id, topic string, private bool) {
		fm := form("topic", topic, "id", id, "data", "data of "+id)
		if private {
			fm.Set("private", "on")
		}
		if status, body, _ := f.publish(t, publisher, fm, nil); status != 200 {
			t.Fatalf("publish %s: %d %s", id, status, body)
		}
	}
	pub("public-1", "https://example.com/public", false)
	pub("secret-1", "https://example.com/secret/1", true)
	pub("secret-2", "https://example.com/public", true) // private, alternate topic granted
	f.publish(t, publisher, form("topic", "https://example.com/public", "topic", "https://example.com/secret/1", "id", "secret-3", "private", "on"), nil)
	pub("public-2", "https://example.com/public", false)

	ids := func(s *stream, n int) string {
		var got []string
		for range n {
			got = append(got, s.next(t).ID)
		}
		return strings.Join(got, ",")
	}
	if got := ids(live["granted"], 4); got != "public-1,secret-1,secret-3,public-2" {
		t.Errorf("granted live: %s", got)
	}
	for _, who := range []string{"denied", "anonymous"} {
		if got := ids(live[who], 2); got != "public-1,public-2" {
			t.Errorf("%s live: %s; want public-1,public-2", who, got)
		}
	}

	for _, tc := range []struct {
		name, query string
		header      http.Header
		want        string // first IDs received, comma-separated ("" is the gap notice)
		anchor      string
	}{
		{"replay from the start", q + "&last_event_id=earliest", bearer(denied), "public-1,public-2", "earliest"},
		{"replay after the first", q, http.Header{"Authorization": {"Bearer " + denied}, "Last-Event-Id": {"public-1"}}, "public-2", "public-1"},
		{"anonymous replay", q + "&lastEventID=earliest", nil, "public-1,public-2", "earliest"},
		{"resume naming a private ID", q + "&last_event_id=secret-1", bearer(denied), "", "earliest"},
		{"resume naming the private ID of an alternate topic", q + "&last_event_id=secret-3", nil, "", "earliest"},
		{"granted replay", q + "&last_event_id=public-1", bearer(granted), "secret-1,secret-3,public-2", "public-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.subscribe(t, tc.query, tc.header)
			if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != tc.anchor {
				t.Errorf("Mercure-Last-Event-ID = %q; want %q", got, tc.anchor)
			}
			hdrs := allHeaderValues(s.resp.Header)
			want := strings.Split(tc.want, ",")
			var got []string
			for range want {
				ev := s.next(t)
				if ev.ID == "" && ev.Type != hub.GapEventType {
					t.Errorf("an event without ID of type %q", ev.Type)
				}
				got = append(got, ev.ID)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("got %q; want %q", strings.Join(got, ","), tc.want)
			}
			if !strings.Contains(tc.want, "secret") && strings.Contains(hdrs, "secret-") && !strings.Contains(tc.query, "secret") {
				t.Errorf("a private ID in the headers:\n%s", hdrs)
			}
		})
	}

	// The history endpoint.
	page := func(query string, tok string) historyPage {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.history.URL+HistoryPath+"?"+query, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("history: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(allHeaderValues(resp.Header), "secret-") {
			t.Errorf("history headers name a private ID: %v", resp.Header)
		}
		var p historyPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tok := range []string{denied, ""} {
		p := page(q+"&after=earliest", tok)
		var got []string
		for _, e := range p.Events {
			got = append(got, e.ID)
		}
		if strings.Join(got, ",") != "public-1,public-2" || strings.Contains(p.LastEventID+p.NextCursor, "secret") {
			t.Errorf("history: %v, last %q", got, p.LastEventID)
		}
		// A page whose last examined update is private names no ID of it.
		p = page(q+"&after=public-1&limit=1", tok)
		if len(p.Events) != 1 || p.Events[0].ID != "public-2" || strings.Contains(p.LastEventID, "secret") {
			t.Errorf("history after public-1: %+v", p)
		}
		if p = page(q+"&after=secret-1", tok); p.Gap != hub.GapUnknownID || len(p.Events) != 2 {
			t.Errorf("history after a private ID: %+v; want an unknown-id gap and the public events", p)
		}
	}
	if p := page(q+"&after=public-1", granted); len(p.Events) != 3 {
		t.Errorf("granted history after public-1: %+v", p)
	}

	// Revocation between disconnect and reconnect: the replay is checked
	// against the token of the new request, not the one that subscribed.
	revoked := f.token(t, mercure(nil, []string{"https://example.com/secret/2"}))
	s := f.subscribe(t, q, http.Header{"Authorization": {"Bearer " + revoked}, "Last-Event-Id": {"public-1"}})
	if ev := s.next(t); ev.ID != "public-2" {
		t.Errorf("after revocation the replay starts with %q; want public-2", ev.ID)
	}
}

// TestExpiryEndsTheStreamAndTheToken: a stream ends at its token's exp,
// cleanly, and reconnecting with the same token is refused with a precise
// challenge.
func TestExpiryEndsTheStreamAndTheToken(t *testing.T) {
	t.Parallel()
	for _, goroutine := range []bool{false, true} {
		t.Run(fmt.Sprint("GoroutinePerStream=", goroutine), func(t *testing.T) {
			t.Parallel()
			f := newJWTFixture(t, jwtauth.Config{RequireExp: true}, func(c *Config) { c.GoroutinePerStream = goroutine })
			tok := f.token(t, jwt.MapClaims{"exp": f.clock.Now().Add(time.Second).Unix(), "mercure": map[string]any{"subscribe": []string{"*"}}})
			f.clock.Advance(990 * time.Millisecond) // 10 ms of validity left, on the real clock too
			s := f.subscribe(t, "topic=a", http.Header{"Authorization": {"Bearer " + tok}})
			if s.resp.StatusCode != 200 {
				t.Fatalf("subscribe: %d", s.resp.StatusCode)
			}
			if _, err := s.dec.Decode(); err != io.EOF {
				t.Fatalf("stream ended with %v; want a clean EOF at expiry", err)
			}
			f.clock.Advance(time.Second)
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+DefaultPath+"?topic=a", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := `Bearer error="invalid_token", error_description="token is expired"`
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
				t.Errorf("reconnect: %d %q; want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
			}
		})
	}
}

// TestChallenges: each refusal carries a precise RFC 6750 challenge; a
// valid token lacking the grant gets 403.
func TestChallenges(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t, jwtauth.Config{Audience: "https://hub.example/.well-known/mercure", RequireExp: true}, nil)
	aud := "https://hub.example/.well-known/mercure"
	good := jwt.MapClaims{"aud": aud, "mercure": map[string]any{"publish": []string{"https://example.com/a"}}}
	with := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"aud": aud, "exp": f.clock.Now().Add(time.Hour).Unix()}).SignedString([]byte("another-secret-of-at-least-32-bytes!"))
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"aud": aud, "exp": f.clock.Now().Add(time.Hour).Unix()}).SignedString(jwtSecret)
	for _, tc := range []struct {
		name, token, topic string
		status             int
		challenge          string
	}{
		{"expired", f.token(t, with("exp", f.clock.Now().Add(-time.Minute).Unix())), "https://example.com/a", 401, `Bearer error="invalid_token", error_description="token is expired"`},
		{"no exp", f.token(t, with("exp", nil)), "https://example.com/a", 401, `Bearer error="invalid_token", error_description="token has no exp claim"`},
		{"wrong audience", f.token(t, with("aud", "https://evil.example")), "https://example.com/a", 401, `Bearer error="invalid_token", error_description="wrong audience"`},
		{"bad signature", other, "https://example.com/a", 401, `Bearer error="invalid_token", error_description="signature is invalid"`},
		{"algorithm not allowed", hs512, "https://example.com/a", 401, `Bearer error="invalid_token", error_description="signing method HS512 is not allowed"`},
		{"valid, lacking the grant", f.token(t, good), "https://example.com/b", 403, `Bearer error="insufficient_scope"`},
		{"valid", f.token(t, good), "https://example.com/a", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := f.publish(t, tc.token, form("topic", tc.topic), nil)
			if status != tc.status || hdr.Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("got %d %q (%s); want %d %q", status, hdr.Get("WWW-Authenticate"), body, tc.status, tc.challenge)
			}
			if strings.Contains(body, tc.token) {
				t.Error("the answer echoes the token")
			}
		})
	}
}

// TestTokenSources: the query parameter carries a token only when
// enabled; a cookie publish needs an allowed origin (real JWTs).
func TestTokenSources(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		f := newJWTFixture(t, jwtauth.Config{AllowQueryToken: allow}, func(c *Config) { c.Anonymous = false })
		tok := f.token(t, mercure([]string{"*"}, []string{"*"}))
		resp, err := http.Get(f.srv.URL + DefaultPath + "?topic=a&authorization=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 401, true: 200}[allow]; resp.StatusCode != want {
			t.Errorf("AllowQueryToken %v: query token got %d; want %d", allow, resp.StatusCode, want)
		}
		if !allow {
			cookie := http.Header{"Cookie": {"mercureAuthorization=" + tok}}
			if status, _, _ := f.publish(t, "", form("topic", "a"), cookie); status != 403 {
				t.Errorf("cookie publish without Origin: %d; want 403", status)
			}
			cookie.Set("Origin", "https://app.example")
			if status, _, _ := f.publish(t, "", form("topic", "a"), cookie); status != 200 {
				t.Errorf("cookie publish from an allowed origin: %d; want 200", status)
			}
		}
	}
}

// TestCORSNeverWildcardWithCredentials covers the configurations the
// fixture's single origin does not.
func TestCORSNeverWildcardWithCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		origins         []string
		origin          string
		wantACAO        string
		wantCredentials bool
	}{
		{[]string{"*"}, "https://any.example", "*", false},
		{[]string{"*"}, "null", "", false},
		{[]string{"https://app.example", "*"}, "https://app.example", "https://app.example", true},
		{[]string{"https://app.example", "*"}, "https://other.example", "*", false},
		{[]string{"https://app.example"}, "https://APP.example", "", false},
		{[]string{"https://app.example"}, "https://app.example.evil.com", "", false},
	} {
		f := newFixture(t, func(c *Config) { c.CORSOrigins = tc.origins })
		for _, method := range []string{http.MethodOptions, http.MethodGet} {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, method, f.srv.URL+DefaultPath+"?topic=a", nil)
			req.Header.Set("Origin", tc.origin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			h := resp.Header
			if h.Get("Access-Control-Allow-Origin") != tc.wantACAO || (h.Get("Access-Control-Allow-Credentials") == "true") != tc.wantCredentials {
				t.Errorf("%v, Origin %s, %s: ACAO %q, credentials %q", tc.origins, tc.origin, method, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
			}
			if h.Get("Access-Control-Allow-Origin") == "*" && h.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("* with credentials")
			}
			if !strings.Contains(h.Get("Vary"), "Origin") {
				t.Error("no Vary: Origin")
			}
			cancel()
			resp.Body.Close()
		}
	}
}

// TestElementCountLimits: selectors per subscribe (400) and selectors per
// token (401).
func TestElementCountLimits(t *testing.T) {
	t.Parallel()
	f := newJWTFixture(t, jwtauth.Config{MaxMatchers: 3}, func(c *Config) {
		comp, err := selector.New(selector.Config{HubURL: c.Compiler.HubURL(), MaxSelectors: 2})
		if err != nil {
			t.Fatal(err)
		}
		c.Compiler = comp
	})
	resp, err := http.Get(f.srv.URL + DefaultPath + "?topic=a&topic=b&match=c")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "more than 2 topic selectors") {
		t.Errorf("three selectors: %d %s", resp.StatusCode, body)
	}
	tok := f.token(t, mercure([]string{"a", "b"}, []string{"c", "d"}))
	status, body2, _ := f.publish(t, tok, form("topic", "a"), nil)
	if status != 401 || !strings.Contains(body2, "more than 3 topic selectors") {
		t.Errorf("a token with four selectors: %d %s", status, body2)
	}
}
