package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/ssehttp"
)

// logBuffer collects log output from concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoCredentialInLogs runs requests carrying tokens in the
// Authorization header, the cookie and the "authorization" query
// parameter, valid and not, with the log at debug level in both formats,
// and checks that no part of any token reaches the log.
func TestNoCredentialInLogs(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			logs := new(logBuffer)
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			var lh slog.Handler = slog.NewTextHandler(logs, opts)
			if format == "json" {
				lh = slog.NewJSONHandler(logs, opts)
			}
			s := start(t, Config{Logger: slog.New(lh), Anonymous: false})
			var tokens []string
			tok := func(key string, c jwtauth.Claims) string {
				tk := mint(t, key, c)
				tokens = append(tokens, tk)
				return tk
			}
			all := jwtauth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}
			const wrongKey = "a-key-that-is-not-the-hub-key-but-long-enough"
			c := &http.Client{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			// Streams: header, cookie, query (the hub does not accept
			// query tokens: that is refused), each then ended by the client.
			sub := func(header http.Header, query string) *http.Response {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.HubURL()+"?match=https://example.com/t"+query, nil)
				for k, v := range header {
					req.Header[k] = v
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			}
			open := []*http.Response{
				sub(http.Header{"Authorization": {"Bearer " + tok(testKey, all)}}, ""),
				sub(http.Header{"Cookie": {jwtauth.DefaultCookieName + "=" + tok(testKey, all)}}, ""),
				sub(http.Header{"Cookie": {jwtauth.SecureCookieName + "=" + tok(testKey, all)}}, ""),
			}
			refused := []*http.Response{
				sub(nil, "&authorization="+tok(testKey, all)),
				sub(http.Header{"Authorization": {"Bearer " + tok(wrongKey, all)}}, ""),
				sub(http.Header{"Cookie": {jwtauth.DefaultCookieName + "=" + tok(wrongKey, all)}}, ""),
				sub(http.Header{"Authorization": {"Bearer " + tok(testKey, jwtauth.Claims{Subscribe: []string{"*"}, Expires: time.Now().Add(-time.Hour)})}}, ""),
				sub(http.Header{"Authorization": {"Bearer " + tok(wrongKey, all)}}, "&match=%zz"),
				sub(http.Header{"Authorization": {"Basic " + tok(testKey, all)}}, ""),
			}
			for i, r := range open {
				if r.StatusCode != 200 {
					t.Fatalf("stream %d: %s; want 200", i, r.Status)
				}
			}
			for i, r := range refused {
				if r.StatusCode == 200 {
					t.Fatalf("refused stream %d: 200; want a refusal", i)
				}
			}
			// Publishes: header, cookie (refused without an Origin), query,
			// and a wrong key.
			pub := func(header http.Header, query string) int {
				form := url.Values{"topic": {"https://example.com/t"}, "data": {"hello"}}
				req, _ := http.NewRequest(http.MethodPost, s.HubURL()+query, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range header {
					req.Header[k] = v
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := pub(http.Header{"Authorization": {"Bearer " + tok(testKey, all)}}, ""); code != 200 {
				t.Fatalf("publish: %d", code)
			}
			pub(http.Header{"Cookie": {jwtauth.DefaultCookieName + "=" + tok(testKey, all)}}, "")
			pub(nil, "?authorization="+tok(testKey, all))
			pub(http.Header{"Authorization": {"Bearer " + tok(wrongKey, all)}}, "")
			// History, with a token in the header and in the query.
			for _, q := range []string{"", "&authorization=" + tok(testKey, all)} {
				req, _ := http.NewRequest(http.MethodGet, s.URL()+ssehttp.HistoryPath+"?match=*"+q, nil)
				req.Header.Set("Authorization", "Bearer "+tok(testKey, all))
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			// Every open stream received the update; then they end.
			for i, r := range open {
				br := bufio.NewReader(r.Body)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("stream %d: %v", i, err)
					}
					if line == "data: hello\n" {
						break
					}
				}
			}
			cancel()
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			out := logs.String()
			for _, want := range []string{"stream opened", "stream closed", "request refused"} {
				if !strings.Contains(out, want) {
					t.Errorf("the debug log has no %q line; the test would prove nothing:\n%s", want, out)
				}
			}
			for _, tk := range tokens {
				parts := strings.Split(tk, ".")
				// The header part is the same for every HS256 token; the
				// payload and the signature are what identifies one.
				for _, p := range []string{tk, parts[1], parts[2]} {
					if strings.Contains(out, p) {
						t.Fatalf("the log contains (part of) a token %q:\n%s", p, out)
					}
				}
			}
			if format == "json" {
				for line := range strings.Lines(out) {
					if !json.Valid([]byte(line)) {
						t.Errorf("not a JSON line: %q", line)
					}
				}
			}
		})
	}
}

// TestReadinessTurnsFalseWhenDrainStarts: a stream ends at a drain only
// after readiness turned false, so a load balancer stops sending new
// clients before the old ones reconnect elsewhere.
func TestReadinessTurnsFalseWhenDrainStarts(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Anonymous: true})
	probe := func() (int, string) {
		rec := httptest.NewRecorder()
		s.ready(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz before the drain: %s; want 200", resp.Status)
	}
	stream, err := http.Get(s.HubURL() + "?match=x")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The stream ends because of the drain...
	if _, err := io.Copy(io.Discard, stream.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}
	// ...by which time the hub is not ready (the listener may already be
	// closed, so the probe handler is called directly).
	if code, body := probe(); code != http.StatusServiceUnavailable || body != "draining" {
		t.Errorf("readiness once the drain ended a stream: %d %q; want 503 draining", code, body)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// stallStore is a real store whose Bounds can be made to hang, as a store
// behind a dead network does.
type stallStore struct {
	hub.Store
	stall atomic.Bool
}

func (s *stallStore) Bounds(ctx context.Context) (hub.Position, hub.Position, error) {
	if s.stall.Load() {
		<-ctx.Done()
		return hub.Position{}, hub.Position{}, ctx.Err()
	}
	return s.Store.Bounds(ctx)
}

func TestReadyzChecksTheStore(t *testing.T) {
	t.Parallel()
	st := &stallStore{Store: hub.NewMemoryStore(hub.MemoryConfig{})}
	s := start(t, Config{Anonymous: true, Store: st})
	get := func() (int, string) {
		resp, err := http.Get(s.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get(); code != 200 || body != "ready" {
		t.Fatalf("/readyz: %d %q; want 200 ready", code, body)
	}
	st.stall.Store(true) // the probe answers within its own timeout
	if code, body := get(); code != 503 || body != "store unavailable" {
		t.Errorf("/readyz with a hanging store: %d %q; want 503 store unavailable", code, body)
	}
	st.stall.Store(false)
	if code, body := get(); code != 200 {
		t.Errorf("/readyz after the store recovered: %d %q; want 200", code, body)
	}
	if code, _ := func() (int, string) {
		resp, err := http.Get(s.URL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, ""
	}(); code != 200 {
		t.Errorf("/healthz: %d; want 200", code)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	get := func(rawURL, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		s := start(t, Config{Anonymous: true})
		code, body := get(s.URL()+"/metrics", "")
		if code != 200 || !strings.Contains(body, "ssehub_subscribers 0") || !strings.Contains(body, "ssehub_store_updates") {
			t.Errorf("/metrics: %d\n%s", code, body)
		}
		// An HTTP/1.1 stream (served from its hijacked connection) is
		// counted like any other.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, d := open(t, ctx, http.DefaultClient, s.HubURL()+"?match=https://example.com/m", "")
		if code, _ := publish(t, http.DefaultClient, s.HubURL(), mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}}), url.Values{"topic": {"https://example.com/m"}, "data": {"x"}}); code != 200 {
			t.Fatalf("publish: %d", code)
		}
		if _, err := d.Decode(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`ssehub_subscriptions{kind="exact"} 1`, "ssehub_events_sent_total 1", "ssehub_delivery_latency_seconds_count 1", "ssehub_publish_duration_seconds_count 1"} {
			// The server counts a write just after the client could read it.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, body = get(s.URL()+"/metrics", ""); strings.Contains(body, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/metrics lacks %q:\n%s", want, body)
				}
			}
		}
		if s.MetricsAddr() != nil {
			t.Errorf("MetricsAddr = %v; want nil", s.MetricsAddr())
		}
	})
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		s := start(t, Config{Anonymous: true, Metrics: Metrics{Token: "scrape-secret"}})
		if code, _ := get(s.URL()+"/metrics", ""); code != 401 {
			t.Errorf("/metrics without the token: %d; want 401", code)
		}
		if code, _ := get(s.URL()+"/metrics", "wrong"); code != 401 {
			t.Errorf("/metrics with a wrong token: %d; want 401", code)
		}
		if code, body := get(s.URL()+"/metrics", "scrape-secret"); code != 200 || !strings.Contains(body, "ssehub_published_total") {
			t.Errorf("/metrics with the token: %d", code)
		}
	})
	t.Run("own listener", func(t *testing.T) {
		t.Parallel()
		s := start(t, Config{Anonymous: true, Metrics: Metrics{Addr: "127.0.0.1:0"}})
		if code, body := get(s.URL()+"/metrics", ""); code != 404 {
			t.Errorf("/metrics on the main listener: %d; want 404\n%s", code, body)
		}
		if code, body := get("http://"+s.MetricsAddr().String()+"/metrics", ""); code != 200 || !strings.Contains(body, "ssehub_http_requests_total") {
			t.Errorf("/metrics on its own listener: %d\n%s", code, body)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		s := start(t, Config{Anonymous: true, Metrics: Metrics{Disabled: true}})
		if code, _ := get(s.URL()+"/metrics", ""); code != 404 {
			t.Errorf("/metrics when disabled: %d; want 404", code)
		}
	})
}
